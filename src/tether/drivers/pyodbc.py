"""pyodbc (``mssql+pyodbc://``) with Microsoft's ODBC driver 18 or FreeTDS.

The ODBC driver is the one named by ``driver=`` (a registered name or a library path),
else the first found of Microsoft's ODBC driver 18 (the library inside the
``mssql-python-odbc`` wheel, or a registered "ODBC Driver 18 for SQL Server") and FreeTDS.

Reset: Microsoft's driver resets the session with its next request when
``SQL_COPT_SS_RESET_CONNECTION`` is set (no round trip); FreeTDS refuses that attribute,
so under FreeTDS tether restores by SQL what SQL can (see ``_mssql_reset``).

Transaction status: with autocommit on, there is none to end. With it off, ODBC starts
transactions implicitly and pyodbc cannot say whether one is open, nor can tether see the
statements pyodbc runs (its connection takes no subclass and no attributes): the answer
is IN_TRANSACTION, except once right after tether's own reset. So the pool commits or
rolls back every return in that mode.

pyodbc's (and unixODBC's) own connection pooling is turned off when this module loads: a
connection closed by tether must really close, or a later open would get an old session
and a socket tether did not see opening.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pyodbc as _pyodbc  # type: ignore[import-not-found,unused-ignore]  # stubs only in some wheels

from ._mssql_args import login_timeout, odbc_pairs, odbc_quote, odbc_string
from ._mssql_native import NativeDriver
from ._odbc_driver import odbc_driver

if TYPE_CHECKING:
    from ..dsn import ConnectionSpec

_pyodbc.pooling = False  # only takes effect before the process's first pyodbc connection

SQL_COPT_SS_RESET_CONNECTION, SQL_RESET_CONNECTION_YES = 1246, 1


class Pyodbc(NativeDriver):
    name = "pyodbc"
    module = _pyodbc

    def _open(self, spec: ConnectionSpec, timeout_s: float, autocommit: bool) -> tuple[Any, str]:
        target = odbc_driver(spec, _pyodbc.drivers())
        pairs, statement_timeout = odbc_pairs(spec, target.flavour)
        text = f"Driver={odbc_quote(target.name)};" + odbc_string(pairs)
        raw = _pyodbc.connect(text, autocommit=autocommit, timeout=login_timeout(timeout_s))
        if statement_timeout:
            raw.timeout = statement_timeout
        return raw, target.flavour

    def _row(self, raw: Any, sql: str) -> Any:
        cursor = raw.cursor()
        try:
            return cursor.execute(sql).fetchone()
        finally:
            cursor.close()

    def _current_database(self, raw: Any) -> str | None:
        name = raw.getinfo(_pyodbc.SQL_DATABASE_NAME)
        return name if isinstance(name, str) and name else None

    def _set_reset_flag(self, raw: Any) -> None:
        raw.set_attr(SQL_COPT_SS_RESET_CONNECTION, SQL_RESET_CONNECTION_YES)

    def _is_closed(self, raw: Any) -> bool:
        return bool(raw.closed)

    def _autocommit(self, raw: Any) -> bool:
        return bool(raw.autocommit)

    def _close(self, raw: Any) -> None:
        raw.close()

    def execute(self, raw: Any, sql: str) -> None:
        cursor = raw.cursor()
        try:
            cursor.execute(sql)
            while cursor.nextset():
                pass
        finally:
            cursor.close()

    def ping(self, raw: Any, sql: str, *, timeout_s: float) -> bool:
        previous = raw.timeout
        try:
            raw.timeout = login_timeout(timeout_s)  # the statement timeout, whole seconds
            self._row(raw, sql)
            return True
        except _pyodbc.Error:
            return False
        finally:
            with contextlib.suppress(_pyodbc.Error):
                raw.timeout = previous


driver = Pyodbc()
