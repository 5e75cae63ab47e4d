"""Connection strings: parse, normalize, redact, and key pools by connection identity.

Two shapes are accepted:

* URLs: ``postgresql://``, ``postgres://``, ``mssql://``, ``sqlserver://``, ``mysql://`` and
  ``mariadb://`` (read as MySQL), each optionally naming a driver: ``postgresql+psycopg://``,
  ``mssql+pytds://``. User name, password, host and database are percent-decoded; ``+`` in
  the query means a space, as in SQLAlchemy URLs. Query parameters are tether settings
  (``connect_retry_count``, ``connect_retry_interval``, ``login_timeout`` or
  ``connect_timeout``, ``min_size``, ``max_size``, ``max_lifetime``, ``pooling``,
  ``pool_blocking_period``, ``encrypt``, ``trust_server_certificate``,
  ``application_name``), identity fields (``host``, ``port``, ``user``, ``password``,
  ``dbname``, and ``instance`` for SQL Server), for SQL Server any SqlClient keyword, and
  otherwise driver options passed through as written (``sslmode``, ``options``). An
  unknown parameter that looks like a misspelt tether setting is refused.
* SQL Server ADO.NET strings, with SqlClient's syntax, keywords, synonyms and limits:
  ``Server=tcp:host,1433;Database=shop;User ID=app;Password=...;ConnectRetryCount=3``.

The driver comes from the URL's ``+driver``, else ``parse(..., driver=...)``, else it is
``None``: the dialect's default, which the driver registry picks when connecting
(PostgreSQL: psycopg; SQL Server: the first installed of mssql_python, pyodbc, pymssql,
pytds; MySQL: pymysql). A named driver must be one in ``tether.vocab._drivers`` (by
name or alias, any case) that a pool can use; others, such as ``psycopg2`` or
``mysqldb``, are refused with the list of drivers and the pool that takes each.

Passwords live in :class:`Secret`, which never shows its value in ``repr``/``str`` and
refuses to be pickled, so a :class:`ConnectionSpec` cannot be written to a log, a cache or
another process with the password in it by accident. To hand a spec to another process,
hand over the connection string. No :class:`~tether.errors.ConfigError` message contains a
password, even for a malformed string.
"""

from __future__ import annotations

from ._spec import AZURE_SUFFIXES, KNOWN_DRIVERS, ConnectionSpec, Secret, parse

__all__ = ["AZURE_SUFFIXES", "KNOWN_DRIVERS", "ConnectionSpec", "Secret", "parse"]
