"""The pool's pure decisions: no sockets, no threads, every rule checked directly."""

from __future__ import annotations

import math
import random

import pytest

from tether import RetryBudget
from tether.pool import PoolConfig
from tether.pool._state import PoolState, Slot


class W:
    def __init__(self) -> None:
        self.ticket = 0
        self.slot: Slot | None = None
        self.error: BaseException | None = None

    def wake(self) -> None:
        pass


def slot(state: PoolState, now: float = 0.0, *, expires: float = math.inf) -> Slot:
    return Slot(lease=object(), created_at=now, expires_at=expires, generation=state.generation)


def fill(state: PoolState, n: int, now: float = 0.0) -> list[Slot]:
    slots = []
    for _ in range(n):
        state.opening += 1
        s = slot(state, now)
        state.opened(s, now)
        slots.append(s)
    return slots


def test_idle_connections_are_handed_out_last_in_first_out() -> None:
    state = PoolState(PoolConfig(min_size=0, max_size=3))
    _a, _b, c = fill(state, 3)
    got, _ = state.checkout(1.0)
    assert got is c
    state.checkin(got, 2.0)
    got2, _ = state.checkout(3.0)
    assert got2 is c


def test_waiters_are_served_first_come_first_served() -> None:
    state = PoolState(PoolConfig(min_size=0, max_size=1))
    (a,) = fill(state, 1)
    held, _ = state.checkout(0.0)
    w1, w2 = W(), W()
    state.wait(w1, 0.0)
    state.wait(w2, 0.0)
    plan = state.checkin(held, 1.0)  # type: ignore[arg-type]
    assert plan.wake == [w1] and w1.slot is a and w2.slot is None
    # a newcomer cannot barge past w2 even when a connection is idle for a moment
    plan = state.checkin(a, 2.0)
    assert plan.wake == [w2]


def test_a_waiter_triggers_an_open_within_max_size() -> None:
    state = PoolState(PoolConfig(min_size=0, max_size=2))
    plans = [state.wait(W(), 0.0) for _ in range(3)]
    assert [p.open for p in plans] == [1, 1, 0]
    assert state.opening == 2


def test_a_final_open_failure_fails_waiters_only_when_nothing_can_serve_them() -> None:
    state = PoolState(PoolConfig(min_size=0, max_size=2))
    (a,) = fill(state, 1)
    held, _ = state.checkout(0.0)
    w = W()
    state.wait(w, 0.0)  # opens one
    plan = state.open_failed(OSError("wrong password"), 1.0, final=True)
    assert plan.wake == [] and w.error is None  # the busy one may come back
    state.checkin(held, 2.0)  # type: ignore[arg-type]
    assert w.slot is a


def test_a_final_open_failure_fails_every_waiter_at_once() -> None:
    state = PoolState(PoolConfig(min_size=0, max_size=2))
    waiters = [W(), W(), W()]
    for w in waiters:
        state.wait(w, 0.0)
    error = OSError("wrong password")
    state.open_failed(error, 0.1, final=True)
    plan = state.open_failed(error, 0.1, final=True)
    assert plan.wake == waiters and all(w.error is error for w in waiters)
    assert state.outage is None and not state.waiters


def test_a_final_failure_fails_only_the_waiters_its_open_was_started_for() -> None:
    state = PoolState(PoolConfig(min_size=0, max_size=1))
    early, late = W(), W()
    first = state.wait(early, 0.0)
    assert first.open == 1
    state.wait(late, 0.5)  # arrives while that open is under way (the password may be fixed)
    plan = state.open_failed(OSError("wrong password"), 1.0, final=True, ticket=first.ticket)
    assert plan.wake == [early] and early.error is not None
    assert late.error is None and plan.open == 1  # a fresh attempt for the late one


def test_in_an_outage_waiters_wait_while_one_probe_at_a_time_tries_again() -> None:
    state = PoolState(PoolConfig(min_size=0, max_size=4), rng=random.Random(3))
    waiters = [W(), W(), W()]
    plans = [state.wait(w, 0.0) for w in waiters]
    assert sum(p.open for p in plans) == 3
    refused = OSError("connection refused")
    plan = state.open_failed(refused, 0.01)
    assert plan.wake == [] and plan.open == 0  # two opens are still under way
    state.open_failed(refused, 0.01)
    plan = state.open_failed(refused, 0.01)
    assert plan.wake == [] and plan.open == 1 and state.opening == 1  # the probe, and only it
    assert all(w.error is None for w in waiters)
    assert state.wait(W(), 0.02).open == 0  # a new waiter waits for the probe too
    state.opened(slot(state, 0.5), 0.5)  # the probe got through
    assert waiters[0].slot is not None
    assert state.outage is None and state.opening == 1  # the breaker is closed; one open at a time


def _recovered(budget: RetryBudget) -> tuple[PoolState, list[W], float]:
    """A quiet pool (floor only) whose four waiters rode out an outage; its probe just got
    through. Returns the state, the waiters and the delay of the next open."""
    config = PoolConfig(min_size=0, max_size=4, reconnect_min_delay=0.001)
    state = PoolState(config, rng=random.Random(4), budget=budget)
    waiters = [W() for _ in range(4)]
    for w in waiters:
        state.wait(w, 0.0)
    for _ in range(4):
        state.open_failed(OSError("refused"), 0.0)  # three are absorbed, the last one probes
    for now in (0.0, 1.0, 5.0):
        state.open_failed(OSError("refused"), now)  # the outage lasts 10 s
    plan = state.opened(slot(state, 10.0), 10.0)
    return state, waiters, plan.delay


def test_after_the_probe_the_pool_grows_one_open_at_a_time_at_the_budget_pace() -> None:
    state, waiters, delay = _recovered(RetryBudget(ratio=0.1, min_retries_per_s=2.0))
    assert state.outage is None and waiters[0].slot is not None
    assert state.opening == 1 and 0.5 * 0.5 <= delay <= 0.5 * 1.5  # the floor: 2 a second
    now = 10.0
    for w in waiters[1:]:
        now += delay
        assert w.slot is None and w.error is None  # waits for the paced open, never fails
        delay = state.opened(slot(state, now), now).delay
        assert w.slot is not None
    assert state.opening == 0  # every waiter served: nothing more to open


def test_a_failure_while_the_pool_grows_back_resumes_the_outage() -> None:
    state, waiters, delay = _recovered(RetryBudget(ratio=0.1, min_retries_per_s=2.0))
    assert state.recovering(10.0 + delay)
    plan = state.open_failed(OSError("too many connections"), 10.0 + delay)
    assert state.outage is not None and state.outage.since == 0.0  # the same outage, continued
    assert plan.open == 1 and plan.probe and plan.delay >= 0.5 * 0.5  # one probe, paced
    assert all(w.error is None for w in waiters)


def test_once_the_server_has_been_back_as_long_as_it_was_away_opens_go_at_once() -> None:
    state, waiters, _ = _recovered(RetryBudget(ratio=0.1, min_retries_per_s=2.0))
    later = 25.0  # the paced open gets through 15 s after the probe: the outage lasted 10
    assert not state.recovering(later)
    plan = state.opened(slot(state, later), later)
    assert waiters[1].slot is not None
    assert plan.open == 2 and plan.delay == 0.0 and state.opening == 2  # both others, at once


def test_probes_start_at_once_then_follow_a_twentieth_of_the_outage_within_bounds() -> None:
    config = PoolConfig(min_size=0, max_size=1, reconnect_min_delay=0.025, reconnect_max_delay=2.0)
    state = PoolState(config, rng=random.Random(5))
    state.wait(W(), 0.0)
    delays = []
    for now in (0.0, 0.001, 1.0, 10.0, 100.0, 1000.0):
        plan = state.open_failed(OSError("refused"), now)
        assert plan.open == 1
        delays.append(plan.delay)
    assert delays[0] == 0.0  # the first retry at once
    assert 0.025 * 0.5 <= delays[1] <= 0.025 * 1.5  # then at least reconnect_min_delay
    assert 0.05 * 0.5 <= delays[2] <= 0.05 * 1.5  # a twentieth of the outage's age
    assert 0.5 * 0.5 <= delays[3] <= 0.5 * 1.5
    assert all(2.0 * 0.5 <= d <= 2.0 * 1.5 for d in delays[4:])  # capped at reconnect_max_delay
    assert state.outage is not None and state.outage.attempts == 6


def _second_probe_delay(checkouts_per_s: float) -> float:
    """The delay before the second probe of a pool whose application made
    ``checkouts_per_s`` for 10 s, then lost its server (reconnect budget: 2/s + a tenth)."""
    config = PoolConfig(min_size=0, max_size=1, reconnect_min_delay=0.001)
    state = PoolState(config, rng=random.Random(2), budget=RetryBudget(ratio=0.1, min_retries_per_s=2.0))
    (slot,) = fill(state, 1)
    for i in range(int(checkouts_per_s * 10)):
        got, _ = state.checkout(i / checkouts_per_s)
        state.checkin(got, i / checkouts_per_s)  # type: ignore[arg-type]
    state.remove_idle(slot, 10.0)  # the server went away: the pool owes min_size... 0; a waiter:
    state.wait(W(), 10.0)
    state.open_failed(OSError("refused"), 10.0)  # the first retry: at once
    return state.open_failed(OSError("refused"), 10.0).delay


def test_the_reconnect_budget_paces_the_probes_by_the_applications_demand() -> None:
    quiet = _second_probe_delay(0.1)  # the floor: 2 probes a second
    assert 0.5 * 0.5 <= quiet <= 0.5 * 1.5
    busy = _second_probe_delay(100.0)  # 2 + 100 / 10 = 12 a second
    assert (1 / 12) * 0.5 <= busy <= (1 / 12) * 1.5


def test_blocking_period_fails_fast_and_doubles() -> None:
    state = PoolState(
        PoolConfig(min_size=0, max_size=2, blocking_after=2, blocking_min_s=5, blocking_max_s=60)
    )
    error = OSError("refused")
    state.opening += 1
    state.open_failed(error, 0.0, blocking=True)
    assert not state.blocking(0.0)  # one failure is not yet "repeated"
    w = W()
    state.wait(w, 0.0)
    plan = state.open_failed(error, 0.0, blocking=True)
    assert w.error is error and plan.wake == [w]
    assert state.blocked_until == 5.0
    w2 = W()
    plan = state.wait(w2, 1.0)  # inside the blocking period: no open, immediate failure
    assert plan.open == 0 and plan.wake == [w2] and w2.error is error
    state.opening += 1
    state.open_failed(error, 6.0, blocking=True)
    assert state.blocked_until == 16.0  # 10 s: doubled
    state.opening += 1
    state.opened(slot(state), 20.0)
    assert not state.blocking(20.0)


def test_expired_and_old_generation_connections_never_leave_the_pool() -> None:
    state = PoolState(PoolConfig(min_size=0, max_size=3))
    state.opening += 2
    old = slot(state, expires=10.0)
    state.opened(old, 0.0)
    young = slot(state, expires=100.0)
    state.opened(young, 0.0)
    got, _ = state.checkout(20.0)
    assert got is young
    nothing, plan = state.checkout(20.0)  # ``old`` expired at 10: closed, never handed out
    assert nothing is None and plan.close == [old]
    state.checkin(young, 21.0)
    state.clear()  # a new generation: idle ones close now
    assert state.idle == [] and state.generation == 1
    state.opening += 1
    current = slot(state)
    state.opened(current, 22.0)
    state.checkout(22.0)
    state.clear()
    plan = state.checkin(current, 23.0)  # busy during the clear: closed on return
    assert plan.close == [current] and state.idle == []


def test_maintenance_retires_idle_beyond_min_size_and_refills() -> None:
    state = PoolState(PoolConfig(min_size=1, max_size=4, max_idle=60))
    _a, _b, c = fill(state, 3, now=0.0)
    plan = state.maintain(100.0)
    assert len(plan.close) == 2 and len(state.idle) == 1
    assert state.idle[0] is c  # the most recently used one stays
    state.maintain(100.0)
    state.idle.clear()  # say every idle one was found dead
    plan = state.maintain(200.0)
    assert plan.open == 1


def test_refill_backs_off_after_failures() -> None:
    state = PoolState(PoolConfig(min_size=2, max_size=4), rng=random.Random(1))
    plan = state.maintain(0.0)
    assert plan.open == 2
    state.open_failed(OSError("down"), 0.0)
    probe = state.open_failed(OSError("down"), 0.0)
    assert probe.open == 1  # min_size is owed: one probe
    assert state.maintain(0.1).open == 0  # no more while it is under way
    later = state.open_failed(OSError("down"), 1.0)
    assert later.open == 1 and later.delay > 0 and state.refill_after == 1.0 + later.delay
    back = state.opened(slot(state, 2.0), 2.0)
    assert back.open == 1  # back: the rest of min_size at once


def test_counters_balance_over_a_random_history() -> None:
    rng = random.Random(7)
    state = PoolState(PoolConfig(min_size=0, max_size=5), rng=rng)
    held: list[Slot] = []
    for step in range(2000):
        now = float(step)
        if held and rng.random() < 0.5:
            s = held.pop(rng.randrange(len(held)))
            if rng.random() < 0.1:
                state.discard(s, now)
            else:
                state.checkin(s, now)
        else:
            got, _ = state.checkout(now)
            if got is None and state.total < 5:
                state.opening += 1
                state.opened(slot(state, now), now)
                got, _ = state.checkout(now)
            if got is not None:
                held.append(got)
        assert state.busy == len(held)
        c = state.counters
        assert c.hard_connects - c.hard_disconnects == len(state.idle) + state.busy


@pytest.mark.parametrize(
    ("settings", "name"),
    [
        ({"min_size": 5, "max_size": 2}, "max_size"),
        ({"min_size": -1}, "min_size"),
        ({"timeout": -1.0}, "timeout"),
        ({"max_lifetime": 0.0}, "max_lifetime"),
        ({"blocking_period": "sometimes"}, "blocking_period"),
        ({"reset": "never"}, "reset"),
        ({"validate_after_idle": -5.0}, "validate_after_idle"),
        ({"reconnect_min_delay": 0.0}, "reconnect_min_delay"),
        ({"reconnect_min_delay": float("nan")}, "reconnect_min_delay"),
        ({"reconnect_min_delay": 1.0, "reconnect_max_delay": 0.5}, "reconnect_max_delay"),
        ({"reconnect_max_delay": 601.0}, "reconnect_max_delay"),
        ({"blocking_after": 0}, "blocking_after"),
        ({"blocking_min_s": -1.0}, "blocking_min_s"),
        ({"blocking_min_s": 10.0, "blocking_max_s": 5.0}, "blocking_max_s"),
    ],
)
def test_impossible_settings_name_the_parameter(settings: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        PoolConfig(**settings)  # type: ignore[arg-type]
