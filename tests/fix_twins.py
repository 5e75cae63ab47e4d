"""The two halves of a test written once for both pools.

A ``test_*_async.py`` module uses the async names (``arun``, ``athread``, ``AsyncPool``);
``tools/async_to_sync.py`` generates its threaded twin, where they become ``run``,
``thread`` and ``Pool``: the same assertions, for the same code, in both front ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tether import AsyncPool, Pool

T = TypeVar("T")


def _settings(settings: dict[str, Any]) -> dict[str, Any]:
    settings.setdefault("min_size", 1)
    settings.setdefault("max_size", 4)
    settings.setdefault("timeout", 5.0)
    return settings


def arun(dsn: str, body: Callable[[AsyncPool], Awaitable[T]], *, wait: bool = True, **settings: Any) -> T:
    """``body(pool)`` in ``asyncio.run`` with a fresh ``AsyncPool``, closed whatever happened."""

    async def main() -> T:
        async with AsyncPool(dsn, **_settings(settings)) as pool:
            if wait:
                await pool.wait(10.0)
            return await body(pool)

    return asyncio.run(main())


def run(dsn: str, body: Callable[[Pool], T], *, wait: bool = True, **settings: Any) -> T:
    """``body(pool)`` with a fresh ``Pool``, closed whatever happened."""
    with Pool(dsn, **_settings(settings)) as pool:
        if wait:
            pool.wait(10.0)
        return body(pool)


async def athread(fn: Callable[..., T], *args: Any) -> T:
    """Blocking test plumbing (an admin connection, a socket wait) off the event loop."""
    return await asyncio.to_thread(fn, *args)


def thread(fn: Callable[..., T], *args: Any) -> T:
    return fn(*args)

