"""psycopg 3 (``postgresql+psycopg://``), the default PostgreSQL driver."""

from __future__ import annotations

import contextlib
import math
import select
import time
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import pq

from ..dialects.postgresql import dialect as postgresql
from ..sql import TxStatus

if TYPE_CHECKING:
    from ..dsn import ConnectionSpec

# Indexed by libpq's PQtransactionStatus (an int): IDLE, ACTIVE, INTRANS, INERROR, UNKNOWN.
_STATUS = (
    TxStatus.IDLE,
    TxStatus.ACTIVE,
    TxStatus.IN_TRANSACTION,
    TxStatus.IN_ERROR,
    TxStatus.BROKEN,
)
_CONNECTION_BAD = int(pq.ConnStatus.BAD)


class Psycopg:
    name = "psycopg"
    dialect = "postgresql"
    module = psycopg

    def connect(self, spec: ConnectionSpec, *, timeout_s: float, autocommit: bool | None) -> Any:
        return psycopg.Connection.connect(autocommit=bool(autocommit), **connect_kwargs(spec, timeout_s))

    def socket_fd(self, raw: Any) -> int | None:
        fd: int = raw.pgconn.socket
        return fd

    def tx_status(self, raw: Any) -> TxStatus:
        pgconn = raw.pgconn  # on the return path: read libpq's state, no properties
        if pgconn.status == _CONNECTION_BAD:
            return TxStatus.BROKEN
        return _STATUS[pgconn.transaction_status]

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

    def ping(self, raw: Any, sql: str, *, timeout_s: float) -> bool:
        """One round trip with a deadline, through libpq's asynchronous calls.

        ``raw.execute`` would wait for ever on a link that stopped forwarding (a userspace
        proxy ACKs what it holds, so not even TCP_USER_TIMEOUT ends it). A ping that
        times out leaves a query in flight: the caller discards the connection.
        """
        deadline = time.monotonic() + timeout_s
        pgconn = raw.pgconn
        with raw.lock:
            try:
                pgconn.send_query(sql.encode())
                while pgconn.flush():
                    if not _wait_for(pgconn.socket, select.POLLOUT, deadline):
                        return False
                ok = True
                while True:
                    pgconn.consume_input()
                    if pgconn.is_busy():
                        if not _wait_for(pgconn.socket, select.POLLIN, deadline):
                            return False
                        continue
                    result = pgconn.get_result()
                    if result is None:
                        return ok
                    ok = ok and result.status == pq.ExecStatus.TUPLES_OK
            except psycopg.Error:
                return False

    def forget_session(self, raw: Any) -> None:
        # DISCARD ALL deallocates psycopg's auto-prepared statements, but psycopg clears
        # its cache only the first time it sees that text (later runs hit the cache
        # before the command status is looked at), and then "_pg3_N does not exist".
        manager = getattr(raw, "_prepared", None)
        for cache in ("_names", "_counts"):
            entries = getattr(manager, cache, None)
            if entries is not None:
                entries.clear()

    def reset(self, raw: Any, changes: tuple[str, ...]) -> bool:
        for sql in postgresql.reset_sql:
            self.execute(raw, sql)
        self.forget_session(raw)
        return True

    def carry_over(self, old: Any, new: Any) -> None:
        """After idle resiliency replaced ``old``: what the application configured on the
        connection object itself (adapters, handlers, factories) comes along."""
        carry_over(old, new)

    def reported_settings(self, raw: Any) -> dict[str, str | None]:
        return reported_settings(raw)

    def close(self, raw: Any) -> None:
        with contextlib.suppress(psycopg.Error):
            raw.close()


def connect_kwargs(spec: ConnectionSpec, timeout_s: float) -> dict[str, Any]:
    """libpq's keywords for ``spec`` (shared with the async driver)."""
    kwargs: dict[str, Any] = dict(spec.options)
    kwargs.update(host=spec.host, port=spec.port, dbname=spec.database, user=spec.user)
    if spec.password is not None:
        kwargs["password"] = spec.password.reveal()
    if spec.application_name:
        kwargs["application_name"] = spec.application_name
    # libpq counts whole seconds and treats anything below 2 as 2.
    kwargs["connect_timeout"] = max(2, math.ceil(timeout_s))
    return {k: v for k, v in kwargs.items() if v is not None}


# Settings the server reports in ParameterStatus (GUC_REPORT), which libpq keeps: the
# old session's last values stay readable after it died. Server facts (server_version,
# in_hot_standby) are left out: a failover may change them legitimately.
_REPORTED = (b"application_name", b"client_encoding", b"DateStyle", b"IntervalStyle", b"TimeZone",
             b"standard_conforming_strings", b"is_superuser", b"session_authorization",
             b"search_path", b"default_transaction_read_only")


def reported_settings(raw: Any) -> dict[str, str | None]:
    """What the server last reported of the settings it reports (no round trip)."""
    pgconn = raw.pgconn
    out: dict[str, str | None] = {}
    for name in _REPORTED:
        value = pgconn.parameter_status(name)
        out[name.decode()] = None if value is None else value.decode("utf-8", "replace")
    return out


def carry_over(old: Any, new: Any) -> None:
    """Copy the connection object's own configuration from ``old`` to ``new`` (sync and async)."""
    from psycopg.adapt import AdaptersMap

    new._adapters = AdaptersMap(old.adapters)
    new.row_factory = old.row_factory
    new.cursor_factory = old.cursor_factory
    new.prepare_threshold = old.prepare_threshold
    for handler in list(getattr(old, "_notice_handlers", ())):
        new.add_notice_handler(handler)
    for handler in list(getattr(old, "_notify_handlers", ())):
        new.add_notify_handler(handler)


def _wait_for(fd: int, events: int, deadline: float) -> bool:
    """Wait until ``fd`` is ready for ``events`` or the deadline passes."""
    poller = select.poll()
    poller.register(fd, events | select.POLLERR | select.POLLHUP)
    remaining_ms = max(0, round((deadline - time.monotonic()) * 1000))
    return bool(poller.poll(remaining_ms))


driver = Psycopg()
