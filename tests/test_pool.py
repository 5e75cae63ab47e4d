"""The pool against a real PostgreSQL: checkout, return, limits, lifetimes, bad use."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

import psycopg
import pytest

import tether
from fix_pool import backend_pid
from fix_wait import wait_until
from tether.net import read_keepalive

MakePool = Callable[..., tether.Pool]


def test_checkout_runs_queries_and_returns_lifo(make_pool: MakePool) -> None:
    pool = make_pool(min_size=2, max_size=2)
    with pool.connection() as a, pool.connection() as b:
        pid_a, pid_b = backend_pid(a), backend_pid(b)
    assert pid_a != pid_b
    with pool.connection() as c:  # the last one returned comes out first
        assert backend_pid(c) == pid_a
    stats = pool.stats()
    assert (stats.idle, stats.busy, stats.hard_connects) == (2, 0, 2)


def test_block_commits_on_success_and_rolls_back_on_error(make_pool: MakePool) -> None:
    pool = make_pool(max_size=1)
    with pool.connection() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t_commit (x int)")
        conn.execute("TRUNCATE t_commit")
    with pool.connection() as conn:
        conn.execute("INSERT INTO t_commit VALUES (1)")
    with pytest.raises(ZeroDivisionError), pool.connection() as conn:
        conn.execute("INSERT INTO t_commit VALUES (2)")
        raise ZeroDivisionError
    with pool.connection() as conn:
        rows = conn.execute("SELECT x FROM t_commit ORDER BY x").fetchall()
        conn.execute("DROP TABLE t_commit")
    assert rows == [(1,)]


def test_a_returned_connection_cannot_be_used(make_pool: MakePool) -> None:
    pool = make_pool(max_size=1)
    with pool.connection() as conn:
        cur = conn.cursor()
    with pytest.raises(tether.ConnectionReturned, match="returned to pool"):
        conn.execute("SELECT 1")
    with pytest.raises(psycopg.InterfaceError):  # also the driver's own class
        cur.execute("SELECT 1")
    with pytest.raises(tether.ConnectionReturned):
        conn.raw  # noqa: B018
    conn.close()  # closing twice is harmless
    assert "returned from pool" in repr(conn)


def test_exhaustion_raises_pool_timeout_with_counts(make_pool: MakePool) -> None:
    pool = make_pool(min_size=1, max_size=1)
    with pool.connection():
        started = time.monotonic()
        with pytest.raises(tether.PoolTimeout) as info:
            pool.getconn(timeout=0.2)
        waited = time.monotonic() - started
    error = info.value
    assert (error.idle, error.busy, error.waiting) == (0, 1, 0)
    assert isinstance(error, psycopg.OperationalError)
    assert "within 0.20 s" in str(error)
    assert waited >= 0.2
    assert pool.stats().timeouts == 1


def test_a_waiter_gets_the_connection_someone_returns(make_pool: MakePool) -> None:
    pool = make_pool(min_size=1, max_size=1)
    conn = pool.getconn()

    def release() -> None:
        wait_until(lambda: pool.stats().waiting == 1, what="the waiter queued")
        conn.close()

    releaser = threading.Thread(target=release)
    releaser.start()
    with pool.connection(timeout=5) as again:
        assert backend_pid(again) > 0
    releaser.join()


def test_lifetimes_replace_connections(make_pool: MakePool) -> None:
    pool = make_pool(min_size=1, max_size=1, max_lifetime=0.2, maintenance_interval=0.05)
    with pool.connection() as conn:
        first = backend_pid(conn)
    wait_until(lambda: pool.stats().hard_connects >= 2, what="a replacement opened")
    with pool.connection() as conn:
        assert backend_pid(conn) != first
    assert pool.stats().hard_disconnects >= 1


def test_idle_connections_above_min_size_retire(make_pool: MakePool) -> None:
    pool = make_pool(min_size=1, max_size=3, max_idle=0.1, maintenance_interval=0.05)
    held = [pool.getconn() for _ in range(3)]
    for conn in held:
        conn.close()
    wait_until(lambda: pool.stats().idle <= 1, what="idle <= 1 (the extras retired)")
    assert pool.stats().idle == 1


def test_keepalive_options_are_on_every_socket(make_pool: MakePool) -> None:
    keepalive = tether.Keepalive(idle_s=7, interval_s=2, count=3, user_timeout_s=9)
    pool = make_pool(keepalive=keepalive)
    with pool.connection() as conn:
        options = read_keepalive(conn.raw.pgconn.socket)
    assert options["SO_KEEPALIVE"] == 1
    assert options["TCP_KEEPIDLE"] == 7
    assert options["TCP_KEEPINTVL"] == 2
    assert options["TCP_KEEPCNT"] == 3
    assert options["TCP_USER_TIMEOUT"] == 9000


def test_reset_leaves_no_setting_or_temp_table_to_the_next_borrower(make_pool: MakePool) -> None:
    pool = make_pool(min_size=1, max_size=1)
    with pool.connection() as conn:
        pid = backend_pid(conn)
        conn.execute("SET search_path TO pg_catalog")
        conn.execute("CREATE TEMP TABLE scratch (x int)")
        conn.execute("SET statement_timeout = 1234")
    with pool.connection() as conn:
        assert backend_pid(conn) == pid  # the same session, cleaned
        assert conn.execute("SHOW search_path").fetchone() == ('"$user", public',)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)
        count = conn.execute("SELECT count(*) FROM pg_class WHERE relname = 'scratch'").fetchone()
        assert count == (0,)
    assert pool.stats().resets >= 1


def test_client_side_settings_are_put_back(make_pool: MakePool) -> None:
    pool = make_pool(min_size=1, max_size=1)
    with pool.connection() as conn:
        conn.autocommit = True
        conn.read_only = True
    with pool.connection() as conn:
        assert conn.autocommit is False
        assert conn.read_only is None
        conn.set_autocommit(True)  # psycopg's setter methods are remembered too
    with pool.connection() as conn:
        assert conn.autocommit is False


def test_plain_queries_need_no_reset(make_pool: MakePool) -> None:
    pool = make_pool(min_size=1, max_size=1, autocommit=True)
    for _ in range(5):
        with pool.connection() as conn:
            conn.execute("SELECT 1").fetchall()
    assert pool.stats().resets == 0


def test_unreachable_server_names_host_port_attempts_never_the_password() -> None:
    from tether.testing import free_port

    port = free_port()
    dsn = f"postgresql://app:s3cret-pw@127.0.0.1:{port}/db?connect_retry_count=2&connect_retry_interval=1"
    pool = tether.Pool(dsn, min_size=0, max_size=1, timeout=5)
    try:
        with pytest.raises(tether.ConnectError) as info:
            pool.getconn()
    finally:
        pool.close()
    error = info.value
    text = str(error)
    assert f"127.0.0.1:{port}" in text and "after 3 attempt(s)" in text
    assert (error.host, error.port, error.attempts) == ("127.0.0.1", port, 3)
    assert isinstance(error.__cause__, psycopg.OperationalError)
    assert "s3cret-pw" not in text and "s3cret-pw" not in repr(pool)


def test_blocking_period_fails_fast_after_a_failed_create() -> None:
    from tether.testing import free_port

    dsn = f"postgresql://app@127.0.0.1:{free_port()}/db?connect_retry_count=0"
    pool = tether.Pool(dsn, min_size=0, max_size=2, timeout=5, blocking_period="always")
    try:
        for _ in range(2):  # repeated create failures start the blocking period
            with pytest.raises(tether.ConnectError, match="after 1 attempt"):
                pool.getconn()
        started = time.monotonic()
        with pytest.raises(tether.ConnectError, match="blocking period") as info:
            pool.getconn()
        assert time.monotonic() - started < 1.0  # failed fast: no connect attempted
        assert info.value.blocking_until is not None
        assert pool.stats().blocking and pool.stats().connect_failures == 2
    finally:
        pool.close()


def test_closed_pool_refuses_and_closes_returned_connections(make_pool: MakePool) -> None:
    pool = make_pool(min_size=1, max_size=2)
    conn = pool.getconn()
    pool.close()
    with pytest.raises(tether.PoolClosed):
        pool.getconn()
    conn.close()
    stats = pool.stats()
    assert stats.idle == 0 and stats.busy == 0
    assert stats.hard_connects == stats.hard_disconnects


def test_repr_shows_state_and_no_password(pg_server: object) -> None:
    pool = tether.Pool("postgresql://postgres:hunter2@127.0.0.1:1/postgres", name="orders",
                       min_size=0, open=False)
    assert repr(pool) == (
        "<tether.Pool 'orders' postgresql://postgres:***@127.0.0.1:1/postgres "
        "[0 idle, 0 busy, 0 waiting | gen 0]>"
    )


def test_implicit_pools_share_one_pool_per_identity(pg_server: object) -> None:
    port = pg_server.port  # type: ignore[attr-defined]
    base = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    first = f"{base}?application_name=shop&connect_retry_count=1"
    same = f"{base}?connect_retry_count=1&application_name=shop"  # order differs only
    other = f"{base}?application_name=billing"
    with tether.connect(first) as c1:
        pid = backend_pid(c1)
    with tether.connect(same) as c2:
        assert backend_pid(c2) == pid  # the same pool, the same idle connection
    with tether.connect(other) as c3:
        assert backend_pid(c3) != pid
    targets = [p for p in tether.pools() if p.name.startswith("implicit") and str(port) in repr(p)]
    assert len(targets) == 2  # fragmentation is visible: one pool per identity
    counters = tether.stats().as_counters()
    assert counters["number-of-active-connection-pools"] >= 2


def test_unpooled_connection_really_closes(pg_server: object) -> None:
    port = pg_server.port  # type: ignore[attr-defined]
    before = tether.stats().non_pooled_connections
    conn = tether.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres?pooling=false")
    assert tether.stats().non_pooled_connections == before + 1
    raw = conn.raw
    conn.close()
    assert raw.closed
    assert tether.stats().non_pooled_connections == before


def test_an_interrupted_wait_leaves_no_connection_behind(make_pool: MakePool) -> None:
    pool = make_pool(min_size=1, max_size=1)
    held = pool.getconn()

    class Interrupted(Exception):
        pass

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.1)
    try:
        with pytest.raises(Interrupted):
            pool.getconn(timeout=5)  # interrupted while queued
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert pool.stats().waiting == 0
    held.close()  # goes back to the pool, not to the waiter that left
    with pool.connection(timeout=1) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    stats = pool.stats()
    assert (stats.idle, stats.busy) == (1, 0)


def test_connect_retry_takes_a_retry_policy() -> None:
    from tether.testing import free_port

    policy = tether.Retry.fixed(attempts=4, delay_s=0.05)
    pool = tether.Pool(
        f"postgresql://app@127.0.0.1:{free_port()}/db", min_size=0, connect_retry=policy, timeout=5
    )
    try:
        with pytest.raises(tether.ConnectError, match="after 4 attempt") as info:
            pool.getconn()
    finally:
        pool.close()
    assert info.value.attempts == 4


def test_the_sync_pool_refuses_to_block_an_event_loop(make_pool: MakePool) -> None:
    import asyncio

    pool = make_pool(min_size=1, max_size=1)
    held = pool.getconn()

    async def from_a_coroutine() -> None:
        pool.getconn(timeout=5)

    try:
        with pytest.raises(tether.PoolError, match=r"use tether\.AsyncPool"):
            asyncio.run(from_a_coroutine())
    finally:
        held.close()
    assert pool.stats().waiting == 0
