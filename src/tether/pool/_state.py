"""The pool's decisions, without I/O.

``PoolState`` is the whole bookkeeping of a pool: the idle stack, the counts, the queue
of waiters, the blocking period, an outage's probes, the counters. Each event
(checkout, return, a connection opened or failed, a maintenance tick) is a method that
updates the state and returns a ``Plan``: the connections to open or close and the
waiters to wake. The pool (``_pool_async``, and the ``_pool`` generated from it) calls
these under its lock and carries the plan out after releasing it, so no socket is
touched while the lock is held (httpcore's ``_assign_requests_to_connections``).
"""

from __future__ import annotations

import itertools
import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from .._retry._budget import RetryBudget
from ._config import PoolConfig
from ._outage import Outage, probes_per_s

_numbers = itertools.count(1)
_DEMAND_WINDOW_S = 10.0  # the checkout rate an outage's probes are paced by: over 10-20 s


@dataclass(eq=False, slots=True)
class Slot:
    """One physical connection owned by a pool: the pool's bookkeeping around the
    session's ``Lease`` (which holds the driver's connection and its socket)."""

    lease: Any
    created_at: float
    expires_at: float
    generation: int
    idle_since: float = 0.0
    number: int = field(default_factory=lambda: next(_numbers))

    def __repr__(self) -> str:
        return f"<connection #{self.number} gen {self.generation}>"


class Waiter(Protocol):
    """A caller waiting for a connection; the state fills one of the two fields."""

    slot: Slot | None
    error: BaseException | None
    ticket: int  # order of arrival, set by the state

    def wake(self) -> None:
        """Called after the state filled ``slot`` or ``error``, outside the lock."""


@dataclass(slots=True)
class Plan:
    """What the front end must do once it has released the lock."""

    open: int = 0
    close: list[Slot] = field(default_factory=list)
    wake: list[Waiter] = field(default_factory=list)
    ticket: int = 0  # the opens serve waiters that arrived up to this ticket
    delay: float = 0.0  # the opens start after this (an outage's next probe)
    probe: bool = False  # the open is an outage's probe (the only open under way)

    def __bool__(self) -> bool:
        return bool(self.open or self.close or self.wake)


@dataclass(slots=True)
class Counters:
    """Running totals, named after SqlClient's event counters where one exists."""

    hard_connects: int = 0
    hard_disconnects: int = 0
    soft_connects: int = 0
    soft_disconnects: int = 0
    reclaimed: int = 0
    discarded_dead: int = 0  # found dead at checkout or on return
    pings: int = 0
    waits: int = 0
    timeouts: int = 0
    connect_failures: int = 0
    resets: int = 0
    recovered: int = 0  # sessions rebuilt after an idle break (idle resiliency)
    sessions_lost: int = 0  # sessions that broke while idle and could not be rebuilt


class PoolState:
    """Bookkeeping of one pool. Not thread-safe: the front end holds a lock around it."""

    def __init__(
        self,
        config: PoolConfig,
        *,
        rng: random.Random | None = None,
        budget: RetryBudget | None = None,
        started_at: float = 0.0,
    ):
        self.config = config
        self.idle: list[Slot] = []  # a stack: the most recently used is last (LIFO)
        self.busy = 0  # handed out, or being reset on their way back
        self.resetting = 0  # of ``busy``: in the background reset ("stasis")
        self.opening = 0
        self.waiters: deque[Waiter] = deque()
        self.generation = 0
        self.closed = False
        self.counters = Counters()
        self.last_connect_error: BaseException | None = None
        self.blocked_until = 0.0
        self._block_s = 0.0
        self._failed_opens = 0  # in a row; the blocking period needs repeated failures
        self.refill_after = 0.0  # maintenance backoff after failed opens
        self._refill_backoff_s = 0.0
        self._rng = rng or random.Random()
        self.tickets = 0  # waiters so far; an open knows whom it was started for
        self.outage: Outage | None = None  # opens failing with a fault that can heal
        self._last_outage: Outage | None = None  # the one before, which a relapse continues
        self._demand_marks: deque[tuple[float, int]] = deque([(started_at, 0)])  # (when, checkouts)
        self._budget = budget  # paces an outage's probes, and the waits then fill it

    # -- sizes -------------------------------------------------------------------------

    @property
    def total(self) -> int:
        return len(self.idle) + self.busy + self.opening

    def blocking(self, now: float) -> bool:
        return now < self.blocked_until

    # -- checkout ----------------------------------------------------------------------

    def checkout(self, now: float) -> tuple[Slot | None, Plan | None]:
        """Pop the most recently used live idle connection, or None (then ``wait``).

        The hot path: no plan is made unless there is something to close.
        """
        plan = None
        if self.waiters:  # no barging past callers already waiting (FIFO fairness)
            return None, plan
        idle = self.idle
        while idle:
            slot = idle.pop()
            if slot.generation != self.generation or now >= slot.expires_at:
                plan = plan or Plan()
                self._drop(slot, plan)
                continue
            self.busy += 1
            self.counters.soft_connects += 1
            return slot, plan
        return None, plan

    def wait(self, waiter: Waiter, now: float) -> Plan:
        """Queue ``waiter``; start opens for it, or fail it fast in a blocking period."""
        plan = Plan()
        self.counters.waits += 1
        self.tickets += 1
        waiter.ticket = self.tickets

        if self.total < self.config.max_size and self.opening == 0 and self.blocking(now):
            waiter.error = self.last_connect_error
            plan.wake.append(waiter)
            return plan
        self.waiters.append(waiter)
        self._grow(plan, now)
        return plan

    def give_up(self, waiter: Waiter) -> bool:
        """A waiter timed out; False if it was served in the meantime (take that)."""
        try:
            self.waiters.remove(waiter)
        except ValueError:
            return False
        self.counters.timeouts += 1
        return True

    def discard(self, slot: Slot, now: float) -> Plan:
        """A busy connection turned out dead (at checkout, or on return)."""
        plan = Plan()
        self.busy -= 1
        self.counters.discarded_dead += 1
        self._drop(slot, plan)
        self._grow(plan, now)
        return plan

    # -- return ------------------------------------------------------------------------

    def checkin(self, slot: Slot, now: float) -> Plan | None:
        """A busy connection is clean again: hand it to a waiter or stack it idle."""
        self.busy -= 1
        self.counters.soft_disconnects += 1
        if self._stale(slot, now) or self.closed:
            plan = Plan()
            self._drop(slot, plan)
            self._grow(plan, now)
            return plan
        if not self.waiters:  # the hot path: nothing to plan
            slot.idle_since = now
            self.idle.append(slot)
            return None
        plan = Plan()
        self._offer(slot, now, plan)
        return plan

    def begin_reset(self) -> None:
        self.resetting += 1

    def end_reset(self) -> None:
        self.resetting -= 1
        self.counters.resets += 1

    # -- opening -----------------------------------------------------------------------

    def opened(self, slot: Slot, now: float) -> Plan:
        """A connection opened: the outage, if any, is over for everyone at once (no waiter
        fails for it any more), and while the server comes back the pool grows one open
        at a time, at its reconnect budget's pace (``_outage``)."""
        plan = Plan()
        self.opening -= 1
        self.counters.hard_connects += 1
        self._block_s = 0.0
        self.blocked_until = 0.0
        self._failed_opens = 0
        self._refill_backoff_s = 0.0
        self.refill_after = 0.0
        ended, self.outage = self.outage, None
        if ended is not None:
            ended.ended_at = now
            self._last_outage = ended
        if self.closed:
            self._drop(slot, plan)
            return plan
        self._offer(slot, now, plan)
        last = self._last_outage
        if last is not None and last.relapse(now):  # coming back: the next open when the budget allows
            last.got_through(now, rng=self._rng, min_delay=self.config.reconnect_min_delay,
                             max_delay=self.config.reconnect_max_delay, budget_per_s=self._allowed(last))
            self._grow(plan, now)
        elif self.waiters:  # back long enough (or never away): what is still owed, at once
            self._grow(plan, now)
        return plan

    def open_failed(
        self,
        error: BaseException,
        now: float,
        *,
        attempts: int = 1,
        final: bool = False,
        blocking: bool = False,
        ticket: int | None = None,
    ) -> Plan:
        """An open gave up after its connect retries (``attempts`` of them).

        A fault that can heal starts or continues an outage (``_outage``): the waiters
        keep waiting, each until its own timeout, while one probe at a time tries again.
        A ``final`` one (a wrong password: the next open would fail the same) fails the
        waiters now, unless a busy connection may come back to serve them. ``blocking``
        is SqlClient's blocking period, for those who ask for it: the waiters the open
        was for fail, and after repeated failures everyone fails fast for a while.
        """
        plan = Plan()
        self.opening -= 1
        self.counters.connect_failures += 1
        self.last_connect_error = error
        self._failed_opens += 1
        if not (final or blocking):
            outage = self.outage or self._resumed(now) or Outage(since=now)
            self.outage = outage
            config = self.config
            outage.failed(now, attempts, rng=self._rng, min_delay=config.reconnect_min_delay,
                          max_delay=config.reconnect_max_delay, budget_per_s=self._allowed(outage))
            self.refill_after = outage.next_due
            self._grow(plan, now)
            return plan
        self.outage = None
        if blocking and self._failed_opens >= self.config.blocking_after:
            self._block_s = min(max(self._block_s * 2, self.config.blocking_min_s),
                                self.config.blocking_max_s)
            self.blocked_until = now + self._block_s
        self._refill_backoff_s = min(max(self._refill_backoff_s * 2, 0.5), 30.0)
        self.refill_after = now + self._refill_backoff_s * self._rng.uniform(0.8, 1.2)
        if self.busy == 0 and self.opening == 0:
            limit = self.tickets if blocking or ticket is None else ticket
            later: deque[Waiter] = deque()
            for waiter in self.waiters:
                if waiter.ticket <= limit:
                    waiter.error = error
                    plan.wake.append(waiter)
                else:
                    later.append(waiter)
            self.waiters = later
            if later:
                self._grow(plan, now)
        return plan

    def demand_per_s(self, now: float) -> float:
        """Checkouts a second lately: since a mark the maintenance moves every 10 s or so
        (since the pool began, at first), and never across an outage."""
        at, count = self._demand_marks[0]
        elapsed = now - at
        return (self.counters.soft_connects - count) / elapsed if elapsed > 0 else 0.0

    def _allowed(self, outage: Outage) -> float | None:
        """The opens a second the reconnect budget allows while ``outage`` lasts or ends."""
        budget = self._budget
        return None if budget is None else probes_per_s(budget, self.demand_per_s(outage.since))

    def recovering(self, now: float) -> bool:
        """In an outage, or just out of one (a relapse would continue it): opens make one
        attempt, the probe schedule being their retry."""
        last = self._last_outage
        return self.outage is not None or (last is not None and last.relapse(now))

    def _resumed(self, now: float) -> Outage | None:
        last = self._last_outage
        if last is None or not last.relapse(now):
            return None
        last.ended_at = None
        return last

    def new_expiry(self, now: float) -> float:
        """A connection's end of life, jittered so a pool's connections age apart."""
        lifetime = self.config.max_lifetime
        if math.isinf(lifetime):
            return math.inf
        return now + lifetime * self._rng.uniform(0.9, 1.0)

    # -- maintenance -------------------------------------------------------------------

    def maintain(self, now: float) -> Plan:
        """Retire expired and long-idle connections; top up to ``min_size``."""
        marks = self._demand_marks
        if self.outage is None and now - marks[-1][0] >= _DEMAND_WINDOW_S:
            marks.append((now, self.counters.soft_connects))
            if len(marks) > 2:
                marks.popleft()
        plan = Plan()
        keep: list[Slot] = []
        surplus = len(self.idle) + self.busy - self.config.min_size
        for slot in self.idle:  # oldest use first: the bottom of the stack
            idle_too_long = now - slot.idle_since > self.config.max_idle and surplus > 0
            if self._stale(slot, now) or idle_too_long:
                self._drop(slot, plan)
                surplus -= 1
            else:
                keep.append(slot)
        self.idle = keep
        self._grow(plan, now)
        return plan

    def remove_idle(self, slot: Slot, now: float) -> Plan:
        """Maintenance found an idle connection dead; drop it if it is still idle."""
        plan = Plan()
        if slot in self.idle:
            self.idle.remove(slot)
            self.counters.discarded_dead += 1
            self._drop(slot, plan)
            self._grow(plan, now)
        return plan

    def clear(self) -> Plan:
        """Start a new generation: idle connections close now, busy ones on return."""
        plan = Plan()
        self.generation += 1
        while self.idle:
            self._drop(self.idle.pop(), plan)
        return plan

    def close(self, error: BaseException) -> Plan:
        plan = self.clear()
        self.closed = True
        while self.waiters:
            waiter = self.waiters.popleft()
            waiter.error = error
            plan.wake.append(waiter)
        return plan

    # -- helpers -----------------------------------------------------------------------

    def _offer(self, slot: Slot, now: float, plan: Plan) -> None:
        slot.idle_since = now  # just opened or just used: known alive now
        if self.waiters:
            waiter = self.waiters.popleft()
            waiter.slot = slot
            self.busy += 1
            self.counters.soft_connects += 1
            plan.wake.append(waiter)
        else:
            self.idle.append(slot)

    def _stale(self, slot: Slot, now: float) -> bool:
        return slot.generation != self.generation or now >= slot.expires_at

    def _drop(self, slot: Slot, plan: Plan) -> None:
        self.counters.hard_disconnects += 1
        plan.close.append(slot)

    def _grow(self, plan: Plan, now: float) -> None:
        """Open what the waiters and ``min_size`` need, within ``max_size``; during an
        outage, one probe at a time, when it is due, and while the server comes back
        (a relapse would continue the outage) one open at a time, paced the same way."""
        if self.closed:
            return
        want = len(self.waiters)
        if now >= self.refill_after or self.outage is not None:
            want = max(want, self.config.min_size - len(self.idle) - self.busy)
        room = self.config.max_size - self.total
        paced = self.outage or self._last_outage
        if paced is not None and (paced is self.outage or paced.relapse(now)):
            if want > 0 and room > 0 and self.opening == 0:
                self.opening = 1
                plan.open = 1
                plan.delay = max(paced.next_due - now, 0.0)
                plan.probe = paced is self.outage
                plan.ticket = self.tickets
            return
        count = min(want - self.opening, room)
        if count > 0 and not self.blocking(now):
            self.opening += count
            plan.open += count
            plan.ticket = self.tickets
