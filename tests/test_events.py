"""Events: typed, frozen, told to subscribers of one pool and of the process, and logged
with their fields as ``extra=``; a failing subscriber never breaks the pool."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

import tether
from fix_ops import EXPECTED, POOL, kill_backend, scripted_run
from fix_pool import socket_fd, wait_for_goodbye
from fix_wait import wait_until
from tether import events
from tether.session._watchdog import GRACE_S as WATCHDOG_GRACE_S
from tether.testing import EmbeddedPostgres
from tether.wan import Link


def record_events(pool: tether.Pool | None = None) -> tuple[list[events.Event], Callable[[], None]]:
    seen: list[events.Event] = []
    stop = events.subscribe(seen.append) if pool is None else pool.subscribe(seen.append)
    return seen, stop


def kinds(seen: list[events.Event]) -> list[str]:
    return [event.kind for event in seen]


def test_events_are_frozen_and_their_fields_are_plain() -> None:
    event = events.ConnectionDiscarded("p", 3, "dead_while_idle")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.reason = "x"  # type: ignore[misc]
    assert event.extra() == {"event": "connection.discarded", "pool": "p", "connection": 3,
                             "reason": "dead_while_idle"}


def test_every_log_extra_key_is_free_in_a_log_record() -> None:
    # logging refuses extra= keys that LogRecord already has ("name", "msg", ...)
    taken = set(logging.makeLogRecord({}).__dict__)
    for cls in events.Event.__subclasses__():
        clash = {f.name for f in dataclasses.fields(cls)} & taken
        assert not clash, f"{cls.__name__} has fields a LogRecord has: {clash}"


def test_the_scripted_run_tells_what_happened(
    make_pool: Callable[..., tether.Pool], pg_admin: EmbeddedPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    everywhere, stop = record_events()
    caplog.set_level(logging.DEBUG, logger="tether")
    try:
        pool = scripted_run(make_pool, pg_admin)
    finally:
        stop()
    mine = [event for event in everywhere if event.pool == POOL]
    seen = kinds(mine)
    assert seen.count("session.recovered") == EXPECTED["recovered"]
    assert seen.count("retry.attempt") == EXPECTED["retries_transient"]
    assert seen.count("pool.timeout") == EXPECTED["timeouts"]
    retried = next(e for e in mine if isinstance(e, events.Retried))
    assert (retried.fault, retried.attempt, retried.error) == ("transient", 1, "SerializationFailure")
    timed_out = next(e for e in mine if isinstance(e, events.PoolTimedOut))
    assert (timed_out.busy, timed_out.idle) == (2, 0)
    assert seen.count("connection.opened") == pool.stats().hard_connects - EXPECTED["recovered"]
    # the log records carry the same fields
    logged = [r for r in caplog.records if getattr(r, "event", None) == "session.recovered"]
    assert len(logged) == 1 and logged[0].pool == POOL and logged[0].levelno == logging.INFO
    retried_log = [r for r in caplog.records if getattr(r, "event", None) == "retry.attempt"]
    assert len(retried_log) == 1 and retried_log[0].fault == "transient" and retried_log[0].pool == POOL


def test_a_pools_subscribers_hear_only_that_pool(make_pool: Callable[..., tether.Pool]) -> None:
    one, other = make_pool(name="one", max_size=1), make_pool(name="other", max_size=1)
    heard_one, stop_one = record_events(one)
    heard_other, stop_other = record_events(other)
    try:
        for _ in range(3):  # borrows are the hot path: they tell nothing
            with one.connection():
                pass
        with other.connection(), pytest.raises(tether.PoolTimeout):
            other.getconn(timeout=0.01)
    finally:
        stop_one()
        stop_other()
    assert heard_one == []
    assert kinds(heard_other) == ["pool.timeout"]


def test_a_dead_idle_connection_is_discarded_with_its_reason(
    make_pool: Callable[..., tether.Pool], pg_admin: EmbeddedPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    pool = make_pool(min_size=1, max_size=1, maintenance_interval=60.0)
    seen, stop = record_events(pool)
    caplog.set_level(logging.DEBUG, logger="tether.pool")
    with pool.connection() as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    fd = socket_fd(conn)
    kill_backend(pg_admin, pid)
    wait_for_goodbye(fd)
    with pool.connection() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    stop()
    discarded = [e for e in seen if isinstance(e, events.ConnectionDiscarded)]
    assert [e.reason for e in discarded] == ["failed_checkout_check"]
    record = next(r for r in caplog.records if getattr(r, "event", None) == "connection.discarded")
    assert record.reason == "failed_checkout_check" and record.connection == discarded[0].connection


def test_a_failing_subscriber_is_logged_and_the_pool_goes_on(
    make_pool: Callable[..., tether.Pool], caplog: pytest.LogCaptureFixture
) -> None:
    pool = make_pool(min_size=0, max_size=1)

    def broken(event: events.Event) -> None:
        raise RuntimeError("subscriber bug")

    stop = pool.subscribe(broken)
    later, stop_later = record_events(pool)
    try:
        with pytest.raises(tether.PoolTimeout), pool.connection():
            pool.getconn(timeout=0.01)
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        stop()
        stop_later()
    assert "pool.timeout" in kinds(later)  # the next subscriber still heard it
    assert any("an event subscriber failed" in r.getMessage() for r in caplog.records)


def test_a_failed_connect_is_told_without_the_password() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    seen, stop = record_events()
    try:
        pool = tether.Pool(f"postgresql://app:Hunter2-secret@127.0.0.1:{port}/x", name="refused",
                           min_size=0, max_size=1, connect_retry_count=0, timeout=0.5)
        with pytest.raises((tether.PoolTimeout, tether.ConnectError)):
            pool.getconn()
        pool.close()
    finally:
        stop()
    failed = [e for e in seen if isinstance(e, events.ConnectFailed) and e.pool == "refused"]
    assert failed and failed[0].port == port and failed[0].host == "127.0.0.1"
    assert all("Hunter2" not in repr(e) for e in seen)


def test_the_async_pool_has_the_same_subscription(pg_dsn: str) -> None:
    seen: list[events.Event] = []

    async def run() -> None:
        async with tether.AsyncPool(pg_dsn, min_size=0, max_size=1, name="async-events") as pool:
            stop = pool.subscribe(seen.append)
            async with pool.connection():
                with pytest.raises(tether.PoolTimeout):
                    await pool.getconn(timeout=0.01)
            stop()

    asyncio.run(run())
    assert kinds(seen) == ["connection.opened", "pool.timeout"]  # opened at first use
    assert {event.pool for event in seen} == {"async-events"}


@pytest.fixture
def linked_pool(pg_admin: EmbeddedPostgres) -> Iterator[tuple[Link, tether.Pool]]:
    """A pool whose connections go through a WAN link (a COMMIT can be blackholed)."""
    with Link(upstream=(pg_admin.host, pg_admin.port)) as link:
        host, port = link.listen_address
        pool = tether.Pool(f"postgresql://{pg_admin.user}@{host}:{port}/{pg_admin.database}",
                           name="linked", min_size=1, max_size=2, timeout=10, command_timeout=0.5,
                           login_timeout=1.0)
        try:
            yield link, pool
        finally:
            pool.close()


@pytest.mark.parametrize("lift", [True, False], ids=["resolved", "unknown"])
def test_a_lost_commit_reply_tells_its_outcome(linked_pool: tuple[Link, tether.Pool], lift: bool) -> None:
    link, pool = linked_pool
    holes = []

    def unit(conn: tether.Connection) -> int:
        one = int(conn.execute("SELECT 1").fetchone()[0])
        if not holes:  # the first run's COMMIT reply goes into a blackhole
            hole = link.blackhole(direction="downstream")
            holes.append(hole)
            if lift:  # lifted once the COMMIT timed out and was severed: the outcome can be asked
                threading.Timer(0.5 + WATCHDOG_GRACE_S, hole.lift).start()
        return one

    seen, stop = record_events(pool)
    try:
        if lift:
            assert pool.transaction(unit, retry=tether.Retry.fixed(attempts=3, delay_s=0.0)) == 1
        else:
            with pytest.raises(tether.CommitOutcomeUnknown):
                pool.transaction(unit, retry=tether.Retry.fixed(attempts=3, delay_s=0.0))
    finally:
        stop()
        for hole in holes:
            hole.lift()
    outcomes = [e.outcome for e in seen if isinstance(e, events.CommitResolved)]
    stats = pool.stats()
    if lift:
        assert outcomes == ["committed"]
        assert (stats.commit_outcome_resolved, stats.commit_outcome_unknown) == (1, 0)
    else:
        assert outcomes == ["unknown"]
        assert (stats.commit_outcome_resolved, stats.commit_outcome_unknown) == (0, 1)


def test_a_blocking_period_is_told_and_counted() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pool = tether.Pool(f"postgresql://app@127.0.0.1:{port}/x", name="blocked", min_size=0, max_size=1,
                       connect_retry_count=0, timeout=2.0, blocking_period="always", blocking_after=1)
    seen, stop = record_events(pool)
    try:
        with pytest.raises(tether.ConnectError):
            pool.getconn()
        stats = pool.stats()
    finally:
        stop()
        pool.close()
    blocking = [e for e in seen if isinstance(e, events.PoolBlocking)]
    assert len(blocking) == 1 and 0 < blocking[0].seconds <= pool.config.blocking_min_s
    assert stats.blocking_periods == 1 and stats.blocking


def test_a_failed_reset_is_told_and_the_connection_discarded(
    make_pool: Callable[..., tether.Pool], pg_admin: EmbeddedPostgres
) -> None:
    pool = make_pool(min_size=1, max_size=1)
    seen, stop = record_events(pool)
    try:
        with pool.connection() as conn:
            conn.autocommit = True
            conn.execute("SET work_mem = '8MB'")  # a session change: the return resets it
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            kill_backend(pg_admin, pid)
            wait_for_goodbye(conn)
        wait_until(lambda: any(isinstance(e, events.ConnectionDiscarded) for e in seen),
                   what="the discard after the failed reset")
    finally:
        stop()
    failed = [e for e in seen if isinstance(e, events.ResetFailed)]
    discarded = [e for e in seen if isinstance(e, events.ConnectionDiscarded)]
    assert len(failed) == 1 and failed[0].error  # the error's type, not its message
    assert [d.reason for d in discarded] == ["reset_failed"]
    assert discarded[0].connection == failed[0].connection
