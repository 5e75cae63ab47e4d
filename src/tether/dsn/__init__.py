"""Connection strings: parse, normalize, redact, and key pools by connection identity.

Three shapes are accepted:

* URLs: ``postgresql://``, ``postgres://``, ``mssql://``, ``sqlserver://``, ``mysql://`` and
  ``mariadb://`` (read as MySQL), each optionally naming a driver: ``postgresql+psycopg://``,
  ``mssql+pytds://``. User name, password, host and database are percent-decoded; ``+`` in
  the query means a space, as in SQLAlchemy URLs. Query parameters are tether settings
  (``connect_retry_count``, ``connect_retry_interval``, ``login_timeout`` or
  ``connect_timeout``, ``command_timeout``, ``min_size``, ``max_size``, ``max_lifetime``,
  ``pooling``, ``pool_blocking_period``, ``encrypt``, ``trust_server_certificate``,
  ``application_name``), identity fields (``host``, ``port``, ``user``, ``password``,
  ``dbname``, and ``instance`` for SQL Server), for SQL Server any SqlClient keyword, and
  otherwise driver options passed through as written (``sslmode``, ``options``). An
  unknown parameter that looks like a misspelt tether setting is refused, and so is a
  parameter without ``=``.
* libpq's keyword/value strings, PostgreSQL's (``_libpq``): ``host=db port=5432
  dbname=shop user=app password='a b' sslmode=require``; each key means what the same URL
  query parameter means.
* SQL Server ADO.NET strings, with SqlClient's syntax, keywords, synonyms and limits:
  ``Server=tcp:host,1433;Database=shop;User ID=app;Password=...;ConnectRetryCount=3``.
  ``Command Timeout`` (``CommandTimeout``) becomes ``ConnectionSpec.command_timeout``,
  seconds a statement may run (0: no limit), which the pool enforces.

The driver comes from the URL's ``+driver``, else ``parse(..., driver=...)``, else it is
``None``: the dialect's default, which the driver registry picks when connecting
(PostgreSQL: psycopg; SQL Server: the first installed of mssql_python, pyodbc, pymssql,
pytds; MySQL: pymysql). A named driver must be one in ``tether.vocab._drivers`` (by
name or alias, any case) that a pool can use; others, such as ``psycopg2`` or
``mysqldb``, are refused with the list of drivers and the pool that takes each.

Passwords live in :class:`Secret`, which never shows its value in ``repr``/``str`` and
refuses to be pickled, so a :class:`ConnectionSpec` cannot be written to a log, a cache or
another process with the password in it by accident. To hand a spec to another process,
hand over the connection string.

No :class:`~tether.errors.ConfigError` contains any part of a password, even for a
malformed string, by construction rather than by searching messages for secrets: the
parsers know where each password (and each secret-looking query parameter) starts, and
treat everything after it as possibly part of it, since a password with an unescaped
separator or quote runs on past where the parser ended it. Such text is never quoted:
messages name it by its offset (``ConfigError.position``) and, for a known keyword or
setting, by tether's own spelling of it. A malformed URL is shown with every span that
may be a secret, under every reading of its shape, replaced by ``***``. Parsing is linear
in the length of the string, and at most 1000 pairs or parameters are read.
"""

from __future__ import annotations

from ._spec import AZURE_SUFFIXES, KNOWN_DRIVERS, ConnectionSpec, Secret, parse

__all__ = ["AZURE_SUFFIXES", "KNOWN_DRIVERS", "ConnectionSpec", "Secret", "parse"]
