"""The small objects of borrowing: a waiting thread, and ``with pool.connection()``."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..session import Connection
    from ._pool import Pool
    from ._state import Slot


class Waiter:
    """A thread waiting for a connection: blocks on a lock the pool releases."""

    __slots__ = ("error", "lock", "slot", "ticket")

    def __init__(self) -> None:
        self.ticket = 0
        self.slot: Slot | None = None
        self.error: BaseException | None = None
        self.lock = threading.Lock()
        self.lock.acquire()



class Borrow:
    """``with pool.connection() as conn:``; a class rather than a generator: it is faster."""

    __slots__ = ("_conn", "_pool", "_timeout")

    def __init__(self, pool: Pool, timeout: float | None):
        self._pool = pool
        self._timeout = timeout
        self._conn: Connection | None = None

    def __enter__(self) -> Connection:
        conn = self._conn = self._pool.getconn(self._timeout)
        return conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        conn = self._conn
        if conn is not None:
            self._conn = None
            self._pool.give_back(conn, commit=exc_type is None)




def asyncio_loop_running() -> bool:
    """Whether this thread is running an event loop (a blocking wait would stall it)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
