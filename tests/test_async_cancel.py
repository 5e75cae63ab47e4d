"""Cancellation never leaks a connection or leaves one in two hands: tasks cancelled while
waiting, checking out, using, committing or returning; and a close that is cancelled."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from fix_twins import ADRIVERS, arun, avalue, dsn_for
from fix_wait import async_wait_until
from tether.pool import AsyncPool
from tether.session import AsyncConnection
from tether.testing import EmbeddedPostgres
from tether.wan import Latency, Link


def test_a_waiter_cancelled_after_being_served_gives_the_connection_back(adsn: str) -> None:
    async def body(pool: AsyncPool) -> None:
        held = await pool.getconn()
        waiter = asyncio.create_task(pool.getconn())
        await async_wait_until(lambda: pool.stats().waiting == 1, what="the waiter queued")
        await held.close()  # hands the connection to the waiter...
        waiter.cancel()  # ...which is cancelled before it could run
        with pytest.raises(asyncio.CancelledError):
            await waiter
        stats = pool.stats()
        assert (stats.idle, stats.busy, stats.waiting) == (1, 0, 0)
        async with pool.connection(timeout=1) as conn:
            assert await avalue(conn, "SELECT 1") == 1

    arun(adsn, body, min_size=1, max_size=1)


def test_a_waiter_cancelled_in_the_queue_leaves_it(adsn: str) -> None:
    async def body(pool: AsyncPool) -> None:
        held = await pool.getconn()
        waiter = asyncio.create_task(pool.getconn())
        await async_wait_until(lambda: pool.stats().waiting == 1, what="the waiter queued")
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert pool.stats().waiting == 0
        await held.close()  # goes back to the pool, not to the waiter that left
        stats = pool.stats()
        assert (stats.idle, stats.busy) == (1, 0)

    arun(adsn, body, min_size=1, max_size=1)


@pytest.fixture
def slow_dsn(pg_server: EmbeddedPostgres) -> Iterator[str]:
    pg_server.start()
    with Link(upstream=(pg_server.host, pg_server.port)) as link:
        link.add(Latency(delay_s=0.1), direction="both")
        host, port = link.listen_address
        yield f"postgresql://{pg_server.user}@{host}:{port}/{pg_server.database}"


async def _commit_reached_server(observer: psycopg.AsyncConnection[Any], pid: int) -> bool:
    cur = await observer.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,))
    return await cur.fetchone() == ("COMMIT",)


def test_a_return_cancelled_during_commit_still_commits_and_returns(slow_dsn: str, pg_dsn: str) -> None:
    async def body(pool: AsyncPool) -> None:
        async with pool.connection() as conn:
            await conn.execute("CREATE TABLE IF NOT EXISTS t_acancel (x int)")
            await conn.execute("TRUNCATE t_acancel")
        leaving = asyncio.Event()
        pids: list[int] = []

        async def insert() -> None:
            async with pool.connection() as conn:
                await conn.execute("INSERT INTO t_acancel VALUES (1)")
                pids.append(conn.info.backend_pid)
                leaving.set()  # the block ends here: COMMIT takes a 0.2 s round trip

        task = asyncio.create_task(insert())
        await leaving.wait()
        # The observer is not behind the slow link: it sees the COMMIT arrive 0.1 s into
        # the round trip, with the reply still 0.1 s away from the client.
        async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as observer:
            await async_wait_until(
                lambda: _commit_reached_server(observer, pids[0]), what="the COMMIT to reach the server"
            )
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await async_wait_until(lambda: pool.stats().busy == 0, what="busy == 0 (the shielded COMMIT done)")
        stats = pool.stats()
        assert (stats.idle, stats.busy, stats.discarded_dead) == (1, 0, 0)  # kept, not lost
        async with pool.connection() as conn:
            assert await avalue(conn, "SELECT count(*) FROM t_acancel") == 1  # committed once
            await conn.execute("DROP TABLE t_acancel")

    arun(slow_dsn, body, min_size=1, max_size=1)


def test_close_is_shielded_from_cancellation(adsn: str) -> None:
    async def body(pool: AsyncPool) -> None:
        async with pool.connection() as conn:
            await avalue(conn, "SELECT 1")
        closing = asyncio.create_task(pool.close())
        await asyncio.sleep(0)
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        await pool.close()  # the same close, finished
        stats = pool.stats()
        assert pool.closed and stats.idle == 0 and stats.hard_connects == stats.hard_disconnects

    arun(adsn, body, min_size=2, max_size=2)


class _Load:
    """16 tasks borrowing from a pool of 4 while a canceller kills them at random moments."""

    def __init__(self, pool: AsyncPool, seed: int, *, asyncpg: bool):
        self.pool = pool
        self.rng = random.Random(seed)
        self.asyncpg = asyncpg
        self.holders: dict[int, int] = {}  # backend pid -> task number holding it
        self.errors: list[BaseException] = []
        self.ops = 0
        self.cancelled = 0
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.stop = False

    def pid(self, conn: AsyncConnection) -> int:
        return int(conn.get_server_pid() if self.asyncpg else conn.info.backend_pid)

    async def work(self, index: int) -> None:
        while not self.stop:
            try:
                async with self.pool.connection(timeout=10) as conn:
                    pid = self.pid(conn)
                    assert pid not in self.holders, f"pid {pid} held by two tasks"
                    self.holders[pid] = index
                    try:
                        await self.use(conn)
                    finally:
                        del self.holders[pid]
                self.ops += 1
            except AssertionError as exc:
                self.errors.append(exc)
                return
            except Exception as exc:
                self.errors.append(exc)
                return

    async def use(self, conn: AsyncConnection) -> None:
        roll = self.rng.random()
        if roll < 0.1:
            await conn.execute("SET work_mem = '8MB'")  # this return needs a reset
        elif roll < 0.3:
            await conn.execute("BEGIN")
            await conn.execute("SELECT pg_sleep(0.002)")  # a cancel may land mid-query or mid-COMMIT
        else:
            await avalue(conn, "SELECT 1")

    async def cancel_some(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await asyncio.sleep(self.rng.uniform(0, 0.005))
            index = self.rng.randrange(len(self.tasks))
            self.tasks[index].cancel()
            self.cancelled += 1
            self.tasks[index] = asyncio.create_task(self.work(index))
        self.stop = True
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    async def run(self, seconds: float) -> None:
        self.tasks = {i: asyncio.create_task(self.work(i)) for i in range(16)}
        await self.cancel_some(seconds)


async def _backends(pool: AsyncPool, app: str) -> int:
    async with pool.connection() as conn:
        sql = f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}'"
        return int(await avalue(conn, sql))


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("driver", ADRIVERS)
def test_random_cancellations_under_load_leak_nothing(pg_dsn: str, driver: str, seed: int) -> None:
    app = f"acancel_{driver}_{seed}"
    observer_dsn = dsn_for(pg_dsn, driver)

    async def body(pool: AsyncPool) -> None:
        load = _Load(pool, seed, asyncpg=driver == "asyncpg")
        await load.run(1.0)
        assert not load.errors, load.errors[:3]
        assert load.ops > 0 and load.cancelled > 50
        await async_wait_until(
            lambda: pool.stats().busy == 0 and pool.stats().opening == 0, what="busy == opening == 0"
        )
        stats = pool.stats()
        assert (stats.busy, stats.waiting, stats.opening, stats.resetting) == (0, 0, 0, 0)
        # every checkout came back: clean, or found broken and discarded
        assert stats.soft_connects == stats.soft_disconnects + stats.discarded_dead
        assert stats.hard_connects - stats.hard_disconnects == stats.idle <= 4
        async with AsyncPool(observer_dsn, min_size=0, max_size=1) as observer:
            await _until_backends(observer, app, stats.idle)  # idle or closed, nothing else
            await pool.close()
            await _until_backends(observer, app, 0)
        assert pool.stats().hard_connects == pool.stats().hard_disconnects

    dsn = dsn_for(f"{pg_dsn}?application_name={app}", driver)
    arun(dsn, body, min_size=2, max_size=4, validate_after_idle=0.005, maintenance_interval=60)


async def _until_backends(observer: AsyncPool, app: str, expected: int) -> None:
    async def reached() -> bool:
        return await _backends(observer, app) == expected

    await async_wait_until(reached, interval=0.05, what=f"{expected} backends named {app}")
