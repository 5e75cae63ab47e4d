# Generated from test_faults_async.py by tools/async_to_sync.py: edit that file instead.
"""The pool when the server kills its connections or restarts, and through the WAN
emulator: resets, a blackholed path, a link that goes down, a reset stuck on a dead path.

Written once for both pools (``tools/async_to_sync.py`` makes the threaded twin of this
module, ``test_faults.py``). A test given ``dsn`` or ``wan_dsn`` runs on each of the
pool's PostgreSQL drivers (``fix_twins.py``), one given ``pg_dsn`` on psycopg.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

import tether
from fix_twins import Background, backend_pid, dsn_for, run, thread, value
from fix_wait import wait_until
from tether import Pool
from tether._acompat import sleep
from tether.testing import EmbeddedPostgres, postgres_bin_dir
from tether.wan import Link

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
        with pytest.raises(tether.PoolTimeout) as info:
            with pool.connection(timeout=2) as conn:
                conn.execute("SELECT 1")
        assert isinstance(info.value.last_connect_error, tether.ConnectError)
        pg_admin.start()
        with pool.connection(timeout=5) as conn:
            assert value(conn, "SELECT 1") == 1

    run(pg_dsn, body, min_size=1, max_size=2, connect_retry_count=0, blocking_period="never")


# -- outages: a checkout waits while the pool reconnects (issue 13) -------------------------


def test_a_checkout_waits_out_a_server_that_is_down_then_gets_a_connection(
    pg_admin: EmbeddedPostgres, dsn: str
) -> None:
    def body(pool: Pool) -> None:
        pg_admin.stop()  # the idle connection dies with it; opens are refused
        starter = threading.Timer(0.5, pg_admin.start)
        starter.start()
        try:
            with pool.connection(timeout=30) as conn:  # no error: it waits for the probe
                assert value(conn, "SELECT 1") == 1
        finally:
            starter.join()
        stats = pool.stats()
        assert stats.connect_failures >= 1 and stats.timeouts == 0 and not stats.reconnecting

    run(dsn, body, min_size=1, max_size=2)


def test_while_the_server_is_down_one_probe_at_a_time_serves_every_waiter(
    pg_admin: EmbeddedPostgres, dsn: str
) -> None:
    def body(pool: Pool) -> None:
        pg_admin.stop()
        waiters = [Background(pool.getconn, 30.0) for _ in range(3)]
        def settled() -> bool:  # the opens begun before the outage have failed by now
            stats = pool.stats()
            return stats.waiting == 3 and stats.reconnecting and stats.opening <= 1

        wait_until(settled, what="three waiters in an outage, its first opens failed")
        for _ in range(20):  # from then on a probe at a time, however many wait
            stats = pool.stats()
            assert stats.opening <= 1 and stats.waiting == 3
            sleep(0.01)
        thread(pg_admin.start)
        conns = [waiter.outcome(30) for waiter in waiters]
        assert len({backend_pid(conn) for conn in conns}) == 3
        for conn in conns:
            conn.close()
        assert pool.stats().outage_attempts == 0

    run(dsn, body, min_size=0, max_size=3)


def test_a_login_that_cannot_succeed_fails_at_once_with_the_servers_message(
    pg_server: EmbeddedPostgres, driver: str
) -> None:
    dsn = dsn_for(pg_server.dsn.rsplit("/", 1)[0] + "/no_such_database", driver)

    def body(pool: Pool) -> None:
        started = time.monotonic()
        with pytest.raises(tether.ConnectError, match='database "no_such_database" does not exist'):
            pool.getconn(timeout=30)
        assert time.monotonic() - started < 15  # not the checkout's 30 s: a final answer, at once
        assert not pool.stats().reconnecting

    run(dsn, body, wait=False, min_size=0, max_size=2)


PASSWORD = "Right-pw1"


@pytest.fixture(scope="module")
def password_pg() -> Iterator[EmbeddedPostgres]:
    """A server of its own that asks for a password (the session's trusts everyone)."""
    try:
        postgres_bin_dir()
    except FileNotFoundError as exc:
        pytest.skip(f"no embedded PostgreSQL: {exc}")
    with EmbeddedPostgres(password=PASSWORD) as server:
        yield server


def test_a_wrong_password_met_after_an_outage_fails_at_once_with_the_servers_message(
    password_pg: EmbeddedPostgres, driver: str
) -> None:
    dsn = dsn_for(password_pg.dsn.replace(PASSWORD, "Wrong-pw1"), driver)

    def body(pool: Pool) -> None:
        waiter = Background(pool.getconn, 60.0)
        wait_until(lambda: pool.stats().waiting == 1 and pool.stats().reconnecting,
                               what="a waiter in an outage")
        thread(password_pg.start)  # the probe now meets the server's refusal of the login
        with pytest.raises(tether.ConnectError, match="password authentication failed") as info:
            waiter.outcome(30)  # the server's answer, not a PoolTimeout after the waiter's 60 s
        assert "Wrong-pw1" not in str(info.value) and PASSWORD not in str(info.value)
        assert not pool.stats().reconnecting

    password_pg.stop()  # refused: a fault that can heal, so the checkout waits
    try:
        run(dsn, body, wait=False, min_size=0, max_size=2)
    finally:
        password_pg.start()


def test_closing_the_pool_wakes_the_waiters_of_an_outage(pg_admin: EmbeddedPostgres, dsn: str) -> None:
    def body(pool: Pool) -> None:
        pg_admin.stop()
        waiter = Background(pool.getconn, 30.0)
        wait_until(lambda: pool.stats().waiting == 1 and pool.stats().reconnecting,
                               what="a waiter in an outage")
        pool.close()
        with pytest.raises(tether.PoolClosed):
            waiter.outcome(10)  # at once, not after its 30 s

    run(dsn, body, min_size=0, max_size=2)


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
        # The stall ends when the blackhole is lifted, at the next probe: a quiet pool's come
        # every 2-6 s (its reconnect budget's floor, jittered), so 5 s was sometimes short.
        with pool.connection(timeout=15) as conn:
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


def test_a_link_that_goes_down_times_out_naming_the_error_then_recovers(link: Link, wan_dsn: str) -> None:
    def body(pool: Pool) -> None:
        with link.down():
            with pytest.raises(tether.PoolTimeout) as info:
                pool.getconn(timeout=0.5)
            error = info.value.last_connect_error
            assert isinstance(error, tether.ConnectError) and error.port == link.listen_address[1]
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
