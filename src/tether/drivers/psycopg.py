# Generated from psycopg_async.py by tools/async_to_sync.py: edit that file instead.
"""psycopg 3 (``postgresql://``, ``postgresql+psycopg://``), the default PostgreSQL
driver of ``tether.Pool``, through psycopg's ``Connection``."""

from __future__ import annotations

import contextlib
import inspect
import time
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import pq

from .._acompat import wait_fd
from ..dialects.postgresql import dialect as postgresql
from ..vocab import TxStatus
from ._base import Driver
from ._pg_cancel import cancel_libpq
from ._psycopg_common import (
    CONNECTION_BAD,
    STATUS,
    carry_over,
    connect_kwargs,
    forget_session,
    reported_settings,
)
from ._psycopg_opening import (
    IDLE,
    exchange,
    goodbye,
    guarded,
    leave,
    opens_with,
    plain,
    quiet_check,
    refused,
    settle,
    start,
)

if TYPE_CHECKING:
    from ..dsn import ConnectionSpec


class Psycopg(Driver):
    name = "psycopg"
    dialect = "postgresql"
    module = psycopg
    cancels = True
    fetch_reads = False  # client-side cursors: the rows come with execute (named ones: see the proxy)
    cursor_waits = False  # a cursor is made client-side, a named one too (DECLARE is its execute)

    def connect(self, spec: ConnectionSpec, *, timeout_s: float, autocommit: bool | None,
                      extra: dict[str, Any] | None = None) -> Any:
        kwargs = {**connect_kwargs(spec, timeout_s), **(extra or {})}
        return psycopg.Connection.connect(autocommit=bool(autocommit), **kwargs)

    def cancel(self, raw: Any, cursor: Any, timeout_s: float) -> None:
        cancel_libpq(raw.pgconn, timeout_s)

    def socket_fd(self, raw: Any) -> int | None:
        fd: int = raw.pgconn.socket
        return fd

    def tx_status(self, raw: Any) -> TxStatus:
        pgconn = raw.pgconn  # on the return path: read libpq's state, no properties
        if pgconn.status == CONNECTION_BAD:
            return TxStatus.BROKEN
        return STATUS[pgconn.transaction_status]

    def ping(self, raw: Any, sql: str, *, timeout_s: float) -> bool:
        """One round trip with a deadline, through libpq's non-blocking calls.

        ``raw.execute`` would wait for ever on a link that stopped forwarding (a
        userspace proxy ACKs what it holds, so not even TCP_USER_TIMEOUT ends it), and
        cancelling it waits again, for a cancel request over the same dead path. A ping
        that times out leaves a query in flight: the caller discards the connection.
        """
        deadline = time.monotonic() + timeout_s
        pgconn = raw.pgconn
        with raw.lock:
            try:
                pgconn.send_query(sql.encode())
                while pgconn.flush():
                    if not wait_fd(pgconn.socket, writing=True, deadline=deadline):
                        return False
                ok = True
                while True:
                    pgconn.consume_input()
                    if pgconn.is_busy():
                        if not wait_fd(pgconn.socket, writing=False, deadline=deadline):
                            return False
                        continue
                    result = pgconn.get_result()
                    if result is None:
                        return ok
                    ok = ok and result.status == pq.ExecStatus.TUPLES_OK
            except psycopg.Error:
                return False

    def execute(self, raw: Any, sql: str) -> None:
        # Outside a transaction: a ping must not open one, and DISCARD ALL cannot run in one.
        if raw.autocommit:
            raw.execute(sql)
            return
        raw.autocommit = True
        try:
            raw.execute(sql)
        finally:
            if not raw.closed:
                raw.autocommit = False

    def reset(self, raw: Any, changes: tuple[str, ...]) -> bool:
        for sql in postgresql.reset_sql:
            self.execute(raw, sql)
        forget_session(raw)
        return True

    def restore(self, raw: Any, saved: dict[str, Any]) -> None:
        # autocommit, isolation_level, read_only, deferrable have setters (async ones on
        # an Connection); plain attributes (row_factory...) are set directly.
        for name, value in saved.items():
            setter = getattr(raw, f"set_{name}", None)
            if setter is not None and inspect.iscoroutinefunction(setter):
                setter(value)
            else:
                setattr(raw, name, value)

    def opening(self, raw: Any, cursor: Any, sql: Any, params: Any, *, mark: str | None,
                ask: bool, guard: bool = False) -> Opening | None:
        # Transaction mode with none open (or autocommit, where ``guard`` asks for the empty
        # lead), a plain client-side cursor (a server-side one cannot run in a pipeline) and
        # one statement that may (``_psycopg_opening``).
        if raw._pipeline is not None or raw.pgconn.transaction_status != IDLE:
            return None
        if not plain(cursor, psycopg.Cursor):
            return None
        if raw._autocommit:
            return Opening(raw, cursor, None, check=False) if guard and guarded(sql) else None
        if not opens_with(sql):
            return None
        return Opening(raw, cursor, mark, check=ask and mark is None and quiet_check(raw, sql))

    def forget_session(self, raw: Any) -> None:
        forget_session(raw)

    def carry_over(self, old: Any, new: Any) -> None:
        carry_over(old, new)

    def reported_settings(self, raw: Any) -> dict[str, str | None]:
        return reported_settings(raw)

    def close(self, raw: Any) -> None:
        with contextlib.suppress(psycopg.Error):
            raw.close()


class Opening:
    """psycopg's BEGIN and the first statement in one pipeline: one round trip.

    psycopg's own pipeline syncs after its BEGIN (a round trip of its own) and costs more
    CPU than the round trip it saves on a LAN, so this is libpq's pipeline, driven the way
    psycopg drives it (``_psycopg_opening``): BEGIN (psycopg's text: isolation level, read
    only, deferrable), the optional marker, the statement, the optional quiet check, one
    Sync; then the statement's results go to the cursor as its ``execute`` would put them.
    A statement that fails leaves the transaction INERROR, as psycopg's would, and raises
    psycopg's error for it. Where the server's goodbye answered the BEGIN, ``refused``
    says so: nothing of the statement ran.

    ``begin`` sends psycopg's BEGIN alone instead, as psycopg's cursor would before the
    statement (near servers, where the pipeline does not pay): the same round trip, but
    tether's, so that a session that ends under it is known to have ended before the
    statement was sent."""

    __slots__ = ("_check", "_cursor", "_mark", "_raw", "marker", "quiet", "refused", "round_trip_s")

    def __init__(self, raw: Any, cursor: Any, mark: str | None, *, check: bool):
        self._raw = raw
        self._cursor = cursor
        self._mark = mark
        self._check = check
        self.quiet = False
        self.refused = False
        self.marker: tuple[Any, ...] | None = None
        self.round_trip_s = 0.0

    def run(self, sql: Any, params: Any = None, *, prepare: bool | None = None,
                  binary: bool | None = None) -> Any:
        raw, cursor = self._raw, self._cursor
        if prepare:  # a named prepared statement: psycopg's own way
            return cursor.execute(sql, params, prepare=prepare, binary=binary)
        found: list[list[Any]] = []
        with raw.lock:
            pgconn, answers, prepared = start(raw, cursor, sql, params, binary, self._mark, self._check)
            sent = time.monotonic()
            try:
                raw.wait(exchange(pgconn, answers, found))
            except psycopg.Error:
                self.refused = refused(found)
                if self.refused:  # the goodbye's own words, not libpq's "server closed the connection"
                    cursor._check_results(found[0])
                raise
            finally:
                leave(pgconn)
            self.round_trip_s = time.monotonic() - sent
            self.refused = refused(found)
            self.marker, self.quiet = settle(cursor, sql, found, prepared, mark=bool(self._mark),
                                             check=self._check)
            raw.wait(raw._prepared.maintain_gen(raw))  # as psycopg's execute: DEALLOCATEs due
        return cursor

    def begin(self) -> None:
        raw = self._raw
        with raw.lock:
            try:
                raw.wait(raw._start_query())
            except psycopg.Error as exc:  # alone, nothing behind it: any end of the session will do
                self.refused = goodbye(exc) or raw.pgconn.status == CONNECTION_BAD
                raise


# asyncio's psycopg: a round trip through the event loop costs more than the pipeline
Psycopg.pipelines_near = inspect.iscoroutinefunction(Psycopg.connect)
driver = Psycopg()
