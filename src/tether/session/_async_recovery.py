"""Idle connection resiliency for the asyncio proxy: ``_recovery``'s twin, awaiting the I/O.

The decisions (what is lost, what replays, the error) are shared with the threaded proxy;
only opening, replaying and closing await here.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..sql import TxStatus
from ._recovery import batches, lose, settle, verify

if TYPE_CHECKING:
    from ..drivers._async_base import AsyncDriver
    from ..sql import Replay
    from ._log import SessionLog


async def recover_async(conn: Any, *, rolling_back: bool = False) -> Any:
    """Rebuild ``conn``'s broken session on a new connection, or raise ``SessionLost``."""
    owner, driver, log = conn._owner, conn._driver, conn._log
    old = conn._raw
    started = time.monotonic()
    status = settle(conn, rolling_back=rolling_back)
    try:
        new = await owner.reopen(conn)
    except Exception as exc:
        raise lose(conn, (f"no new connection: {exc}",)) from exc
    try:
        await restore_async(driver, old, new.raw, conn.saved, log, status)
    except Exception as exc:
        await owner.drop(new)
        raise lose(conn, (f"replaying the session failed: {type(exc).__name__}: {exc}",)) from exc
    owner.swap(conn, new, elapsed_s=time.monotonic() - started, replayed=log.describe())
    conn.__dict__["_raw"] = new.raw
    return new.raw


async def restore_async(driver: AsyncDriver, old: Any, new: Any, saved: dict[str, Any] | None,
                        log: SessionLog, status: TxStatus) -> None:
    if saved:
        await driver.restore(new, {name: getattr(old, name) for name in saved})
    carry_over = getattr(driver, "carry_over", None)
    if carry_over is not None:
        carry_over(old, new)
    session = log.session_replay()
    if session:
        await replay_async(driver, new, session, outside_transaction=True)
    in_transaction = log.transaction_replay(status)
    if in_transaction:
        await replay_async(driver, new, in_transaction, outside_transaction=False)
    verify(driver, old, new)


async def replay_async(driver: AsyncDriver, raw: Any, statements: list[Replay], *,
                       outside_transaction: bool) -> None:
    for text, params in batches(statements):
        if params is None and (outside_transaction or not driver.returns_cursors):
            await driver.execute(raw, text)
        elif driver.returns_cursors:  # psycopg: its cursor, in the connection's own mode
            cursor = raw.cursor()
            try:
                await (cursor.execute(text) if params is None else cursor.execute(text, params))
            finally:
                await cursor.close()
        else:  # asyncpg: positional parameters
            await raw.execute(text, *params)
