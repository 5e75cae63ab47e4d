"""``test_begin_goodbye`` for ``tether.AsyncPool``: psycopg (its BEGIN always rides with the
statement) and asyncpg (``transaction()`` sends its BEGIN alone, as SQLAlchemy's adapter
does before every statement), and SQLAlchemy's asyncio engine with asyncpg.

The idle backend is terminated and gone (its goodbye on a 100 ms link) before the borrow:
the goodbye answers the BEGIN, nothing of the borrower's ran, and the statement runs on
a recovered session. A kill during a statement reaches the application, never run twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg
import pytest

import tether
from fix_wait import async_wait_until
from tether.testing import EmbeddedPostgres

asyncpg = pytest.importorskip("asyncpg", reason="pip install 'tether[asyncpg]'")

Admin = psycopg.Connection[tuple[object, ...]]
TABLE = "begin_goodbye_async_rows"
# What the application sees when its statement's session ends under it (asyncpg: the
# transaction block's exit then finds its connection closed).
ENDED = (psycopg.OperationalError, asyncpg.PostgresConnectionError, asyncpg.PostgresError,
         asyncpg.InterfaceError)


@pytest.fixture
def admin(pg_admin: EmbeddedPostgres) -> Iterator[Admin]:
    """A connection of its own, straight to the server: a kill and its check cost a few ms."""
    with psycopg.connect(pg_admin.dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(f"CREATE TABLE {TABLE} (x int)")
        yield conn
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")


@pytest.fixture(params=["psycopg", "asyncpg"])
def url(request: pytest.FixtureRequest, wan_url: str) -> str:
    return wan_url.replace("postgresql://", f"postgresql+{request.param}://", 1)


def with_pool(url: str, body: Callable[[tether.AsyncPool], Awaitable[None]]) -> None:
    """``body(pool)`` in ``asyncio.run``, on a pool of one connection, warm."""

    async def main() -> None:
        async with tether.AsyncPool(url, min_size=1, max_size=1, timeout=10.0,
                                    maintenance_interval=60) as pool:
            await pool.wait(10.0)
            await body(pool)

    asyncio.run(main())


async def idle_pid(pool: tether.AsyncPool) -> int:
    """The pooled connection's backend, once it is idle in the pool (its background end done)."""
    await async_wait_until(lambda: pool.stats().idle == 1 and pool.stats().resetting == 0,
                           what="the connection idle")
    async with pool.connection() as conn:
        pid = int(await first(conn, "SELECT pg_backend_pid()"))
        await conn.rollback()
    await async_wait_until(lambda: pool.stats().idle == 1 and pool.stats().resetting == 0,
                           what="the connection idle")
    return pid


async def first(conn: Any, sql: str, *args: Any) -> Any:
    """The first value of ``sql``'s first row, with either driver."""
    if tether.session.lease_of(conn).driver.name == "asyncpg":
        return await conn.fetchval(sql, *args)
    row = await (await conn.execute(sql.replace("$1", "%s"), args or None)).fetchone()
    return row[0]


async def kill_idle(admin: Admin, pid: int) -> None:
    """Terminate the idle backend and wait until it is gone: its goodbye has been sent."""
    assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
    await async_wait_until(
        lambda: not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchall(),
        interval=0.002, what=f"backend {pid} gone")


def count(admin: Admin) -> int:
    row = admin.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
    assert row is not None
    return int(row[0])


async def in_transaction(conn: Any, sql: str, *args: Any) -> Any:
    """``sql`` as a transaction's first statement: psycopg's own BEGIN (transaction mode), or
    asyncpg's ``transaction()``, its BEGIN alone."""
    if tether.session.lease_of(conn).driver.name != "asyncpg":
        return await first(conn, sql, *args)
    async with conn.transaction():
        return await conn.fetchval(sql, *args)


def test_a_write_meeting_the_goodbye_runs_once(url: str, admin: Admin) -> None:
    with_pool(url, lambda pool: write_meeting_the_goodbye(pool, admin))


async def write_meeting_the_goodbye(pool: tether.AsyncPool, admin: Admin) -> None:
    await kill_idle(admin, await idle_pid(pool))
    async with pool.connection() as conn:
        assert await in_transaction(conn, f"INSERT INTO {TABLE} VALUES ($1) RETURNING x", 5) == 5
    assert count(admin) == 1
    stats = pool.stats()
    assert (stats.recovered, stats.discarded_dead) == (1, 0)  # met by the statement, not the checkout


def test_pool_transaction_meeting_the_goodbye_runs_its_function_once(wan_url: str, admin: Admin) -> None:
    # psycopg only: pool.transaction refuses asyncpg, which has transactions of its own.
    with_pool(wan_url, lambda pool: pool_transaction_meeting_the_goodbye(pool, admin))


async def pool_transaction_meeting_the_goodbye(pool: tether.AsyncPool, admin: Admin) -> None:
    calls: list[int] = []

    async def work(conn: Any) -> int:
        calls.append(1)
        await conn.execute(f"INSERT INTO {TABLE} VALUES (%s)", (7,))
        return int(await first(conn, f"SELECT count(*) FROM {TABLE}"))

    await kill_idle(admin, await idle_pid(pool))
    assert await pool.transaction(work, retry=False) == 1  # no retry: only the BEGIN's goodbye is resent
    assert calls == [1]
    assert count(admin) == 1
    assert pool.stats().recovered == 1


def test_sqlalchemy_asyncpg_reads_its_rows_through_the_goodbye(wan_url: str, admin: Admin) -> None:
    pytest.importorskip("sqlalchemy", reason="pip install 'tether[sqlalchemy]'")
    pytest.importorskip("greenlet", reason="SQLAlchemy's asyncio needs it: pip install 'sqlalchemy[asyncio]'")
    asyncio.run(sqlalchemy_reads(wan_url, admin))


async def sqlalchemy_reads(wan_url: str, admin: Admin) -> None:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import AsyncSession

    import tether.sqlalchemy as tsa

    url = wan_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    async with tether.AsyncPool(url, min_size=1, max_size=1, timeout=10.0, maintenance_interval=60) as pool:
        engine = tsa.create_async_engine(url, pool=pool)
        try:
            admin.execute(f"INSERT INTO {TABLE} VALUES (1), (2)")
            query = sa.text(f"SELECT x FROM {TABLE} ORDER BY x")
            async with AsyncSession(engine) as session:  # the adapter: BEGIN alone, then the read
                assert (await session.execute(query)).all() == [(1,), (2,)]
            await kill_idle(admin, await idle_pid(pool))
            async with AsyncSession(engine) as session:
                assert (await session.execute(query)).all() == [(1,), (2,)]
            assert pool.stats().recovered == 1
        finally:
            await engine.dispose()


def test_a_statement_killed_while_running_is_not_run_again(url: str, admin: Admin) -> None:
    with_pool(url, lambda pool: killed_while_running(pool, admin))


async def killed_while_running(pool: tether.AsyncPool, admin: Admin) -> None:
    pid = await idle_pid(pool)

    async def kill_when_sleeping() -> None:
        await async_wait_until(lambda: admin.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event = 'PgSleep'", (pid,)).fetchall(),
            timeout=10.0, what=f"backend {pid} in pg_sleep")
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    killer = asyncio.create_task(kill_when_sleeping())
    sql = f"WITH ins AS (INSERT INTO {TABLE} VALUES (1) RETURNING x) SELECT x FROM ins, pg_sleep(30)"
    with pytest.raises(ENDED):
        async with pool.connection() as conn:
            await in_transaction(conn, sql)
    await killer
    assert count(admin) == 0  # rolled back with its session; never run a second time
    assert pool.stats().recovered == 0


def test_a_rollback_meeting_the_goodbye_is_done_by_the_sessions_end(url: str, admin: Admin) -> None:
    with_pool(url, lambda pool: rollback_meeting_the_goodbye(pool, admin))


async def rollback_meeting_the_goodbye(pool: tether.AsyncPool, admin: Admin) -> None:
    async with pool.connection() as conn:
        asyncpg_driver = tether.session.lease_of(conn).driver.name == "asyncpg"
        tx = conn.transaction() if asyncpg_driver else None
        if tx is not None:
            await tx.start()  # as SQLAlchemy's adapter does
        pid = int(await first(conn, "SELECT pg_backend_pid()"))
        await kill_idle(admin, pid)  # idle in transaction; its goodbye on the wire
        await (tx.rollback() if tx is not None else conn.rollback())  # ended with the session
        assert int(await first(conn, "SELECT pg_backend_pid()")) != pid  # on a recovered session
    assert pool.stats().recovered == 1


def test_an_autocommit_write_meeting_the_goodbye_runs_once(wan_url: str, admin: Admin) -> None:
    # psycopg: an empty statement leads it in one pipeline (asyncpg: nothing can, see the docs).
    with_pool(wan_url, lambda pool: autocommit_write_meeting_the_goodbye(pool, admin))


async def autocommit_write_meeting_the_goodbye(pool: tether.AsyncPool, admin: Admin) -> None:
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        await first(conn, "SELECT 1")  # a first round trip: the server is far
        pid = int(await first(conn, "SELECT pg_backend_pid()"))
        await kill_idle(admin, pid)
        assert await first(conn, f"INSERT INTO {TABLE} VALUES ($1) RETURNING x", 3) == 3
        assert int(await first(conn, "SELECT pg_backend_pid()")) != pid
    assert count(admin) == 1
    assert pool.stats().recovered == 1


# -- asyncpg: a transaction begun, nothing in it yet (SQLAlchemy's adapter: BEGIN, prepare, execute)


def asyncpg_url(wan_url: str) -> str:
    return wan_url.replace("postgresql://", "postgresql+asyncpg://", 1)


def test_asyncpg_a_prepare_meeting_the_goodbye_begins_the_transaction_again(
    wan_url: str, admin: Admin
) -> None:
    with_pool(asyncpg_url(wan_url), lambda pool: prepare_meeting_the_goodbye(pool, admin))


async def prepare_meeting_the_goodbye(pool: tether.AsyncPool, admin: Admin) -> None:
    async with pool.connection() as conn:
        pid = int(await first(conn, "SELECT pg_backend_pid()"))
        tx = conn.transaction()
        await tx.start()
        await kill_idle(admin, pid)  # idle in a transaction that holds nothing; goodbye on the wire
        statement = await conn.prepare(f"INSERT INTO {TABLE} VALUES ($1) RETURNING x")  # runs nothing
        assert await statement.fetchval(4) == 4
        assert tether.session.lease_of(conn).raw.is_in_transaction()  # begun again, on the new session
        assert count(admin) == 0  # not committed yet: it is in the transaction
        await tx.commit()
    assert count(admin) == 1
    assert pool.stats().recovered == 1


def test_asyncpg_a_transaction_that_ran_something_is_not_begun_again(wan_url: str, admin: Admin) -> None:
    with_pool(asyncpg_url(wan_url), lambda pool: transaction_that_ran_something(pool, admin))


async def transaction_that_ran_something(pool: tether.AsyncPool, admin: Admin) -> None:
    async with pool.connection() as conn:
        pid = int(await first(conn, "SELECT pg_backend_pid()"))
        tx = conn.transaction()
        await tx.start()
        await conn.execute(f"INSERT INTO {TABLE} VALUES (9)")
        await kill_idle(admin, pid)
        with pytest.raises(ENDED):
            await conn.prepare(f"SELECT count(*) FROM {TABLE}")
        await tx.rollback()  # the session's end rolled it back already
    assert count(admin) == 0
    assert pool.stats().recovered == 0
