"""Django database backends that draw their connections from a tether pool.

``ENGINE: "tether.django.postgresql"`` (psycopg 3) or ``"tether.django.mysql"`` (PyMySQL,
through its MySQLdb shim when mysqlclient is not installed) wrap Django's own backends, and
``"tether.django.mssql"`` wraps mssql-django's (SQL Server: pyodbc or mssql-python):
the SQL, the features, ``atomic()``, ``on_commit``, time zones and cursor factories are
Django's; only where connections come from changes. ``OPTIONS["tether"]`` holds the
pool's settings (``tether.Pool``'s keyword arguments: ``max_size``, ``timeout``...).
Each alias has one pool per process; closing a Django connection (the end of a request
with ``CONN_MAX_AGE=0``, or ``connection.close()``) gives it back to that pool.
"""

from __future__ import annotations

from ._pools import close_pool, pool_for_alias

__all__ = ["close_pool", "pool_for_alias"]
