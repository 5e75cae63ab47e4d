"""``AsyncPool``'s hooks with psycopg's async connection and asyncpg: coroutine hooks, the
connection idle resiliency opens configured before the replay, failing hooks, kwargs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import tether
from fix_wait import async_wait_until
from test_async_resiliency import DRIVERS, dsn_for, pid_of
from test_resiliency import kill
from tether.testing import EmbeddedPostgres

TOKYO = "SET TIME ZONE 'Asia/Tokyo'"
SETTINGS = "SELECT current_setting('TimeZone'), current_setting('application_name')"


async def one_row(conn: Any, driver: str, sql: str) -> tuple[Any, ...]:
    if driver == "asyncpg":
        return tuple(await conn.fetchrow(sql))
    return tuple(await (await conn.execute(sql)).fetchone())


async def configure_tokyo(conn: Any) -> None:
    await conn.execute(TOKYO)
    if hasattr(conn, "commit"):  # psycopg: the SET ran in a transaction
        await conn.commit()


@pytest.mark.parametrize("driver", DRIVERS)
def test_async_configure_survives_an_idle_kill(pg_admin: EmbeddedPostgres, driver: str) -> None:
    seen: list[Any] = []

    async def configure(conn: Any) -> None:
        await configure_tokyo(conn)
        seen.append(conn)

    async def main() -> None:
        async with tether.AsyncPool(dsn_for(pg_admin, driver), min_size=1, max_size=1, configure=configure,
                                    kwargs={"server_settings": {"application_name": "kw"}}
                                    if driver == "asyncpg" else {"application_name": "kw"}) as pool:
            async with pool.connection() as conn:
                if driver == "psycopg_async":
                    await conn.set_autocommit(True)
                before = pid_of(conn, driver)
                await asyncio.to_thread(kill, pg_admin, before, conn)
                assert await one_row(conn, driver, SETTINGS) == ("Asia/Tokyo", "kw")
                assert pid_of(conn, driver) != before
            stats = pool.stats()
            assert (stats.recovered, stats.hook_failures, stats.resets) == (1, 0, 0)
        assert len(seen) == 2 and seen[0] is not seen[1]

    asyncio.run(main())


@pytest.mark.parametrize("driver", DRIVERS)
def test_async_hooks_that_raise(pg_admin: EmbeddedPostgres, driver: str) -> None:
    checks: list[int] = []
    resets: list[int] = []

    async def check(conn: Any) -> None:
        checks.append(1)
        if len(checks) == 1:
            raise RuntimeError("first checkout refused")

    def reset(conn: Any) -> None:  # a plain function is fine for AsyncPool too
        resets.append(1)
        raise RuntimeError("reset refused")

    async def main() -> None:
        async with tether.AsyncPool(dsn_for(pg_admin, driver), min_size=1, max_size=2, check=check,
                                    reset=reset, timeout=5.0) as pool:
            await pool.wait()
            async with pool.connection() as conn:
                first = pid_of(conn, driver)
            await async_wait_until(lambda: pool.stats().hook_failures == 2, what="the background reset")
            async with pool.connection() as conn:
                assert pid_of(conn, driver) != first  # the connection whose reset failed is gone
            stats = pool.stats()
            assert stats.hook_failures >= 2
            assert len(checks) == 3 and resets

    asyncio.run(main())


def test_async_configure_leaving_a_transaction_is_discarded(pg_admin: EmbeddedPostgres) -> None:
    async def configure(conn: Any) -> None:
        await conn.execute(TOKYO)  # psycopg, not autocommit: the transaction stays open

    async def main() -> None:
        async with tether.AsyncPool(pg_admin.dsn, min_size=0, max_size=1, configure=configure, timeout=2.0,
                                    connect_retry_count=0) as pool:
            with pytest.raises(tether.Error, match="configure hook left the connection"):
                await pool.getconn()
            assert pool.stats().hook_failures >= 1
            assert pool.stats().busy == 0

    asyncio.run(main())
