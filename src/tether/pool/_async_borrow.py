"""The small pieces of ``AsyncPool``'s borrowing: the waiter, the ``async with`` borrow,
and the guard that turns a call without a running loop into advice."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from ..errors import PoolError

if TYPE_CHECKING:
    from ..session._async_proxy import AsyncConnection
    from ._async_pool import AsyncPool
    from ._state import Slot

P = ParamSpec("P")
T = TypeVar("T")


def _needs_loop(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Fail at the call, with advice, when there is no running loop (a thread)."""

    @functools.wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, T]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise PoolError(
                f"AsyncPool.{fn.__name__}() needs a running asyncio event loop: await it in a "
                "coroutine; from threads use tether.Pool"
            ) from None
        return fn(*args, **kwargs)

    return call


class _Waiter:
    """A task waiting for a connection: awaits a future the pool resolves."""

    __slots__ = ("error", "future", "slot", "ticket")

    def __init__(self, future: asyncio.Future[None]) -> None:
        self.ticket = 0
        self.slot: Slot | None = None
        self.error: BaseException | None = None
        self.future = future


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _AsyncBorrow:
    """``async with pool.connection() as conn:``; a class rather than a generator: faster."""

    __slots__ = ("_conn", "_pool", "_timeout")

    def __init__(self, pool: AsyncPool, timeout: float | None):
        self._pool = pool
        self._timeout = timeout
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> AsyncConnection:
        conn = self._conn = await self._pool._getconn(self._timeout)
        return conn

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        conn = self._conn
        if conn is not None:
            self._conn = None
            await self._pool.give_back(conn, commit=exc_type is None)

    def __enter__(self) -> AsyncConnection:
        raise TypeError("use 'async with pool.connection()'; from threads use tether.Pool")

    def __exit__(self, *exc: object) -> None:  # pragma: no cover - __enter__ refuses
        pass
