"""The pool when the server kills its connections, restarts, and under 16 threads."""

from __future__ import annotations

import gc
import random
import threading
import time
from collections.abc import Callable

import psycopg
import pytest

import tether
from fix_pool import backend_pid
from fix_wait import wait_until
from tether.testing import EmbeddedPostgres

MakePool = Callable[..., tether.Pool]


def test_after_every_backend_is_terminated_200_checkouts_raise_nothing(
    make_pool: MakePool, pg_admin: EmbeddedPostgres
) -> None:
    pool = make_pool(min_size=4, max_size=4, maintenance_interval=60)  # no sweep: checkout alone
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


def test_the_idle_sweep_replaces_dead_connections_before_anyone_asks(
    make_pool: MakePool, pg_admin: EmbeddedPostgres
) -> None:
    pool = make_pool(min_size=3, max_size=3, maintenance_interval=0.05)
    pg_admin.terminate_backends()
    wait_until(lambda: pool.stats().discarded_dead >= 3, what="the sweep's 3 discards")
    wait_until(lambda: pool.stats().idle >= 3, what="idle >= 3 (the refill)")
    stats = pool.stats()
    assert stats.discarded_dead == 3 and stats.idle == 3 and stats.hard_connects == 6


def test_a_connection_killed_while_borrowed_is_discarded_on_return(
    make_pool: MakePool, pg_admin: EmbeddedPostgres
) -> None:
    # Idle resiliency off (connect_retry_count=0): the break reaches the application
    # (test_resiliency.py covers the transparent recovery when it is on).
    pool = make_pool(min_size=1, max_size=1, connect_retry_count=0)
    with pytest.raises(psycopg.OperationalError), pool.connection() as conn:
        pg_admin.terminate_backends()
        conn.execute("SELECT 1")  # the application sees it; the pool discards
    with pool.connection() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert pool.stats().discarded_dead == 1


def test_recovery_after_a_server_restart(make_pool: MakePool, pg_admin: EmbeddedPostgres) -> None:
    pool = make_pool(min_size=2, max_size=2, maintenance_interval=60)
    pg_admin.restart()
    for _ in range(50):
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert pool.stats().discarded_dead >= 2


def test_server_down_then_up_the_pool_comes_back(
    make_pool: MakePool, pg_admin: EmbeddedPostgres
) -> None:
    pool = make_pool(min_size=1, max_size=2, connect_retry_count=0, blocking_period="never")
    pg_admin.stop()
    with pytest.raises(tether.ConnectError), pool.connection(timeout=2) as conn:
        conn.execute("SELECT 1")
    pg_admin.start()
    with pool.connection(timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_16_threads_never_share_a_connection_and_counters_balance(make_pool: MakePool) -> None:
    pool = make_pool(min_size=2, max_size=4, autocommit=True)
    holders: dict[int, int] = {}  # backend pid -> thread currently holding it
    guard = threading.Lock()
    errors: list[BaseException] = []
    ops = [0] * 16
    stop_at = time.monotonic() + 2.0

    def work(index: int) -> None:
        rng = random.Random(index)
        try:
            while time.monotonic() < stop_at:
                with pool.connection() as conn:
                    pid = conn.info.backend_pid
                    with guard:
                        assert pid not in holders, f"pid {pid} held by {holders.get(pid)} and {index}"
                        holders[pid] = index
                    try:
                        conn.execute("SELECT 1").fetchone()
                        if rng.random() < 0.05:
                            conn.execute("SET work_mem = '8MB'")  # some borrows need a reset
                    finally:
                        with guard:
                            del holders[pid]
                ops[index] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors[:3]
    assert min(ops) > 0, ops
    wait_until(lambda: pool.stats().busy == 0, what="busy == 0 (background resets finishing)")
    stats = pool.stats()
    assert stats.busy == 0 and stats.waiting == 0 and stats.opening == 0
    assert stats.soft_connects == stats.soft_disconnects == sum(ops)
    assert stats.hard_connects - stats.hard_disconnects == stats.idle
    assert stats.idle <= 4


def test_a_connection_dropped_without_close_is_reclaimed(make_pool: MakePool) -> None:
    pool = make_pool(min_size=1, max_size=1, maintenance_interval=0.05)
    conn = pool.getconn()
    conn.execute("SELECT 1")
    del conn
    gc.collect()
    with pool.connection(timeout=5) as again:
        assert again.execute("SELECT 1").fetchone() == (1,)
    assert pool.stats().reclaimed == 1
