# Generated from test_faults_async.py by tools/async_to_sync.py: edit that file instead.
"""The pool when the server kills its connections or restarts, and through the WAN
emulator: resets, a blackholed path, a link that goes down, a reset stuck on a dead path.

Written once for both pools (``tools/async_to_sync.py`` makes the threaded twin of this
module, ``test_faults.py``). A test given ``dsn`` or ``wan_dsn`` runs on each of the
pool's PostgreSQL drivers (``fix_twins.py``), one given ``pg_dsn`` on psycopg.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

import tether
from fix_twins import backend_pid, dsn_for, run, value
from fix_wait import wait_until
from tether import Pool
from tether.testing import EmbeddedPostgres
from tether.wan import Link


@pytest.fixture
def link(pg_server: EmbeddedPostgres) -> Iterator[Link]:
    pg_server.start()
    with Link(upstream=(pg_server.host, pg_server.port)) as made:
        yield made


@pytest.fixture
def wan_dsn(link: Link, pg_server: EmbeddedPostgres, driver: str) -> str:
    host, port = link.listen_address
    return dsn_for(f"postgresql://{pg_server.user}@{host}:{port}/{pg_server.database}", driver)


# -- the server kills, restarts, stops -----------------------------------------------------


def test_after_every_backend_is_terminated_200_checkouts_raise_nothing(
    pg_admin: EmbeddedPostgres, dsn: str
) -> None:
    def body(pool: Pool) -> None:
        held = [pool.getconn() for _ in range(4)]
        old = {backend_pid(c) for c in held}
        for conn in held:
            conn.close()
        assert pg_admin.terminate_backends() >= 4
        seen: set[int] = set()
        for _ in range(200):
            with pool.connection() as conn:
                seen.add(backend_pid(conn))
        held = [pool.getconn() for _ in range(4)]  # reach the bottom of the idle stack too
        seen |= {backend_pid(c) for c in held}
        for conn in held:
            conn.close()
        assert not seen & old
        stats = pool.stats()
        assert stats.discarded_dead == 4
        assert stats.pings == 0  # found dead without a round trip

    # no sweep: the checkout alone finds them
    run(dsn, body, min_size=4, max_size=4, maintenance_interval=60)


def test_the_idle_sweep_replaces_dead_connections_before_anyone_asks(
    pg_admin: EmbeddedPostgres, dsn: str
) -> None:
    def body(pool: Pool) -> None:
        pg_admin.terminate_backends()
        wait_until(lambda: pool.stats().discarded_dead >= 3, what="the sweep's 3 discards")
        wait_until(lambda: pool.stats().idle >= 3, what="idle >= 3 (the refill)")
        stats = pool.stats()
        assert stats.discarded_dead == 3 and stats.idle == 3 and stats.hard_connects == 6

    run(dsn, body, min_size=3, max_size=3, maintenance_interval=0.05)


def test_a_connection_killed_while_borrowed_is_discarded_on_return(
    pg_admin: EmbeddedPostgres, pg_dsn: str
) -> None:
    def body(pool: Pool) -> None:
        with pytest.raises(psycopg.OperationalError):
            with pool.connection() as conn:
                pg_admin.terminate_backends()
                conn.execute("SELECT 1")  # the application sees it; the pool discards
        with pool.connection() as conn:
            assert value(conn, "SELECT 1") == 1
        assert pool.stats().discarded_dead == 1

    # Idle resiliency off (connect_retry_count=0): the break reaches the application
    # (test_resiliency.py and test_async_resiliency.py cover the recovery when it is on).
    run(pg_dsn, body, min_size=1, max_size=1, connect_retry_count=0)


def test_recovery_after_a_server_restart(pg_admin: EmbeddedPostgres, dsn: str) -> None:
    def body(pool: Pool) -> None:
        pg_admin.restart()
        for _ in range(50):
            with pool.connection() as conn:
                assert value(conn, "SELECT 1") == 1
        assert pool.stats().discarded_dead >= 2

    run(dsn, body, min_size=2, max_size=2, maintenance_interval=60)


def test_server_down_then_up_the_pool_comes_back(pg_admin: EmbeddedPostgres, pg_dsn: str) -> None:
    def body(pool: Pool) -> None:
        pg_admin.stop()
        with pytest.raises(tether.ConnectError):
            with pool.connection(timeout=2) as conn:
                conn.execute("SELECT 1")
        pg_admin.start()
        with pool.connection(timeout=5) as conn:
            assert value(conn, "SELECT 1") == 1

    run(pg_dsn, body, min_size=1, max_size=2, connect_retry_count=0, blocking_period="never")


# -- the WAN emulator between the pool and the server ---------------------------------------


def test_after_the_link_resets_every_connection_200_checkouts_raise_nothing(
    link: Link, wan_dsn: str
) -> None:
    def body(pool: Pool) -> None:
        link.wait_connections(4)
        assert link.reset_all() == 4
        for _ in range(200):
            with pool.connection() as conn:
                assert value(conn, "SELECT 1") == 1
        stats = pool.stats()
        assert stats.discarded_dead >= 1 and stats.pings == 0

    run(wan_dsn, body, min_size=4, max_size=4, maintenance_interval=60, autocommit=True)


def test_a_silently_dead_path_is_found_by_the_ping_with_a_deadline(link: Link, wan_dsn: str) -> None:
    def body(pool: Pool) -> None:
        with link.blackhole():  # nothing is forwarded, nothing is closed: the socket stays quiet
            started = time.monotonic()
            with pytest.raises((tether.PoolTimeout, tether.ConnectError)):
                pool.getconn(timeout=1.5)
            assert time.monotonic() - started < 3.0
            assert pool.stats().pings == 1 and pool.stats().discarded_dead == 1
        with pool.connection(timeout=5) as conn:  # the stall ends when the blackhole is lifted
            assert value(conn, "SELECT 1") == 1

    run(
        wan_dsn,
        body,
        min_size=1,
        max_size=1,
        validate_after_idle=0.0,
        ping_timeout=0.3,
        connect_retry_count=0,
        login_timeout=1.0,
        blocking_period="never",
        maintenance_interval=60,
    )


def test_a_link_that_goes_down_fails_fast_then_recovers(link: Link, wan_dsn: str) -> None:
    def body(pool: Pool) -> None:
        with link.down():
            with pytest.raises(tether.ConnectError) as info:
                pool.getconn(timeout=5)
            assert info.value.port == link.listen_address[1]
        with pool.connection(timeout=5) as conn:
            assert value(conn, "SELECT 1") == 1
        assert pool.stats().discarded_dead >= 2

    run(wan_dsn, body, min_size=2, max_size=2, connect_retry_count=0, blocking_period="never")


def test_a_reset_stuck_on_a_dead_path_is_severed_and_the_connection_discarded(
    link: Link, wan_dsn: str
) -> None:
    def body(pool: Pool) -> None:
        conn = pool.getconn()
        conn.execute("BEGIN")  # a transaction is open: the return needs a ROLLBACK
        with link.blackhole():
            conn.close()  # the background ROLLBACK now waits on a path that forwards nothing
            wait_until(lambda: pool.stats().resetting == 0, what="resetting == 0 (severed)")
            stats = pool.stats()
            assert stats.resetting == 0 and stats.discarded_dead == 1  # severed, not stuck
        with pool.connection(timeout=5) as fresh:
            assert value(fresh, "SELECT 1") == 1

    run(
        wan_dsn,
        body,
        min_size=1,
        max_size=1,
        reset_timeout=0.3,
        maintenance_interval=0.05,
        login_timeout=2.0,  # the refill starts inside the blackhole, whose bytes are lost
        blocking_period="never",
    )
