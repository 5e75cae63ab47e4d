"""The pool against a real PostgreSQL: checkout, return, limits, lifetimes, bad use.

Written once for both pools (``tools/async_to_sync.py`` makes the threaded twin of this
module, ``test_pool.py``). A test given ``adsn`` runs on each of the pool's PostgreSQL
drivers (``fix_twins.py``), one given ``pg_dsn`` on psycopg. What only one front end has is
beside: ``test_pool_asyncio.py`` (asyncpg's own API, tasks, the event loop) and
``test_pool_threads.py`` (threads, signals, ``tether.connect``).
"""

from __future__ import annotations

import gc
import logging
import time

import psycopg
import pytest

import tether
from fix_twins import abackend_pid, arun, avalue, socket_of
from fix_wait import async_wait_until
from tether import AsyncPool
from tether.net import read_keepalive


def test_checkout_runs_queries_and_returns_lifo(adsn: str) -> None:
    async def body(pool: AsyncPool) -> None:
        async with pool.connection() as a, pool.connection() as b:
            pid_a, pid_b = await abackend_pid(a), await abackend_pid(b)
        assert pid_a != pid_b
        async with pool.connection() as c:  # the last one returned comes out first
            assert await abackend_pid(c) == pid_a
        stats = pool.stats()
        assert (stats.idle, stats.busy, stats.hard_connects) == (2, 0, 2)

    arun(adsn, body, min_size=2, max_size=2)


def test_block_commits_on_success_and_rolls_back_on_error(adsn: str, adriver: str) -> None:
    table = f"t_commit_{adriver}"

    async def body(pool: AsyncPool) -> list[int]:
        async with pool.connection() as conn:
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (x int)")
            await conn.execute(f"TRUNCATE {table}")
        async with pool.connection() as conn:
            if adriver == "asyncpg":  # asyncpg autocommits unless asked for a transaction
                await conn.execute("BEGIN")
            await conn.execute(f"INSERT INTO {table} VALUES (1)")
        with pytest.raises(ZeroDivisionError):
            async with pool.connection() as conn:
                if adriver == "asyncpg":
                    await conn.execute("BEGIN")
                await conn.execute(f"INSERT INTO {table} VALUES (2)")
                raise ZeroDivisionError
        async with pool.connection() as conn:
            rows = [await avalue(conn, f"SELECT array_agg(x ORDER BY x) FROM {table}")]
            await conn.execute(f"DROP TABLE {table}")
        return rows

    assert arun(adsn, body, max_size=1) == [[1]]


def test_a_returned_connection_cannot_be_used(pg_dsn: str) -> None:
    async def body(pool: AsyncPool) -> None:
        async with pool.connection() as conn:
            cur = conn.cursor()
        with pytest.raises(tether.ConnectionReturned, match="returned to pool"):
            await conn.execute("SELECT 1")
        with pytest.raises(psycopg.InterfaceError):  # also the driver's own class
            await cur.execute("SELECT 1")
        with pytest.raises(tether.ConnectionReturned):
            conn.raw  # noqa: B018
        await conn.close()  # closing twice is harmless
        assert "returned from pool" in repr(conn)

    arun(pg_dsn, body, max_size=1)


def test_nothing_made_from_a_returned_connection_reaches_the_next_borrower(pg_dsn: str) -> None:
    # A kept cursor, its stream and copy, its connection, psycopg's transaction(): each
    # would run on the next borrower's session (same socket) if it were not tied to its borrow.
    async def body(pool: AsyncPool) -> None:
        first = await pool.getconn()
        cur = await first.execute("SELECT 1")
        stream = cur.stream
        transaction = first.transaction
        await pool.putconn(first)
        second = await pool.getconn()
        await second.execute("SET application_name = 'second'")
        for use in (
            lambda: cur.stream("SELECT current_setting('application_name')"),
            lambda: cur.copy("COPY (SELECT 1) TO STDOUT"),
            lambda: cur.connection,
            lambda: cur.description,
            lambda: stream("SELECT 1"),
            lambda: transaction(),
        ):
            with pytest.raises(tether.ConnectionReturned):
                use()
        with pytest.raises(tether.ConnectionReturned):
            await cur.fetchall()
        with pytest.raises(tether.ConnectionReturned):
            await cur.execute("SELECT 1")
        await cur.close()  # harmless: the driver's cursor is not touched
        assert await avalue(second, "SELECT current_setting('application_name')") == "second"
        assert (await second.execute("SELECT 2")).connection is second
        await pool.putconn(second)

    arun(pg_dsn, body, max_size=1)


def test_a_connection_from_another_pool_is_refused_and_nothing_changes(pg_dsn: str) -> None:
    async def body(pa: AsyncPool) -> None:
        async with AsyncPool(pg_dsn, name="pb", max_size=1) as pb:
            conn = await pa.getconn()
            with pytest.raises(tether.PoolError, match="'pb' did not lend this connection: it came"):
                await pb.putconn(conn)
            with pytest.raises(tether.PoolError, match="takes back only the connections it lent, not a str"):
                await pb.putconn("conn")  # type: ignore[arg-type]
            assert (pb.stats().busy, pa.stats().busy) == (0, 1)
            assert await avalue(conn, "SELECT 1") == 1  # still lent, still working
            await pa.putconn(conn)
            await async_wait_until(lambda: pa.stats().busy == 0, what="the connection back in pa")
            assert pb.stats().busy == 0

    arun(pg_dsn, body, max_size=1)


def test_exhaustion_raises_pool_timeout_with_counts(pg_dsn: str) -> None:
    async def body(pool: AsyncPool) -> None:
        async with pool.connection():
            started = time.monotonic()
            with pytest.raises(tether.PoolTimeout) as info:
                await pool.getconn(timeout=0.2)
            waited = time.monotonic() - started
        error = info.value
        assert (error.idle, error.busy, error.waiting) == (0, 1, 0)
        assert isinstance(error, psycopg.OperationalError)
        assert "within 0.20 s" in str(error)
        assert waited >= 0.2
        assert pool.stats().timeouts == 1

    arun(pg_dsn, body, min_size=1, max_size=1)


def test_lifetimes_replace_connections(adsn: str) -> None:
    async def body(pool: AsyncPool) -> None:
        async with pool.connection() as conn:
            first = await abackend_pid(conn)
        await async_wait_until(lambda: pool.stats().hard_connects >= 2, what="a replacement opened")
        async with pool.connection() as conn:
            assert await abackend_pid(conn) != first
        assert pool.stats().hard_disconnects >= 1

    arun(adsn, body, min_size=1, max_size=1, max_lifetime=0.2, maintenance_interval=0.05)


def test_idle_connections_above_min_size_retire(pg_dsn: str) -> None:
    async def body(pool: AsyncPool) -> None:
        held = [await pool.getconn() for _ in range(3)]
        await pool.putconn(held[0])  # one back through the pool, the others by closing them
        for conn in held[1:]:
            await conn.close()
        await async_wait_until(lambda: pool.stats().idle <= 1, what="idle <= 1 (the extras retired)")
        assert pool.stats().idle == 1

    arun(pg_dsn, body, min_size=1, max_size=3, max_idle=0.1, maintenance_interval=0.05)


def test_keepalive_options_are_on_every_socket(adsn: str) -> None:
    keepalive = tether.Keepalive(idle_s=7, interval_s=2, count=3, user_timeout_s=9)

    async def body(pool: AsyncPool) -> dict[str, int]:
        async with pool.connection() as conn:
            return read_keepalive(socket_of(conn))

    options = arun(adsn, body, keepalive=keepalive)
    assert options["SO_KEEPALIVE"] == 1
    assert (options["TCP_KEEPIDLE"], options["TCP_KEEPINTVL"], options["TCP_KEEPCNT"]) == (7, 2, 3)
    assert options["TCP_USER_TIMEOUT"] == 9000


def test_reset_leaves_no_setting_or_temp_table_to_the_next_borrower(adsn: str) -> None:
    async def body(pool: AsyncPool) -> None:
        async with pool.connection() as conn:
            before = await abackend_pid(conn)
            await conn.execute("SET search_path TO pg_catalog")
            await conn.execute("CREATE TEMP TABLE scratch (x int)")
            await conn.execute("SET statement_timeout = 1234")
        async with pool.connection() as conn:
            assert await abackend_pid(conn) == before  # the same session, cleaned
            assert await avalue(conn, "SHOW search_path") == '"$user", public'
            assert await avalue(conn, "SHOW statement_timeout") == "0"
            assert await avalue(conn, "SELECT count(*) FROM pg_class WHERE relname = 'scratch'") == 0
        assert pool.stats().resets >= 1

    arun(adsn, body, min_size=1, max_size=1)


def test_prepared_statements_survive_the_reset(pg_dsn: str) -> None:
    # asyncpg's prepared statements: test_pool_asyncio.py
    async def body(pool: AsyncPool) -> None:
        for _ in range(4):  # DISCARD ALL drops the server's statements; the driver must forget them
            async with pool.connection() as conn:
                cur = await conn.execute("SELECT %s::int", (7,), prepare=True)
                assert await cur.fetchone() == (7,)
                await conn.execute("SET work_mem = '8MB'")

    arun(pg_dsn, body, min_size=1, max_size=1)


def test_client_side_settings_are_put_back(pg_dsn: str) -> None:
    async def body(pool: AsyncPool) -> None:
        async with pool.connection() as conn:
            await conn.set_autocommit(True)
            await conn.set_read_only(True)
            conn.prepare_threshold = None
        async with pool.connection() as conn:
            assert conn.autocommit is False
            assert conn.read_only is None
            assert conn.prepare_threshold == 5

    arun(pg_dsn, body, min_size=1, max_size=1)


def test_plain_queries_need_no_reset(adsn: str) -> None:
    async def body(pool: AsyncPool) -> None:
        for _ in range(5):
            async with pool.connection() as conn:
                await avalue(conn, "SELECT 1")
        assert pool.stats().resets == 0

    arun(adsn, body, min_size=1, max_size=1, autocommit=True)


def test_unreachable_server_names_host_port_attempts_never_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tether.testing import free_port

    port = free_port()
    dsn = f"postgresql://app:s3cret-pw@127.0.0.1:{port}/db?connect_retry_count=2&connect_retry_interval=1"

    async def body(pool: AsyncPool) -> tether.PoolTimeout:
        # A refused connect can heal (a restart): the checkout waits out its timeout,
        # then says what the server answered, and how often.
        with pytest.raises(tether.PoolTimeout) as info:
            await pool.getconn(timeout=1.5)  # one open: 3 attempts, the last 1 s after the first
        assert "s3cret-pw" not in repr(pool)
        return info.value

    caplog.set_level(logging.WARNING, logger="tether.pool")
    timeout = arun(dsn, body, wait=False, min_size=0, max_size=1)
    assert timeout.connect_attempts >= 3 and "refused" in str(timeout)
    assert "s3cret-pw" not in str(timeout)
    error = timeout.last_connect_error  # the outage's last probe: one attempt
    assert isinstance(error, tether.ConnectError)
    assert (error.host, error.port) == ("127.0.0.1", port) and f"127.0.0.1:{port}" in str(error)
    assert isinstance(error.__cause__, psycopg.OperationalError)
    # The first open made ConnectRetryCount + 1 attempts; the outage's start was logged so.
    began = [r.getMessage() for r in caplog.records if "could not connect" in r.getMessage()]
    assert began and f"127.0.0.1:{port}" in began[0] and "after 3 attempt(s)" in began[0]
    assert not any("s3cret-pw" in text for text in [str(error), *began])


def test_blocking_period_fails_fast_after_a_failed_create() -> None:
    from tether.testing import free_port

    dsn = f"postgresql://app@127.0.0.1:{free_port()}/db?connect_retry_count=0"

    async def body(pool: AsyncPool) -> None:
        for _ in range(2):  # repeated create failures start the blocking period
            with pytest.raises(tether.ConnectError, match="after 1 attempt"):
                await pool.getconn()
        started = time.monotonic()
        with pytest.raises(tether.ConnectError, match="blocking period") as info:
            await pool.getconn()
        assert time.monotonic() - started < 1.0  # failed fast: no connect attempted
        assert info.value.blocking_until is not None
        assert pool.stats().blocking and pool.stats().connect_failures == 2

    arun(dsn, body, wait=False, min_size=0, max_size=2, blocking_period="always")


def test_connect_retry_takes_a_retry_policy(caplog: pytest.LogCaptureFixture) -> None:
    from tether.testing import free_port

    policy = tether.Retry.fixed(attempts=4, delay_s=0.05)

    async def body(pool: AsyncPool) -> None:
        with pytest.raises(tether.PoolTimeout):
            await pool.getconn(timeout=1.0)

    caplog.set_level(logging.WARNING, logger="tether.pool")

    arun(f"postgresql://app@127.0.0.1:{free_port()}/db", body, wait=False, min_size=0, connect_retry=policy)
    began = [r.getMessage() for r in caplog.records if "could not connect" in r.getMessage()]
    assert began and "after 4 attempt(s)" in began[0]  # the first open, under the policy


def test_closed_pool_refuses_and_closes_returned_connections(adsn: str) -> None:
    async def body(pool: AsyncPool) -> None:
        conn = await pool.getconn()
        await pool.close()
        with pytest.raises(tether.PoolClosed):
            await pool.getconn()
        await conn.close()
        stats = pool.stats()
        assert stats.idle == 0 and stats.busy == 0
        assert stats.hard_connects == stats.hard_disconnects

    arun(adsn, body, min_size=1, max_size=2)


def test_a_connection_dropped_without_close_is_reclaimed(adsn: str) -> None:
    async def body(pool: AsyncPool) -> None:
        conn = await pool.getconn()
        await avalue(conn, "SELECT 1")
        del conn
        gc.collect()
        async with pool.connection(timeout=5) as again:
            assert await avalue(again, "SELECT 1") == 1
        assert pool.stats().reclaimed == 1

    arun(adsn, body, min_size=1, max_size=1, maintenance_interval=0.05)


def test_repr_shows_state_and_no_password() -> None:
    pool = AsyncPool("postgresql://postgres:hunter2@127.0.0.1:1/postgres", name="orders",
                     min_size=0, open=False)
    assert repr(pool) == (
        "<tether.AsyncPool 'orders' postgresql://postgres:***@127.0.0.1:1/postgres "
        "[0 idle, 0 busy, 0 waiting | gen 0]>"
    )
