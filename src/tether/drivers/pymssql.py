"""pymssql (``mssql+pymssql://``): FreeTDS's DB-Library, bundled.

No session reset exists in DB-Library, so tether restores by SQL what SQL can: the SET
options to the values read once at login, the isolation level, the database; a borrow
that left temp tables, cursors, locks or impersonation behind costs the connection.

With autocommit off, pymssql keeps a transaction open at all times (``BEGIN TRAN`` at
connect and after every commit and rollback). tether opens pymssql's connection class
through a subclass that notes when a statement runs, so a returned connection whose
standing transaction is still empty counts as IDLE.

Timeouts in DB-Library are process-wide (``dbsettime``, ``dbsetlogintime``): tether sets
the login timeout as pymssql itself does, and sets no statement timeout for a ping; a
ping on a dead path ends by TCP keepalive and ``TCP_USER_TIMEOUT`` on the socket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pymssql as _pymssql
from pymssql import _mssql

from ._mssql_args import pymssql_kwargs
from ._mssql_native import NativeDriver
from ._mssql_options import PYMSSQL

if TYPE_CHECKING:
    from ..dsn import ConnectionSpec


# pymssql keeps a transaction open at all times with autocommit off: its commit and rollback
# begin the next one, here in the same batch (a batch-aborting error skips the BEGIN, as
# pymssql's own skips it after a failed COMMIT).
_COMMIT_AND_BEGIN = "COMMIT TRAN; BEGIN TRAN"
_ROLLBACK_AND_BEGIN = "IF @@TRANCOUNT > 0 ROLLBACK TRAN; BEGIN TRAN"


class _Cursor(_pymssql.Cursor):
    def __init__(self, conn: Any, as_dict: bool, arraysize: int = 1):
        super().__init__(conn, as_dict, arraysize)
        self._tether_conn = conn

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self._tether_conn._tether_ran = True
        return super().execute(*args, **kwargs)

    def executemany(self, *args: Any, **kwargs: Any) -> Any:
        self._tether_conn._tether_ran = True
        return super().executemany(*args, **kwargs)

    def callproc(self, *args: Any, **kwargs: Any) -> Any:
        self._tether_conn._tether_ran = True
        return super().callproc(*args, **kwargs)


class _Connection(_pymssql.Connection):
    """pymssql's connection, noting whether statements ran since the last commit."""

    _tether_ran = False

    def cursor(self, as_dict: bool | None = None, arraysize: int | None = None) -> Any:
        if as_dict is None:
            as_dict = self.as_dict
        return _Cursor(self, as_dict, arraysize or self.arraysize)

    def get_autocommit(self) -> bool:
        """pymssql's ``autocommit`` is a method (``autocommit(False)`` sends BEGIN TRAN), as
        PyMySQL's is: with this getter tether's client settings call it rather than assign
        over it (an assignment left the session in autocommit: ``pool.transaction`` on an
        autocommit pool then ran unit after unit without a transaction)."""
        return bool(self.autocommit_state)

    def commit(self) -> None:
        # pymssql's own sends COMMIT TRAN, then BEGIN TRAN: two round trips; one batch is one.
        # The same errors: a failed COMMIT raises as pymssql's does; a transaction is open after.
        self._end(_COMMIT_AND_BEGIN, "Cannot commit transaction: ")

    def rollback(self) -> None:
        # pymssql's own: ROLLBACK TRAN (its "no corresponding BEGIN" ignored), then BEGIN TRAN.
        self._end(_ROLLBACK_AND_BEGIN, "Cannot begin transaction: ")

    def _end(self, batch: str, failure: str) -> None:
        if self.autocommit_state:
            return
        try:
            self._conn.execute_non_query(batch)
        except Exception as exc:
            raise _pymssql.OperationalError(failure + str(exc.args[0])) from exc
        self._tether_ran = False


class Pymssql(NativeDriver):
    name = "pymssql"
    module = _pymssql

    def _open(self, spec: ConnectionSpec, timeout_s: float, autocommit: bool,
              extra: dict[str, Any]) -> tuple[Any, str]:
        kwargs = {**pymssql_kwargs(spec, timeout_s), **extra}
        _mssql.login_timeout = kwargs.pop("login_timeout")  # as pymssql.connect does
        try:  # pymssql.connect, with tether's connection class
            conn = _mssql.connect(**kwargs)
        except _mssql.MSSQLDatabaseException as exc:
            raise _pymssql.OperationalError(exc.args[0]) from exc
        except _mssql.MSSQLDriverException as exc:
            raise _pymssql.InterfaceError(exc.args[0]) from exc
        return _Connection(conn, False, autocommit), PYMSSQL

    def _row(self, raw: Any, sql: str) -> Any:
        # Not through a cursor: not the borrower's statement. _mssql's row is a dict keyed
        # by position (and by name for named columns).
        row = raw._conn.execute_row(sql)
        return None if row is None else tuple(row[i] for i in range(sum(isinstance(k, int) for k in row)))

    def _current_database(self, raw: Any) -> str | None:
        return str(raw._conn.cur_db_name()) or None

    def _is_closed(self, raw: Any) -> bool:
        try:
            return not raw._conn.connected
        except _pymssql.InterfaceError:  # "Connection is closed."
            return True

    def _autocommit(self, raw: Any) -> bool:
        return bool(raw.autocommit_state)

    def _ran_since_commit(self, raw: Any) -> bool | None:
        return bool(raw._tether_ran) if isinstance(raw, _Connection) else None

    def _close(self, raw: Any) -> None:
        raw.close()

    def execute(self, raw: Any, sql: str) -> None:
        raw._conn.execute_non_query(sql)

    def ping(self, raw: Any, sql: str, *, timeout_s: float) -> bool:
        try:
            raw._conn.execute_scalar(sql)
            if not raw.autocommit_state:  # as the other drivers' pings: the next borrower's
                raw.rollback()  # transaction starts clean (Babelfish: no isolation change after a read)
            return True
        except (_pymssql.Error, _mssql.MSSQLException):
            return False


driver = Pymssql()
