"""What the three native SQL Server drivers (mssql-python, pyodbc, pymssql) share: opening
with the socket found, the login state captured where only SQL can restore it, the reset,
and the transaction status."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from ..dialects import sqlserver
from ..vocab import TxStatus
from . import _mssql_reset as restore
from ._base import Driver
from ._mssql_args import login_timeout
from ._mssql_options import FREETDS, PYMSSQL
from ._native_socket import Native, Natives, find_socket, local_port_query, open_fds, peer_closed

if TYPE_CHECKING:
    from ..dsn import ConnectionSpec

SQL_ONLY = (FREETDS, PYMSSQL)  # no session reset: SQL restores what it can


class NativeDriver(Driver):
    """The shared half; subclasses open, run SQL and read their driver's flags."""

    name: str
    dialect = "sqlserver"
    module: Any
    # In autocommit mode an SQL-level BEGIN TRAN is invisible to tx_status: the session
    # log then trusts the statements it saw over the status (idle resiliency).
    exact_tx_status = False

    def __init__(self) -> None:
        self._natives = Natives()

    # -- what each driver supplies ---------------------------------------------------------

    def _open(self, spec: ConnectionSpec, timeout_s: float, autocommit: bool,
              extra: dict[str, Any]) -> tuple[Any, str]:
        """The driver's connection and its flavour (see _mssql_args)."""
        raise NotImplementedError

    def _row(self, raw: Any, sql: str) -> Any:
        """The first row of ``sql``'s result, or None."""
        raise NotImplementedError

    def _current_database(self, raw: Any) -> str | None:
        """The session's database as the driver tracks it (no round trip), or None."""
        return None

    def _set_reset_flag(self, raw: Any) -> None:
        """Have the driver reset the session with its next request (no round trip)."""
        raise NotImplementedError

    def _is_closed(self, raw: Any) -> bool:
        raise NotImplementedError

    def _autocommit(self, raw: Any) -> bool:
        raise NotImplementedError

    def _ran_since_commit(self, raw: Any) -> bool | None:
        """Whether statements ran since the last commit or rollback; None: unknown."""
        return None

    def _opened(self, raw: Any, native: Native) -> None:
        """A hook for the driver, once the connection is open and its socket known."""

    def _close(self, raw: Any) -> None:
        raise NotImplementedError

    # -- the Driver protocol ---------------------------------------------------------------

    def connect(self, spec: ConnectionSpec, *, timeout_s: float, autocommit: bool | None,
                      extra: dict[str, Any] | None = None) -> Any:
        before = open_fds()
        raw, flavour = self._open(spec, timeout_s, bool(autocommit), extra or {})
        native = Native(flavour, login_database=spec.database)
        try:
            if flavour in SQL_ONLY:
                settings, database = restore.capture(lambda sql: self._row(raw, sql), self._refused)
                native.login_settings = settings
                native.login_database = native.login_database or database
            else:
                native.login_database = native.login_database or self._current_database(raw)
            native.sock = find_socket(before, local_port_query(lambda sql: self._row(raw, sql)))
            if not autocommit:
                # The driver's transaction is open from the login, and the driver's reads
                # (sp_datatype_info_100) and tether's ran in it: end it, so the borrower's
                # begins clean (Babelfish refuses an isolation change once one has read).
                raw.rollback()
            native.mark_clean()
            self._opened(raw, native)
            self._natives.keep(raw, native)
        except BaseException:
            if native.sock is not None:  # tether's duplicate: the driver closes only its own
                native.sock.close()
            self._close(raw)
            raise
        return raw

    @staticmethod
    def _refused(exc: BaseException) -> bool:
        """The server answered a query with an error: the session is still usable."""
        return sqlserver.refused(exc)

    def flavour(self, raw: Any) -> str | None:
        """Which driver underneath: msodbcsql, freetds, mssql_python or pymssql."""
        native = self._natives.get(raw)
        return native.flavour if native is not None else None

    def socket_fd(self, raw: Any) -> int | None:
        return self._natives.fd(raw)

    def tx_status(self, raw: Any) -> TxStatus:
        native = self._natives.get(raw)
        sock = native.sock if native is not None else None
        if self._is_closed(raw) or (sock is not None and peer_closed(sock)):
            return TxStatus.BROKEN
        if self._autocommit(raw):
            return TxStatus.IDLE  # a BEGIN TRAN in autocommit mode is in the borrow's changes
        ran = self._ran_since_commit(raw)
        if ran is None:
            return TxStatus.IN_TRANSACTION  # the driver cannot tell: assume the worst
        return TxStatus.IN_TRANSACTION if ran else TxStatus.IDLE

    def forget_session(self, raw: Any) -> None:
        pass  # the drivers drop their own server-side handles on a reset they make

    def reset(self, raw: Any, changes: tuple[str, ...]) -> bool:
        native = self._natives.get(raw)
        if native is None:
            return False
        server_reset = native.flavour not in SQL_ONLY
        todo = restore.plan(
            changes,
            server_reset=server_reset,
            login_database=native.login_database,
            login_settings=native.login_settings,
        )
        if todo is None:
            return False
        clean = native.ran_since_clean() is False
        if server_reset and not self._autocommit(raw):
            self._reset_in_transaction_mode(raw, todo.sql)
        else:
            if server_reset:
                self._set_reset_flag(raw)  # rides on the next request: this batch, or the borrower's
            sql = todo.sql
            if restore.ROLLBACK_SQL in sql and not server_reset and not self._autocommit(raw):
                # The driver's own rollback: in manual-commit mode it keeps a transaction begun
                # (pymssql's BEGIN TRAN, FreeTDS's chained TM requests), and a T-SQL ROLLBACK
                # would end it behind the driver's back: the next borrower's writes would then
                # run outside any transaction, and its rollback undo nothing.
                raw.rollback()
                sql = tuple(statement for statement in sql if statement != restore.ROLLBACK_SQL)
            if sql:
                self.execute(raw, "; ".join(sql))
        if clean:
            native.mark_clean()  # all of it was tether's own
        return True

    def _reset_in_transaction_mode(self, raw: Any, sql: tuple[str, ...]) -> None:
        """Microsoft's driver with autocommit off: setting the reset flag ends its standing
        transaction at once, and it would begin the next one (with the flag) only before
        the next borrower's first statement, a round trip on that borrower's path; a ROLLBACK
        in tether's batch would end that one too, and cost the borrower a BEGIN again. So
        the batch runs in autocommit mode (the flag rides on it), and switching back begins
        the driver's transaction here, off the caller's path (the flag rides on that BEGIN
        when there is no batch)."""
        self._set_reset_flag(raw)  # the driver's ROLLBACK: the borrow's work ended already
        raw.autocommit = True  # no transaction open: nothing sent
        try:
            if sql:
                self.execute(raw, "; ".join(sql))
        finally:
            raw.autocommit = False  # the driver's BEGIN

    def _own(self, raw: Any, sql: str, run: Any) -> Any:
        """Run tether's own statement (a ping) without counting it as the borrower's:
        a session clean before is still clean after."""
        native = self._natives.get(raw)
        clean = native is not None and native.ran_since_clean() is False
        result = run(raw, sql)
        if not self._autocommit(raw):
            # The ping read in the driver's open transaction (the connection is idle: no
            # borrower's work is in it): end it, so that the next borrower's first isolation
            # change is still allowed (Babelfish refuses one after a read). A round trip, on
            # pings in transaction mode only.
            raw.rollback()
        if clean:
            assert native is not None
            native.mark_clean()
        return result

    def _cursor(self, raw: Any) -> Any:
        return raw.cursor()

    def execute(self, raw: Any, sql: str) -> None:
        """ODBC-style: a cursor, every result set passed over (pymssql has its own)."""
        cursor = self._cursor(raw)
        try:
            cursor.execute(sql)
            while cursor.nextset():
                pass
        finally:
            cursor.close()

    def ping(self, raw: Any, sql: str, *, timeout_s: float) -> bool:
        """ODBC-style: the connection's statement timeout bounds the ping (pymssql has none)."""
        previous = raw.timeout
        try:
            raw.timeout = login_timeout(timeout_s)  # the statement timeout, whole seconds
            self._own(raw, sql, self._row)
            return True
        except self.module.Error:
            return False
        finally:
            with contextlib.suppress(self.module.Error):
                raw.timeout = previous

    def close(self, raw: Any) -> None:
        try:
            with contextlib.suppress(self.module.Error):
                self._close(raw)
        finally:
            self._natives.release(raw)
