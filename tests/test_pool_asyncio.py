"""What only ``AsyncPool`` has: asyncpg's own API through the proxy, waiters that are
tasks, and the error outside a running event loop. The rest of the pool's tests are
written once for both pools (``test_pool_async.py``)."""

from __future__ import annotations

import asyncio
import time

import pytest

import tether
from fix_twins import arun, avalue, dsn_for
from fix_wait import async_wait_until
from test_command_timeout_async import active_sleeps
from tether import AsyncPool
from tether.session import lease_of
from tether.session._watchdog import GRACE_S
from tether.testing import EmbeddedPostgres


def test_asyncpg_api_passes_through_and_dies_with_the_borrow(pg_dsn: str) -> None:
    asyncpg = pytest.importorskip("asyncpg")

    async def body(pool: AsyncPool) -> None:
        async with pool.connection() as conn:
            assert await conn.fetchval("SELECT $1::int + 1", 41) == 42
            rows = await conn.fetch("SELECT generate_series(1, 3) AS n")
            assert [r["n"] for r in rows] == [1, 2, 3]
            async with conn.transaction():
                await conn.execute("CREATE TEMP TABLE scratch (x int)")
            assert lease_of(conn).changes == ("temporary object",)
        with pytest.raises(tether.ConnectionReturned):
            await conn.fetchval("SELECT 1")
        with pytest.raises(asyncpg.InterfaceError):
            await conn.fetch("SELECT 1")

    arun(dsn_for(pg_dsn, "asyncpg"), body, max_size=1)


def test_asyncpg_objects_die_with_the_borrow(pg_dsn: str) -> None:
    # Transactions, prepared statements and cursors keep asyncpg's connection: kept past
    # the borrow they would run on the next borrower's session.
    async def body(pool: AsyncPool) -> None:
        conn = await pool.getconn()
        statement = await conn.prepare("SELECT current_setting('application_name')")
        assert await statement.fetchval() == ""
        transaction = conn.transaction()
        factory = conn.cursor("SELECT 1")
        async with conn.transaction():
            cursor = await conn.cursor("SELECT generate_series(1, 3)")
            assert len(await cursor.fetch(2)) == 2
        await pool.putconn(conn)
        other = await pool.getconn()
        await other.execute("SET application_name = 'other'")
        with pytest.raises(tether.ConnectionReturned):
            await statement.fetchval()
        with pytest.raises(tether.ConnectionReturned):
            await transaction.start()
        with pytest.raises(tether.ConnectionReturned):
            async with transaction:
                pass
        with pytest.raises(tether.ConnectionReturned):
            await factory
        with pytest.raises(tether.ConnectionReturned):
            await cursor.fetch(1)
        assert await other.fetchval("SELECT current_setting('application_name')") == "other"
        await pool.putconn(other)

    arun(dsn_for(pg_dsn, "asyncpg"), body, max_size=1)


def test_asyncpg_prepared_statements_survive_the_reset(pg_dsn: str) -> None:
    # psycopg's, for both pools: test_pool_async.py
    async def body(pool: AsyncPool) -> None:
        for _ in range(4):  # DISCARD ALL drops the server's statements; the driver must forget them
            async with pool.connection() as conn:
                assert await conn.fetchval("SELECT $1::int", 7) == 7
                await conn.execute("SET work_mem = '8MB'")

    arun(dsn_for(pg_dsn, "asyncpg"), body, min_size=1, max_size=1)


def test_waiters_are_served_first_come_first_served(adsn: str) -> None:
    async def body(pool: AsyncPool) -> None:
        held = await pool.getconn()
        order: list[int] = []

        async def borrow(i: int) -> None:
            async with pool.connection() as conn:
                order.append(i)
                await avalue(conn, "SELECT 1")

        tasks = []
        for i in range(5):
            tasks.append(asyncio.create_task(borrow(i)))
            await async_wait_until(lambda n=i + 1: pool.stats().waiting == n, what=f"borrower {i} queued")
        assert pool.stats().waiting == 5
        await held.close()
        await asyncio.gather(*tasks)
        assert order == [0, 1, 2, 3, 4]

    arun(adsn, body, min_size=1, max_size=1)


def test_without_a_running_loop_the_error_says_to_use_tether_pool() -> None:
    pool = AsyncPool("postgresql://app@127.0.0.1:1/db", min_size=0)
    for call in (pool.getconn, pool.open, pool.wait, pool.close):
        with pytest.raises(tether.PoolError, match=r"running asyncio event loop.*tether\.Pool"):
            call()
    with pytest.raises(TypeError, match="async with"), pool.connection():
        pass
    with pytest.raises(TypeError, match=r"tether\.Pool"), pool:
        pass


def test_unknown_async_driver_is_refused() -> None:
    with pytest.raises(tether.ConfigError, match=r"tether\.Pool"):
        AsyncPool("postgresql+psycopg2://app@127.0.0.1:1/db")


def test_a_task_cancelled_mid_statement_frees_its_session(adsn: str, pg_server: EmbeddedPostgres) -> None:
    async def body(pool: AsyncPool) -> None:
        async def sleeper() -> None:
            async with pool.connection() as conn:
                await conn.execute("SELECT pg_sleep(30)")

        task = asyncio.ensure_future(sleeper())
        # the statement runs at the server: cancel the task then, not after a guessed pause
        await async_wait_until(lambda: asyncio.to_thread(active_sleeps, pg_server), what="pg_sleep running")
        task.cancel()
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        assert time.monotonic() - started <= GRACE_S + 0.5
        async with pool.connection(timeout=5) as conn:  # max_size=1: the session came back, or a new one
            assert await avalue(conn, "SELECT 1") == 1
        assert active_sleeps(pg_server) == 0

    arun(adsn, body, min_size=1, max_size=1)
