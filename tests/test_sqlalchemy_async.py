"""SQLAlchemy's asyncio engine on a ``tether.AsyncPool``: asyncpg and psycopg, idle kills
inside and outside a transaction, 100 of them without a slot leaked, the async unit of
work, and ``async_creator=pool.getconn`` (SQLAlchemy closes with ``timeout=``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

sa = pytest.importorskip("sqlalchemy", reason="pip install 'tether[sqlalchemy]'")
pytest.importorskip("greenlet", reason="SQLAlchemy's asyncio needs it: pip install 'sqlalchemy[asyncio]'")

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

import tether  # noqa: E402
import tether.sqlalchemy as tsa  # noqa: E402
from fix_pool import wait_for_goodbye  # noqa: E402
from fix_twins import socket_of  # noqa: E402
from tether.testing import EmbeddedPostgres  # noqa: E402

DRIVERS = ["asyncpg", "psycopg"]


class Base(DeclarativeBase):
    pass


class Counter(Base):
    __tablename__ = "tsa_async_counters"
    id: Mapped[int] = mapped_column(primary_key=True)
    n: Mapped[int]


def sa_url(server: EmbeddedPostgres, driver: str) -> str:
    return server.dsn.replace("postgresql://", f"postgresql+{driver}://", 1)


def proxy_of(conn: Any) -> Any:
    """tether's proxy behind an AsyncConnection of SQLAlchemy's."""
    return conn.sync_connection.connection.dbapi_connection._connection


async def pid_of(conn: Any) -> int:
    return int((await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one())


async def kill(admin: EmbeddedPostgres, conn: Any, *, idle: bool = False) -> int:
    """Terminate ``conn``'s backend; ``idle``: with no transaction open (committed first)."""
    pid = await pid_of(conn)
    if idle:
        await conn.commit()
    fd = socket_of(proxy_of(conn))
    await asyncio.to_thread(admin.execute, "SELECT pg_terminate_backend(%s, 5000)", (pid,))
    await asyncio.to_thread(wait_for_goodbye, fd)
    return int(pid)


@pytest.mark.parametrize("driver", DRIVERS)
def test_the_async_engine_runs_on_tether(pg_admin: EmbeddedPostgres, driver: str) -> None:
    async def main() -> None:
        engine = create_async_engine(sa_url(pg_admin, driver), plugins=["tether"], tether_max_size=2)
        try:
            assert isinstance(engine.sync_engine.pool, tsa.AsyncTetherPool)
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.drop_all)
                await conn.run_sync(Base.metadata.create_all)
                await conn.execute(sa.insert(Counter).values(id=1, n=0))
            async with engine.connect() as conn:
                sql = sa.text("SELECT '{1,2}'::int[], CAST('{\"a\": 1}' AS jsonb)")
                row = (await conn.execute(sql)).one()
                assert tuple(row) == ([1, 2], {"a": 1})
                assert isinstance(proxy_of(conn), tether.AsyncConnection)
            stats = engine.sync_engine.pool.tether.stats()
            assert stats.busy == 0
        finally:
            await engine.dispose()

    asyncio.run(main())


def ours(admin: EmbeddedPostgres) -> int:
    """The server's count of the test engine's connections (pg_stat_activity)."""
    rows = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tsa-kills'")
    return int(rows[0][0])


@pytest.mark.parametrize("driver", DRIVERS)
def test_100_idle_kills_leak_no_slot(pg_admin: EmbeddedPostgres, driver: str) -> None:
    """Half the kills outside a transaction (the session comes back), half inside one (a
    disconnect: SQLAlchemy invalidates, tether discards); then nothing is left borrowed,
    and the server has exactly the pool's connections."""

    async def main() -> None:
        url = sa_url(pg_admin, driver) + "?application_name=tsa-kills"
        engine = create_async_engine(url, plugins=["tether"], tether_max_size=2, tether_min_size=0,
                                     tether_timeout=5.0)
        pool = engine.sync_engine.pool.tether
        invalidated = 0
        try:
            for i in range(100):
                async with engine.connect() as conn:
                    if i % 2:  # outside a transaction: unnoticed
                        before = await kill(pg_admin, conn, idle=True)
                        assert await pid_of(conn) != before
                    else:  # inside one: a disconnect, and the engine goes on
                        await kill(pg_admin, conn)
                        with pytest.raises(sa.exc.DBAPIError) as raised:
                            await conn.exec_driver_sql("SELECT 1")
                        invalidated += raised.value.connection_invalidated
                        await conn.rollback()
                        assert (await conn.exec_driver_sql("SELECT 1")).scalar_one() == 1
            stats = pool.stats()
            assert stats.busy == 0
            assert invalidated == 50
            assert stats.recovered == 50
            assert await asyncio.to_thread(ours, pg_admin) == stats.idle
        finally:
            await engine.dispose()
        assert await asyncio.to_thread(ours, pg_admin) == 0

    asyncio.run(main())


def test_async_creator_getconn_gives_back_after_an_idle_kill(pg_admin: EmbeddedPostgres) -> None:
    """The issue's case: SQLAlchemy's asyncpg adapter closes with ``close(timeout=...)``."""

    async def main() -> None:
        url = sa_url(pg_admin, "asyncpg")
        async with tether.AsyncPool(url, min_size=0, max_size=1, timeout=5.0) as apool:
            engine = create_async_engine("postgresql+asyncpg://", async_creator=apool.getconn,
                                         poolclass=NullPool)
            try:
                async with engine.connect() as conn:
                    await conn.exec_driver_sql("SELECT 1")
                    await kill(pg_admin, conn)
                    with pytest.raises(sa.exc.DBAPIError):
                        await conn.exec_driver_sql("SELECT 1")
                assert apool.stats().busy == 0
                async with engine.connect() as conn:  # the slot is free again
                    assert (await conn.exec_driver_sql("SELECT 1")).scalar_one() == 1
            finally:
                await engine.dispose()

    asyncio.run(main())


def test_async_unit_of_work(pg_admin: EmbeddedPostgres) -> None:
    async def main() -> None:
        engine = tsa.create_async_engine(sa_url(pg_admin, "asyncpg"), max_size=2)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.drop_all)
                await conn.run_sync(Base.metadata.create_all)
            factory = async_sessionmaker(engine, expire_on_commit=False)
            await tsa.async_transaction(factory, _add_counter)
            runs: list[int] = []

            async def bump(session: Any) -> int:
                counter = await session.get(Counter, 1)
                runs.append(counter.n)
                if len(runs) == 1:
                    await kill(pg_admin, await session.connection())
                counter.n += 1
                return int(counter.n)

            assert await tsa.async_transaction(factory, bump, retry=3) == 1
            assert runs == [0, 0]
        finally:
            await engine.dispose()

    asyncio.run(main())


async def _add_counter(session: Any) -> None:
    session.add(Counter(id=1, n=0))


def test_asyncpg_statements_prepared_once_per_session(pg_admin: EmbeddedPostgres) -> None:
    """SQLAlchemy's asyncpg adapter prepares each statement; the prepared statement lives in
    the server's session, so later borrows of the same connection use it (no Parse on the
    wire), until tether's reset (DISCARD ALL) or idle resiliency's new session, after which
    it is prepared again, and works."""
    from fix_turns import counting

    sql = sa.text("SELECT 41 + 1")

    def parses(counter: Any) -> int:
        return sum(m == "P:SELECT 41 + 1" for turn in counter.turns() for m in turn)

    async def read(engine: Any) -> None:
        async with engine.connect() as conn:
            assert (await conn.execute(sql)).scalar_one() == 42

    async def main(counter: Any, dsn: str) -> None:
        url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        engine = create_async_engine(url, plugins=["tether"], tether_max_size=1, tether_min_size=1)
        try:
            for _ in range(3):
                await read(engine)
            assert parses(counter) == 1  # one Parse, three reads
            async with engine.connect() as conn:  # a session change: the return resets
                await conn.exec_driver_sql("SET search_path TO public")
                await conn.commit()
            await asyncio.to_thread(counter.settle)
            await read(engine)
            assert parses(counter) == 2  # DISCARD ALL deallocated it: prepared again
            async with engine.connect() as conn:
                await kill(pg_admin, conn, idle=True)
                # idle resiliency's new session: the statement is prepared there
                assert (await conn.execute(sql)).scalar_one() == 42
            assert parses(counter) == 3
            assert engine.sync_engine.pool.tether.stats().recovered >= 1
        finally:
            await engine.dispose()

    with counting(pg_admin) as (counter, dsn):
        asyncio.run(main(counter, dsn))


def test_a_write_through_a_cached_statement_is_never_dropped_by_a_kill(pg_admin: EmbeddedPostgres) -> None:
    """The adapter runs a cached prepared statement without the proxy's execute: a
    transaction that ran one holds work, so a kill then is a disconnect the application
    sees, never a quiet recovery that would commit the transaction without its write."""

    async def main() -> None:
        engine = create_async_engine(sa_url(pg_admin, "asyncpg"), plugins=["tether"], tether_max_size=1)
        insert = sa.insert(Counter).values(n=7)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.drop_all)
                await conn.run_sync(Base.metadata.create_all)
            async with engine.connect() as conn:
                await conn.execute(insert.values(id=1))  # prepared here
                await conn.commit()
                pid = await pid_of(conn)
                await conn.commit()
                await conn.execute(insert.values(id=2))  # a new transaction: the cached statement
                fd = socket_of(proxy_of(conn))
                await asyncio.to_thread(pg_admin.execute, "SELECT pg_terminate_backend(%s, 5000)", (pid,))
                await asyncio.to_thread(wait_for_goodbye, fd)
                with pytest.raises(sa.exc.DBAPIError) as raised:
                    await conn.execute(sa.select(sa.func.count()).select_from(Counter))
                assert raised.value.connection_invalidated
            rows = await asyncio.to_thread(pg_admin.execute, "SELECT id FROM tsa_async_counters ORDER BY id")
            assert [r[0] for r in rows] == [1]  # the second never committed, and nobody was told it did
        finally:
            await engine.dispose()

    asyncio.run(main())
