"""Helpers for the AsyncPool tests: one body runs in ``asyncio.run`` with a pool that is
always closed, and a few queries written once for both drivers (psycopg, asyncpg)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tether.pool import AsyncPool
from tether.session import AsyncConnection

DRIVERS = ("psycopg", "asyncpg")


def dsn_for(dsn: str, driver: str) -> str:
    """The test server's URL for ``driver`` (psycopg is the plain URL's default)."""
    return dsn if driver == "psycopg" else dsn.replace("postgresql://", f"postgresql+{driver}://", 1)


def run(dsn: str, body: Callable[[AsyncPool], Awaitable[Any]], *, wait: bool = True, **settings: Any) -> Any:
    """``asyncio.run`` a test body with a fresh pool, closed whatever the body did."""
    settings.setdefault("min_size", 1)
    settings.setdefault("max_size", 4)
    settings.setdefault("timeout", 5.0)

    async def main() -> Any:
        pool = AsyncPool(dsn, **settings)
        try:
            await pool.open()
            if wait:
                await pool.wait(10.0)
            return await body(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


async def value(conn: AsyncConnection, sql: str) -> Any:
    """The first column of the first row, with either driver."""
    if conn.raw.__class__.__module__.startswith("asyncpg"):
        return await conn.fetchval(sql)
    cur = await conn.execute(sql)
    row = await cur.fetchone()
    return None if row is None else row[0]


async def pid(conn: AsyncConnection) -> int:
    return int(await value(conn, "SELECT pg_backend_pid()"))


def socket_of(conn: AsyncConnection) -> int:
    raw = conn.raw
    if raw.__class__.__module__.startswith("asyncpg"):
        return int(raw._transport.get_extra_info("socket").fileno())
    return int(raw.pgconn.socket)
