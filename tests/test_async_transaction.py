"""``await pool.transaction(fn)``: the async twin of the unit of work, same guarantees."""

from __future__ import annotations

import asyncio
import threading

import pytest

import tether
from fix_wait import async_wait_until
from test_ledger import SCHEMA, SLOW_COMMIT_S
from tether.testing import EmbeddedPostgres
from tether.wan import Link


def run(dsn: str, body, **settings):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        async with tether.AsyncPool(dsn, min_size=1, max_size=2, timeout=10, **settings) as pool:
            return await body(pool)

    return asyncio.run(main())


async def one(conn: tether.AsyncConnection, sql: str, params: tuple[object, ...] = ()) -> object:
    cursor = await conn.execute(sql, params or None)
    row = await cursor.fetchone()
    return None if row is None else row[0]


def test_a_unit_commits_and_the_decorator_binds_the_connection(pg_dsn: str) -> None:
    async def body(pool: tether.AsyncPool) -> tuple[object, object]:
        async def setup(conn: tether.AsyncConnection) -> None:
            await conn.execute("CREATE TABLE IF NOT EXISTS async_units (x int)")
            await conn.execute("TRUNCATE async_units")

        await pool.transaction(setup)

        @pool.transactional(retry=3)
        async def add(conn: tether.AsyncConnection, x: int) -> int:
            await conn.execute("INSERT INTO async_units VALUES (%s)", (x,))
            return x

        assert await add(5) == 5
        total = await pool.transaction(lambda c: one(c, "SELECT sum(x) FROM async_units"))
        refused = None
        try:
            await pool.transaction(lambda c: c.commit())
        except tether.Error as exc:
            refused = exc
        return total, refused

    total, refused = run(pg_dsn, body)
    assert total == 5
    assert "inside pool.transaction" in str(refused)


def test_a_connection_broken_before_commit_runs_the_unit_again(pg_admin: EmbeddedPostgres) -> None:
    runs = [0]

    async def unit(conn: tether.AsyncConnection) -> object:
        runs[0] += 1
        await one(conn, "SELECT 1")  # the transaction is open (BEGIN rides on this)
        if runs[0] == 1:
            await asyncio.to_thread(pg_admin.terminate_backends)
        return await one(conn, "SELECT 41 + 1")

    assert run(pg_admin.dsn, lambda pool: pool.transaction(unit)) == 42
    assert runs[0] == 2


def test_a_lost_commit_reply_is_resolved_not_resent(pg_admin: EmbeddedPostgres) -> None:
    pg_admin.execute(SCHEMA)
    with Link(upstream=(pg_admin.host, pg_admin.port)) as link:
        host, port = link.listen_address
        dsn = f"postgresql://{pg_admin.user}@{host}:{port}/{pg_admin.database}"
        runs = [0]

        async def unit(conn: tether.AsyncConnection) -> str:
            runs[0] += 1
            slow = runs[0] == 1  # the first COMMIT takes 0.3 s at the server...
            await conn.execute("INSERT INTO ledger VALUES ('a1', 1, 2, 10, %s)", (slow,))
            if slow:  # ...and the link resets every connection while it runs
                threading.Timer(SLOW_COMMIT_S / 3, link.reset_all).start()
            return "done"

        assert run(dsn, lambda pool: pool.transaction(unit)) == "done"
    assert pg_admin.execute("SELECT count(*) FROM ledger WHERE transfer_id = 'a1'") == [(1,)]
    assert runs[0] == 1  # resolved as committed: the unit did not run again


def test_cancelling_the_caller_cancels_the_unit_and_returns_its_connection(pg_dsn: str) -> None:
    async def body(pool: tether.AsyncPool) -> tether.PoolStats:
        started = asyncio.Event()

        async def unit(conn: tether.AsyncConnection) -> None:
            started.set()
            await conn.execute("SELECT pg_sleep(5)")

        task = asyncio.create_task(pool.transaction(unit))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await async_wait_until(lambda: pool.stats().busy == 0, what="busy == 0 (the background return)")
        return pool.stats()

    stats = run(pg_dsn, body)
    # returned (reset) or, when the cancel caught pg_sleep on the wire, discarded: never lent twice or leaked
    assert stats.busy == 0 and stats.soft_connects == stats.soft_disconnects + stats.discarded_dead


def test_asyncpg_units_of_work_are_refused_clearly(pg_dsn: str) -> None:
    pytest.importorskip("asyncpg", reason="asyncpg is not installed")
    dsn = pg_dsn.replace("postgresql://", "postgresql+asyncpg://", 1)

    async def body(pool: tether.AsyncPool) -> None:
        await pool.transaction(lambda conn: conn.fetchval("SELECT 1"))

    with pytest.raises(tether.Error, match="returns a cursor"):
        run(dsn, body)
