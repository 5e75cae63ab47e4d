"""mssql-python (``mssql+mssql_python://``), Microsoft's driver, the default for SQL Server.

It bundles Microsoft's ODBC driver 18, so the reset is that driver's: the reset flag rides
on the next request (``SQL_COPT_SS_RESET_CONNECTION``), no round trip.

Its connection is a Python class, so tether opens a subclass of it that notes when a
statement runs: with autocommit off, the transaction status is then exact (a statement
ran since the last commit or rollback, or not) instead of assumed. ``conn.raw`` is still
an ``mssql_python.Connection``.

mssql-python pools connections itself by default. tether turns that off when it opens the
first connection (unless the application configured it); with it on, a connection closed
by tether would go back to mssql-python's pool with its session and its socket, and is
refused with a ConfigError.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import mssql_python as _mssql_python
from mssql_python.connection_string_builder import _ConnectionStringBuilder
from mssql_python.pooling import PoolingManager

from ..errors import ConfigError
from ._mssql_args import login_timeout, odbc_pairs, odbc_string
from ._mssql_native import NativeDriver
from ._mssql_options import MSSQL_PYTHON

if TYPE_CHECKING:
    from ..dsn import ConnectionSpec

SQL_COPT_SS_RESET_CONNECTION, SQL_RESET_CONNECTION_YES = 1246, 1


class _Cursor(_mssql_python.Cursor):
    __slots__ = ()

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        _ran(self._connection)
        return super().execute(*args, **kwargs)

    def executemany(self, *args: Any, **kwargs: Any) -> Any:
        _ran(self._connection)
        super().executemany(*args, **kwargs)


def _ran(connection: Any) -> None:
    connection._tether_ran = True


class _Connection(_mssql_python.Connection):
    """mssql-python's connection, noting whether statements ran since the last commit,
    and sending the application name it was given (mssql-python reserves APP for its own
    "MSSQL-Python", which would drop the connection string's Application Name)."""

    _tether_ran = False
    _tether_app: str | None = None

    def __init__(self, connection_str: str, *, app: str | None = None, **kwargs: Any):
        self._tether_app = app
        super().__init__(connection_str, **kwargs)

    def _construct_connection_string(self, connection_str: str = "", **kwargs: Any) -> Any:
        text, params = super()._construct_connection_string(connection_str, **kwargs)
        if self._tether_app:
            params["APP"] = self._tether_app
            text = _ConnectionStringBuilder(params).build()
        return text, params

    def cursor(self) -> Any:
        cursor = super().cursor()
        cursor.__class__ = _Cursor
        return cursor

    def commit(self) -> None:
        super().commit()
        self._tether_ran = False

    def rollback(self) -> None:
        super().rollback()
        self._tether_ran = False


def _own_pooling_off() -> None:
    if not PoolingManager.is_initialized():
        _mssql_python.pooling(enabled=False)
    elif PoolingManager.is_enabled():
        raise ConfigError(
            "mssql-python's own connection pool is on (mssql_python.pooling()); tether pools the "
            "connections itself: call mssql_python.pooling(enabled=False) first",
            key="driver",
        )


class MssqlPython(NativeDriver):
    name = "mssql_python"
    module = _mssql_python

    def _open(self, spec: ConnectionSpec, timeout_s: float, autocommit: bool,
              extra: dict[str, Any]) -> tuple[Any, str]:
        _own_pooling_off()
        text, app = odbc_string(odbc_pairs(spec, MSSQL_PYTHON)), spec.application_name
        raw = _Connection(text, app=app, autocommit=autocommit, timeout=login_timeout(timeout_s),
                          **extra)
        return raw, MSSQL_PYTHON

    def _row(self, raw: Any, sql: str) -> Any:
        cursor = _mssql_python.Connection.cursor(raw)  # not noted: tether's own statement
        try:
            cursor.execute(sql)
            return cursor.fetchone()
        finally:
            cursor.close()

    def _current_database(self, raw: Any) -> str | None:
        name = raw.getinfo(_mssql_python.constants.GetInfoConstants.SQL_DATABASE_NAME.value)
        return name if isinstance(name, str) and name else None

    def _set_reset_flag(self, raw: Any) -> None:
        # Connection.set_attr checks attributes against a list without this one; the
        # native connection under it passes it to the ODBC driver as it is.
        raw._conn.set_attr(SQL_COPT_SS_RESET_CONNECTION, SQL_RESET_CONNECTION_YES)

    def _is_closed(self, raw: Any) -> bool:
        return bool(raw.closed)

    def _autocommit(self, raw: Any) -> bool:
        return bool(raw.autocommit)

    def _ran_since_commit(self, raw: Any) -> bool | None:
        return bool(raw._tether_ran) if isinstance(raw, _Connection) else None

    def _close(self, raw: Any) -> None:
        raw.close()

    def _cursor(self, raw: Any) -> Any:
        return _mssql_python.Connection.cursor(raw)  # the driver's own, not tether's noting one


driver = MssqlPython()
