"""The command timeout: no statement, COMMIT or fetch outlives it, on PostgreSQL.

A statement the server is slow to answer is cancelled (a PostgreSQL cancel request) and
its connection stays usable; one sent down a path that forwards nothing (the WAN
emulator's blackhole, where the kernel sees its bytes acknowledged and no socket option
fires) has its cancel go unanswered too, so its socket is severed a grace later. Either
way the caller gets ``tether.CommandTimeout`` saying which, within the timeout plus the
grace. A COMMIT that times out is resolved like a lost COMMIT reply, never reported as a
success unless it committed.

Written once for both pools; ``tools/async_to_sync.py`` makes ``test_command_timeout.py``.
A task cancelled mid-statement is in ``test_pool_asyncio.py``.
The time bounds are upper bounds only (a lower bound would race) with an allowance for a
busy 2-core machine.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

import tether
from fix_twins import abackend_pid, arun, avalue
from tether import AsyncPool
from tether.session import AsyncConnection, lease_of
from tether.session._watchdog import GRACE_S
from tether.testing import EmbeddedPostgres
from tether.wan import Link

SCHEDULING_S = 0.5  # a busy CI machine's wake-ups; the bound is timeout + 1 s


async def timed_out(conn: AsyncConnection, sql: str, **kwargs: object) -> tuple[tether.CommandTimeout, float]:
    """Run ``sql`` expecting a CommandTimeout: the error, and how long until it came."""
    started = time.monotonic()
    with pytest.raises(tether.CommandTimeout) as caught:
        await conn.execute(sql, **kwargs)
    return caught.value, time.monotonic() - started


def active_sleeps(server: EmbeddedPostgres) -> int:
    """How many backends are running pg_sleep now (a cancelled one is not)."""
    with psycopg.connect(server.url(), autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep%'"
        ).fetchone()
        return int(row[0]) if row else 0


def test_the_default_is_30_seconds_and_each_borrow_starts_from_the_pools(adsn: str) -> None:
    async def body(pool: AsyncPool) -> None:
        assert pool.config.command_timeout == 30.0
        async with pool.connection() as conn:
            assert conn.command_timeout == 30.0
            conn.command_timeout = 0.5
            assert conn.command_timeout == 0.5
        async with pool.connection() as conn:  # the same session: this borrow's own again
            assert conn.command_timeout == 30.0

    arun(adsn, body, min_size=1, max_size=1)


def test_the_connection_string_sets_it_and_an_argument_wins(adsn: str) -> None:
    dsn = adsn + ("&" if "?" in adsn else "?") + "command_timeout=0.4"
    assert AsyncPool(dsn, command_timeout=2, open=False).config.command_timeout == 2.0

    async def body(pool: AsyncPool) -> None:
        assert pool.config.command_timeout == 0.4
        async with pool.connection() as conn:
            error, _ = await timed_out(conn, "SELECT pg_sleep(30)")
            assert error.timeout_s == 0.4

    arun(dsn, body, min_size=1, max_size=1)


def test_a_slow_statement_is_cancelled_and_its_connection_stays_usable(
    adsn: str, pg_server: EmbeddedPostgres
) -> None:
    async def body(pool: AsyncPool) -> None:
        async with pool.connection() as conn:
            pid = await abackend_pid(conn)
            error, took = await timed_out(conn, "SELECT pg_sleep(30)")
            assert took <= 0.5 + GRACE_S + SCHEDULING_S
            assert not error.severed and error.timeout_s == 0.5
            assert "command timeout of 0.5 s" in str(error) and "cancelled" in str(error)
            assert isinstance(error, lease_of(conn).driver.module.OperationalError)  # the driver's too
            await conn.rollback()  # the cancel aborted the transaction
            assert await abackend_pid(conn) == pid  # the same session, still usable
        assert active_sleeps(pg_server) == 0  # the server stopped working on it
        assert pool.stats().discarded_dead == 0

    arun(adsn, body, min_size=1, max_size=1, command_timeout=0.5)


def test_one_call_and_one_borrow_can_change_the_timeout(adsn: str) -> None:
    async def body(pool: AsyncPool) -> None:
        async with pool.connection() as conn:
            error, _ = await timed_out(conn, "SELECT pg_sleep(30)", command_timeout=0.3)
            assert error.timeout_s == 0.3
            await conn.rollback()
            await conn.execute("SELECT pg_sleep(0.2)", command_timeout=0)  # 0: no limit
            conn.command_timeout = 0.4
            error, _ = await timed_out(conn, "SELECT pg_sleep(30)")
            assert error.timeout_s == 0.4
            await conn.rollback()
            with pytest.raises(ValueError, match="command_timeout must be in \\[0, "):
                await conn.execute("SELECT 1", command_timeout=-1)
            with pytest.raises(TypeError, match="command_timeout must be a number of seconds"):
                conn.command_timeout = "5"  # type: ignore[assignment]
            assert await avalue(conn, "SELECT 1") == 1

    arun(adsn, body, min_size=1, max_size=1)  # the default, 30 s, never reached here


def test_a_statement_into_a_blackhole_is_severed_within_timeout_and_grace(
    link: Link, awan_dsn: str
) -> None:
    async def body(pool: AsyncPool) -> None:
        async with pool.connection() as conn:
            assert await avalue(conn, "SELECT 1") == 1
            with link.blackhole():  # the cancel request is lost too
                error, took = await timed_out(conn, "SELECT 2")
            assert error.severed and "severed" in str(error)
            assert took <= 1.0 + GRACE_S + SCHEDULING_S
        assert pool.stats().discarded_dead == 1  # a severed connection is never lent again
        async with pool.connection(timeout=5) as conn:
            assert await avalue(conn, "SELECT 3") == 3

    arun(awan_dsn, body, min_size=1, max_size=1, command_timeout=1.0, login_timeout=2.0)


def test_a_commit_into_a_blackhole_raises_and_is_not_applied(
    link: Link, awan_dsn: str, pg_server: EmbeddedPostgres
) -> None:
    table = f"ct_commit_{threading.get_ident()}"
    with psycopg.connect(pg_server.url(), autocommit=True) as admin:
        admin.execute(f"DROP TABLE IF EXISTS {table}")
        admin.execute(f"CREATE TABLE {table} (id int)")

    async def insert(pool: AsyncPool) -> None:
        async with pool.connection() as conn:  # leaving the block commits
            await conn.execute("BEGIN")  # asyncpg has no transaction of its own
            await conn.execute(f"INSERT INTO {table} VALUES (1)")
            link.blackhole(direction="upstream")  # the COMMIT never reaches the server

    async def body(pool: AsyncPool) -> None:
        started = time.monotonic()
        with pytest.raises(tether.CommandTimeout) as caught:
            await insert(pool)
        assert caught.value.severed
        assert time.monotonic() - started <= 1.0 + GRACE_S + SCHEDULING_S
        link.clear()

    arun(awan_dsn, body, min_size=1, max_size=1, command_timeout=1.0, login_timeout=2.0)
    with psycopg.connect(pg_server.url(), autocommit=True) as admin:
        row = admin.execute(f"SELECT count(*) FROM {table}").fetchone()
        admin.execute(f"DROP TABLE {table}")
    assert row is not None and row[0] == 0
