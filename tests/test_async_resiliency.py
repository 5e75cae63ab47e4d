"""Idle connection resiliency through ``tether.AsyncPool``: psycopg's async connection and
asyncpg, against a real PostgreSQL whose backend is terminated while the session is idle."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

import tether
from test_resiliency import kill
from tether.testing import EmbeddedPostgres

DRIVERS = ["psycopg_async", "asyncpg"]


def dsn_for(server: EmbeddedPostgres, driver: str) -> str:
    scheme = "postgresql+asyncpg" if driver == "asyncpg" else "postgresql"
    return server.dsn.replace("postgresql", scheme, 1)


def pid_of(conn: tether.AsyncConnection, driver: str) -> int:
    raw = conn.raw
    return int(raw.get_server_pid() if driver == "asyncpg" else raw.info.backend_pid)


@pytest.mark.parametrize("driver", DRIVERS)
def test_settings_and_listen_come_back(pg_admin: EmbeddedPostgres, driver: str) -> None:
    async def main() -> None:
        async with tether.AsyncPool(dsn_for(pg_admin, driver), min_size=1, max_size=1) as pool:
            async with pool.connection() as conn:
                if driver == "psycopg_async":
                    await conn.set_autocommit(True)
                await conn.execute("SET search_path TO pg_catalog")
                await conn.execute("SET TIME ZONE 'Asia/Tokyo'")
                await conn.execute("LISTEN jobs")
                before = pid_of(conn, driver)
                await asyncio.to_thread(kill, pg_admin, before, conn)
                sql = "SELECT current_setting('search_path'), current_setting('TimeZone')"
                if driver == "asyncpg":
                    row = tuple(await conn.fetchrow(sql))
                    channels = [r[0] for r in await conn.fetch("SELECT pg_listening_channels()")]
                else:
                    row = await (await conn.execute(sql)).fetchone()
                    listening = await conn.execute("SELECT pg_listening_channels()")
                    channels = [r[0] for r in await listening.fetchall()]
                assert row == ("pg_catalog", "Asia/Tokyo")
                assert channels == ["jobs"]
                assert pid_of(conn, driver) != before
            assert pool.stats().recovered == 1

    asyncio.run(main())


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_temp_table_makes_the_session_lost(pg_admin: EmbeddedPostgres, driver: str) -> None:
    async def main() -> None:
        async with tether.AsyncPool(dsn_for(pg_admin, driver), min_size=1, max_size=1) as pool:
            async with pool.connection() as conn:
                if driver == "psycopg_async":
                    await conn.set_autocommit(True)
                await conn.execute("CREATE TEMP TABLE t1 (a int)")
                await asyncio.to_thread(kill, pg_admin, pid_of(conn, driver), conn)
                for _ in range(2):  # and again: never silently continued
                    with pytest.raises(tether.SessionLost) as caught:
                        await conn.execute("SELECT 1")
                    assert caught.value.reasons == ("temporary table t1",)
            async with pool.connection() as conn:  # the lost one was discarded
                await conn.execute("SELECT 1")
            stats = pool.stats()
            assert stats.sessions_lost == 1 and stats.recovered == 0

    asyncio.run(main())


def test_psycopg_async_cursor_is_remade_and_a_set_only_transaction_replays(
    pg_admin: EmbeddedPostgres,
) -> None:
    async def main() -> None:
        async with tether.AsyncPool(pg_admin.dsn, min_size=1, max_size=1) as pool:
            async with pool.connection() as conn:
                cursor = conn.cursor()
                await cursor.execute("SET LOCAL work_mem = '3MB'")  # not autocommit: a transaction
                await asyncio.to_thread(kill, pg_admin, conn.raw.info.backend_pid, conn)
                await cursor.execute("SELECT current_setting('work_mem')")
                assert await cursor.fetchone() == ("3MB",)
                await conn.commit()
            assert pool.stats().recovered == 1

    asyncio.run(main())


def test_async_no_recovery_with_connect_retry_count_0(pg_admin: EmbeddedPostgres) -> None:
    async def main() -> None:
        pool = tether.AsyncPool(pg_admin.dsn, min_size=1, max_size=1, connect_retry_count=0)
        async with pool, pool.connection() as conn:
            await conn.set_autocommit(True)
            await asyncio.to_thread(kill, pg_admin, conn.raw.info.backend_pid, conn)
            with pytest.raises(psycopg.OperationalError) as caught:
                await conn.execute("SELECT 1")
            assert not isinstance(caught.value, tether.SessionLost)

    asyncio.run(main())
