"""pyodbc (``mssql+pyodbc://``) with Microsoft's ODBC driver 18 or FreeTDS.

The ODBC driver is the one named by ``driver=`` (a registered name or a library path),
else the first found of Microsoft's ODBC driver 18 (the library inside the
``mssql-python-odbc`` wheel, or a registered "ODBC Driver 18 for SQL Server") and FreeTDS.

Reset: Microsoft's driver resets the session with its next request when
``SQL_COPT_SS_RESET_CONNECTION`` is set (no round trip); FreeTDS refuses that attribute,
so under FreeTDS tether restores by SQL what SQL can (see ``_mssql_reset``).

Transaction status: with autocommit on, there is none to end. With it off, Microsoft's
driver keeps a transaction open at all times (begun at connect and again by every commit
and rollback), so "open" says nothing; what matters is whether anything ran in it.
pyodbc's connection takes no subclass and no attributes, so tether hands out a thin
``Connection`` around it (everything is pyodbc's) whose commit and rollback note the
socket's count of data segments sent; an unchanged count later means nothing was sent
since, whichever cursor the application used. Without the socket the answer is
IN_TRANSACTION: the pool then commits or rolls back every return.

pyodbc's (and unixODBC's) own connection pooling is turned off when this module loads: a
connection closed by tether must really close, or a later open would get an old session
and a socket tether did not see opening.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import TYPE_CHECKING, Any

import pyodbc as _pyodbc  # type: ignore[import-not-found,unused-ignore]  # stubs only in some wheels

from ._mssql_args import login_timeout, odbc_pairs, odbc_quote, odbc_string
from ._mssql_native import NativeDriver
from ._native_socket import Native
from ._odbc_driver import OdbcDriver, odbc_driver

if TYPE_CHECKING:
    from ..dsn import ConnectionSpec

_pyodbc.pooling = False  # only takes effect before the process's first pyodbc connection

SQL_COPT_SS_RESET_CONNECTION, SQL_RESET_CONNECTION_YES = 1246, 1


class Connection:
    """pyodbc's connection as a tether pool holds it: all pyodbc's, except that a commit
    or a rollback marks the session clean. The pyodbc object is ``.pyodbc``."""

    __slots__ = ("__weakref__", "_native", "odbc_driver", "pyodbc")

    def __init__(self, connection: Any, odbc_driver: OdbcDriver | None = None):
        object.__setattr__(self, "pyodbc", connection)
        object.__setattr__(self, "_native", None)
        object.__setattr__(self, "odbc_driver", odbc_driver)  # which one pyodbc loaded

    def commit(self) -> None:
        self.pyodbc.commit()
        self._ended()

    def rollback(self) -> None:
        self.pyodbc.rollback()
        self._ended()

    def _ended(self) -> None:
        native: Native | None = self._native
        if native is not None:
            native.mark_clean()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pyodbc.__exit__(*exc)  # pyodbc commits on a clean exit, unless autocommit
        if exc[0] is None:
            self._ended()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pyodbc, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.pyodbc, name, value)

    def __repr__(self) -> str:
        chosen: OdbcDriver | None = self.odbc_driver
        via = f" via {chosen.label}" if chosen is not None else ""
        return f"<tether pyodbc connection{via} {self.pyodbc!r}>"


class Pyodbc(NativeDriver):
    name = "pyodbc"
    module = _pyodbc
    cancels = True  # SQLCancel, which ODBC lets another thread call: TDS attention
    cancel_raises = False  # Microsoft's driver may return from a cancelled statement as if done
    cancel_holds_connection = True  # SQLCancel runs on the statement's handle

    def cancel(self, raw: Any, cursor: Any, timeout_s: float) -> None:
        if cursor is not None:  # a COMMIT has none: the watchdog severs it after the grace
            cursor.cancel()

    def _open(self, spec: ConnectionSpec, timeout_s: float, autocommit: bool,
              extra: dict[str, Any]) -> tuple[Any, str]:
        target = odbc_driver(spec, _pyodbc.drivers())
        text = f"Driver={odbc_quote(target.name)};" + odbc_string(odbc_pairs(spec, target.flavour))
        connection = _pyodbc.connect(text, autocommit=autocommit, timeout=login_timeout(timeout_s), **extra)
        raw = Connection(connection, target)
        return raw, target.flavour

    def _opened(self, raw: Any, native: Native) -> None:
        object.__setattr__(raw, "_native", native)

    def _ran_since_commit(self, raw: Any) -> bool | None:
        native = self._natives.get(raw)
        return native.ran_since_clean() if native is not None else None

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
        return bool(raw.closed) or _connection_dead(raw)

    def _autocommit(self, raw: Any) -> bool:
        return bool(raw.autocommit)

    def _close(self, raw: Any) -> None:
        raw.close()



SQL_ATTR_CONNECTION_DEAD, SQL_CD_TRUE = 1209, 1


@functools.lru_cache(maxsize=1)
def _driver_manager() -> Any:
    """The ODBC driver manager pyodbc uses (unixODBC's libodbc), or None."""
    name = ctypes.util.find_library("odbc")
    try:
        return ctypes.CDLL(name or "libodbc.so.2")
    except OSError:
        return None


def _connection_dead(raw: Any) -> bool:
    """The ODBC driver's own verdict, SQL_ATTR_CONNECTION_DEAD: set by Microsoft's driver
    and FreeTDS once a request failed on a broken link; a flag read, no I/O."""
    manager = _driver_manager()
    hdbc = getattr(raw, "hdbc", None)  # pyodbc's HDBC, as a ctypes.c_void_p
    if manager is None or not isinstance(hdbc, ctypes.c_void_p) or not hdbc.value:
        return False
    value, length = ctypes.c_uint32(0), ctypes.c_int32(0)
    status = manager.SQLGetConnectAttr(hdbc, SQL_ATTR_CONNECTION_DEAD, ctypes.byref(value), 4,
                                       ctypes.byref(length))  # fmt: skip
    return status in (0, 1) and value.value == SQL_CD_TRUE  # SQL_SUCCESS(_WITH_INFO)


driver = Pyodbc()
