"""What only ``Pool`` has: waiters and borrowers that are threads, a wait interrupted by a
signal, the refusal to block an event loop, psycopg's sync setter methods, and
``tether.connect`` (implicit pools). The rest of the pool's tests are written once for
both pools (``test_pool_async.py``, ``test_faults_async.py``)."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable

import pytest

import tether
from fix_twins import backend_pid
from fix_wait import wait_until
from tether.testing import EmbeddedPostgres

MakePool = Callable[..., tether.Pool]


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


def test_psycopg_setter_methods_are_remembered_too(make_pool: MakePool) -> None:
    # test_client_side_settings_are_put_back, written once for both pools, sets attributes
    # here (its source's ``await conn.set_autocommit(v)`` is ``conn.autocommit = v`` in
    # threads); a sync psycopg connection also has the setter methods.
    pool = make_pool(min_size=1, max_size=1)
    with pool.connection() as conn:
        conn.set_autocommit(True)
    with pool.connection() as conn:
        assert conn.autocommit is False


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


# -- tether.connect: implicit pools, one per connection identity ----------------------------


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
    # this test's identities only: other tests (the docs' pages) may reach the same server as another user
    mine = f"postgres@127.0.0.1:{port}/postgres"
    targets = [p for p in tether.pools() if p.name.startswith("implicit") and mine in repr(p)
               and ("application_name=shop" in repr(p) or "application_name=billing" in repr(p))]
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


def test_an_unpooled_connection_rides_out_a_server_that_is_down(pg_admin: EmbeddedPostgres) -> None:
    pg_admin.stop()
    starter = threading.Timer(0.5, pg_admin.start)
    starter.start()
    try:
        conn = tether.connect(f"{pg_admin.dsn}?pooling=false")  # waits, within Connect Timeout
    finally:
        starter.join()
    try:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        conn.close()


def test_an_unpooled_login_that_cannot_succeed_fails_at_once(pg_server: EmbeddedPostgres) -> None:
    dsn = pg_server.dsn.rsplit("/", 1)[0] + "/no_such_database?pooling=false&connect_timeout=30"
    started = time.monotonic()
    with pytest.raises(tether.ConnectError, match='database "no_such_database" does not exist'):
        tether.connect(dsn)
    assert time.monotonic() - started < 15  # a final answer, not the 30 s of the timeout
