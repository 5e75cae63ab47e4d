"""mssql-django's SQL Server backend (``pip install mssql-django``), its connections drawn
from a tether pool.

mssql-django 2.0 (Django 5.2 to 6.1) talks to SQL Server through pyodbc (Microsoft's ODBC
driver 18, or FreeTDS) or, with ``OPTIONS["python_driver"] = "mssql_python"``, through
mssql-python. Everything but where connections come from is mssql-django's: its SQL, its
features, its cursor wrapper, ``atomic()``. ``get_new_connection`` borrows from the
alias's pool (``OPTIONS["tether"]``: the pool's settings); Django's ``close()`` gives the
connection back. What mssql-django sets on each new connection (``SET DATEFORMAT ymd``,
``DATEFIRST``, the isolation level, pyodbc's datetimeoffset converter, the query
timeout) is set by the pool's ``configure`` hook, once per server session and again
after tether's session reset, instead of at every borrow.

The connection settings are Django's (``HOST``, ``PORT``, ``USER``, ``PASSWORD``, ``NAME``)
and mssql-django's ``OPTIONS``: ``driver`` (an ODBC driver's name or library path),
``python_driver``, ``extra_params`` (ODBC keywords: ``Encrypt=no;...``),
``connection_timeout``, ``query_timeout``, ``isolation_level``, ``datefirst``,
``unicode_results``. ``connection_retries`` and ``connection_retry_backoff_time`` give way to
tether's connect retry; ``dsn`` (an ODBC data source) and ``TOKEN`` are not supported.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from mssql import base as mssql_base  # type: ignore[import-untyped]
from mssql.introspection import SQL_TIMESTAMP_WITH_TIMEZONE  # type: ignore[import-untyped]

from ...dsn import ConnectionSpec, parse
from ...pool import Pool
from .. import _pools

__all__ = ["DatabaseWrapper"]

# mssql-django's names of Microsoft's drivers (its init_connection_state), for the driver
# it detects: MARS, chunked reads, the driver charset.
_MS_DRIVER_NAMES = ("SQLNCLI", "MSODBCSQL", "LIBSQLNCLI", "LIBMSODBCSQL")


@dataclass(frozen=True, slots=True)
class SessionSetup:
    """What mssql-django sets on each new connection, set by the pool's ``configure``."""

    isolation_level: str | None
    datefirst: int
    query_timeout: int
    pyodbc: bool  # False: mssql-python, which returns datetimeoffset values itself

    def configure(self, raw: Any) -> None:
        cursor = raw.cursor()
        try:
            if self.isolation_level:
                cursor.execute(f"SET TRANSACTION ISOLATION LEVEL {self.isolation_level}")
            cursor.execute(f"SET DATEFORMAT ymd; SET DATEFIRST {int(self.datefirst)}")
        finally:
            cursor.close()
        if self.pyodbc:
            raw.add_output_converter(SQL_TIMESTAMP_WITH_TIMEZONE, mssql_base.handle_datetimeoffset)
        raw.timeout = self.query_timeout


class DatabaseWrapper(mssql_base.DatabaseWrapper):  # type: ignore[misc]
    """``mssql.base.DatabaseWrapper`` (mssql-django), on a tether pool."""

    @property
    def tether_pool(self) -> Pool:
        """This alias's tether pool (made at the first connection, or now)."""
        return self._pool_for(self.get_connection_params())

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        self._use_python_driver = self._uses_mssql_python(conn_params)
        self.Database = mssql_base._load_mssql_python() if self._use_python_driver else mssql_base.Database
        return self._pool_for(conn_params).getconn()

    def init_connection_state(self) -> None:
        # mssql-django's, less its session SETs (the pool's configure hook made them): which
        # driver this is, and the server's version and date type check.
        driver_name = str(self.connection.getinfo(self.Database.SQL_DRIVER_NAME)).upper()
        self._is_microsoft_driver = driver_name.startswith(_MS_DRIVER_NAMES)
        self.supports_mars = False
        options = self.settings_dict.get("OPTIONS", {})
        if self._is_microsoft_driver:
            self.driver_charset = None
            extra = self._parse_extra_params(options.get("extra_params"))
            self.supports_mars = (not self._use_python_driver
                                  and extra.get("mars_connection", "yes").strip().lower() == "yes")
        self.features.can_use_chunked_reads = self.supports_mars
        if options.get("return_rows_bulk_insert", False):
            self.features_class.can_return_rows_from_bulk_insert = True
        if isinstance(self.get_system_datetime, str):
            raise ImproperlyConfigured("The database driver doesn't support modern datatime types.")

    def _set_autocommit(self, autocommit: bool) -> None:
        # Only a change: the pool's connections are in autocommit already, and mssql-django
        # asks the server for @@TRANCOUNT before turning autocommit on.
        if self.connection.autocommit != autocommit:
            super()._set_autocommit(autocommit)

    def close_pool(self) -> None:
        _pools.close_pool(self.alias)

    def _pool_for(self, conn_params: dict[str, Any]) -> Pool:
        python_driver = self._uses_mssql_python(conn_params)
        spec, kwargs, setup, key = split_params(conn_params, python_driver=python_driver)
        settings = _pools.pool_settings(conn_params.get("OPTIONS") or {})
        settings.setdefault("name", f"django-{self.alias}")
        settings.setdefault("autocommit", True)  # Django sets autocommit itself
        return _pools.pool_for(self.alias, key, lambda: Pool(spec, kwargs=kwargs or None,
                                                             configure=setup.configure, **settings))


def split_params(params: dict[str, Any], *, python_driver: bool
                 ) -> tuple[ConnectionSpec, dict[str, Any], SessionSetup, Hashable]:
    """Django's settings and mssql-django's OPTIONS: a tether connection spec, the driver's
    connect keywords, and the session setup."""
    options = dict(params.get("OPTIONS") or {})
    for unsupported in ("dsn",):
        if options.get(unsupported):
            raise ImproperlyConfigured(f"tether.django.mssql does not support OPTIONS[{unsupported!r}]: "
                                       "give HOST, PORT and OPTIONS['driver']")
    if "TOKEN" in params:
        raise ImproperlyConfigured("tether.django.mssql does not support TOKEN")
    host, port = _host_and_port(params.get("HOST") or "localhost", params.get("PORT"))
    overrides: dict[str, Any] = {
        **mssql_base.DatabaseWrapper._parse_extra_params(options.get("extra_params")),
        "host": host, "port": port, "user": params.get("USER") or None,
        "password": params.get("PASSWORD") or None, "database": params.get("NAME") or "master",
    }
    if options.get("connection_timeout"):
        overrides["login_timeout"] = options["connection_timeout"]
    if not python_driver:
        overrides["odbc_driver"] = options.get("driver", "ODBC Driver 18 for SQL Server")
    spec = parse("mssql://", driver="mssql_python" if python_driver else "pyodbc", **overrides)
    kwargs = {} if python_driver else {"unicode_results": bool(options.get("unicode_results", False))}
    if python_driver:
        kwargs["native_uuid"] = False  # as mssql-django: UUIDs as strings, for Django's converter
    setup = SessionSetup(isolation_level=options.get("isolation_level"),
                         datefirst=int(options.get("datefirst", 7)),
                         query_timeout=int(options.get("query_timeout", 0)), pyodbc=not python_driver)
    key = (spec, repr(sorted(kwargs.items())), setup)
    return spec, kwargs, setup, key


def _host_and_port(host: str, port: Any) -> tuple[str, int | None]:
    """``HOST: "db,1433"`` (the ODBC form mssql-django passes through) or HOST and PORT."""
    name, comma, number = str(host).partition(",")
    if comma and not port:
        return name.strip(), int(number)
    return name.strip(), int(port) if port else None
