"""psycopg 3's ``AsyncConnection``: the default PostgreSQL driver of ``tether.AsyncPool``.

Chosen for ``postgresql://`` and ``postgresql+psycopg://`` URLs. Connection keywords,
the transaction status table and the prepared-statement fix are the sync driver's.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import pq

from ..sql import TxStatus
from .psycopg import _CONNECTION_BAD, _STATUS, carry_over, connect_kwargs, reported_settings
from .psycopg import driver as _sync

if TYPE_CHECKING:
    from ..dsn import ConnectionSpec


class PsycopgAsync:
    name = "psycopg"
    dialect = "postgresql"
    module = psycopg
    returns_cursors = True
    sql_methods: frozenset[str] = frozenset()

    async def connect(self, spec: ConnectionSpec, *, timeout_s: float, autocommit: bool | None) -> Any:
        kwargs = connect_kwargs(spec, timeout_s)
        return await psycopg.AsyncConnection.connect(autocommit=bool(autocommit), **kwargs)

    def socket_fd(self, raw: Any) -> int | None:
        fd: int = raw.pgconn.socket
        return fd

    def is_closed(self, raw: Any) -> bool:
        # libpq keeps its descriptor until close(): the probe tells more, for free.
        return False

    def tx_status(self, raw: Any) -> TxStatus:
        pgconn = raw.pgconn
        if pgconn.status == _CONNECTION_BAD:
            return TxStatus.BROKEN
        return _STATUS[pgconn.transaction_status]

    async def ping(self, raw: Any, sql: str, *, timeout_s: float) -> bool:
        """One round trip with a deadline, through libpq's non-blocking calls.

        ``await raw.execute`` cannot be given up cleanly: on cancellation psycopg waits
        again, for a cancel request, over the same dead path. A ping that times out
        leaves a query in flight: the caller discards the connection.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        pgconn = raw.pgconn
        try:
            pgconn.send_query(sql.encode())
            while pgconn.flush():
                if not await _ready(pgconn.socket, True, deadline):
                    return False
            ok = True
            while True:
                pgconn.consume_input()
                if pgconn.is_busy():
                    if not await _ready(pgconn.socket, False, deadline):
                        return False
                    continue
                result = pgconn.get_result()
                if result is None:
                    return ok
                ok = ok and result.status == pq.ExecStatus.TUPLES_OK
        except psycopg.Error:
            return False

    async def execute(self, raw: Any, sql: str) -> None:
        # Outside a transaction: DISCARD ALL cannot run in one.
        if raw.autocommit:
            await raw.execute(sql)
            return
        await raw.set_autocommit(True)
        try:
            await raw.execute(sql)
        finally:
            if not raw.closed:
                await raw.set_autocommit(False)

    async def commit(self, raw: Any) -> None:
        await raw.commit()

    async def rollback(self, raw: Any) -> None:
        await raw.rollback()

    async def restore(self, raw: Any, saved: dict[str, Any]) -> None:
        # autocommit, isolation_level, read_only, deferrable have async setters;
        # plain attributes (row_factory, prepare_threshold...) are set directly.
        for name, value in saved.items():
            setter = getattr(raw, f"set_{name}", None)
            if setter is not None and inspect.iscoroutinefunction(setter):
                await setter(value)
            else:
                setattr(raw, name, value)

    def forget_session(self, raw: Any) -> None:
        _sync.forget_session(raw)  # the same prepared-statement cache as the sync connection

    def carry_over(self, old: Any, new: Any) -> None:
        carry_over(old, new)  # the same attributes on psycopg's AsyncConnection

    def reported_settings(self, raw: Any) -> dict[str, str | None]:
        return reported_settings(raw)

    async def close(self, raw: Any) -> None:
        with contextlib.suppress(psycopg.Error):
            await raw.close()


async def _ready(fd: int, writing: bool, deadline: float) -> bool:
    """Wait until ``fd`` is writable (or readable) or the deadline passes."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if writing:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await asyncio.wait_for(ready, max(deadline - loop.time(), 0.0))
        return True
    except asyncio.TimeoutError:
        return False
    finally:
        if writing:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


driver = PsycopgAsync()
