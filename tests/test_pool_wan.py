"""The pool through the WAN emulator: resets, a blackholed path, a link that goes down."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import tether
from fix_wait import wait_until
from tether.testing import EmbeddedPostgres
from tether.wan import Link

MakePool = Callable[..., tether.Pool]


@pytest.fixture
def link(pg_server: EmbeddedPostgres) -> Iterator[Link]:
    pg_server.start()
    with Link(upstream=(pg_server.host, pg_server.port)) as made:
        yield made


@pytest.fixture
def wan_dsn(link: Link, pg_server: EmbeddedPostgres) -> str:
    host, port = link.listen_address
    return f"postgresql://{pg_server.user}@{host}:{port}/{pg_server.database}"


def test_after_the_link_resets_every_connection_200_checkouts_raise_nothing(
    make_pool: MakePool, link: Link, wan_dsn: str
) -> None:
    pool = make_pool(wan_dsn, min_size=4, max_size=4, maintenance_interval=60, autocommit=True)
    link.wait_connections(4)
    assert link.reset_all() == 4
    for _ in range(200):
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    stats = pool.stats()
    assert stats.discarded_dead >= 1 and stats.pings == 0


def test_a_silently_dead_path_is_found_by_the_ping_with_a_deadline(
    make_pool: MakePool, link: Link, wan_dsn: str
) -> None:
    pool = make_pool(
        wan_dsn,
        min_size=1,
        max_size=1,
        validate_after_idle=0.0,
        ping_timeout=0.3,
        connect_retry_count=0,
        login_timeout=1.0,
        blocking_period="never",
        maintenance_interval=60,
    )
    with link.blackhole():  # nothing is forwarded, nothing is closed: the socket stays quiet
        with pytest.raises((tether.PoolTimeout, tether.ConnectError)):
            pool.getconn(timeout=1.5)
        assert pool.stats().pings == 1 and pool.stats().discarded_dead == 1
    with pool.connection(timeout=5) as conn:  # the stall ends when the blackhole is lifted
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_link_that_goes_down_fails_fast_then_recovers(
    make_pool: MakePool, link: Link, wan_dsn: str
) -> None:
    pool = make_pool(wan_dsn, min_size=2, max_size=2, connect_retry_count=0, blocking_period="never")
    with link.down():
        with pytest.raises(tether.ConnectError) as info:
            pool.getconn(timeout=5)
        assert info.value.port == link.listen_address[1]
    with pool.connection(timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert pool.stats().discarded_dead >= 2


def test_a_reset_stuck_on_a_dead_path_is_severed_and_the_connection_discarded(
    make_pool: MakePool, link: Link, wan_dsn: str
) -> None:
    pool = make_pool(
        wan_dsn,
        min_size=1,
        max_size=1,
        reset_timeout=0.3,
        maintenance_interval=0.05,
        login_timeout=2.0,  # the refill starts inside the blackhole, whose bytes are lost
        blocking_period="never",
    )
    conn = pool.getconn()
    conn.execute("SELECT 1")  # a transaction is open: the return needs a ROLLBACK
    with link.blackhole():
        conn.close()  # the background ROLLBACK now waits on a path that forwards nothing
        wait_until(lambda: pool.stats().resetting == 0, what="resetting == 0 (severed)")
        stats = pool.stats()
        assert stats.resetting == 0 and stats.discarded_dead == 1  # severed, not stuck
    with pool.connection(timeout=5) as fresh:
        assert fresh.execute("SELECT 1").fetchone() == (1,)
