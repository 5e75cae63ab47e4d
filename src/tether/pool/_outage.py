"""A server that stopped taking connections, as a pool lives through it: when to ask again.

Nothing the application asked for is in doubt at checkout (no statement was sent), so
waiting and trying again is always safe. While opens fail with a fault that can heal
(refused, reset, timed out, the server starting or stopping, too many connections), the
pool keeps its waiters waiting, each until its own timeout, and sends one probe at a time:
a half-open circuit breaker, which the first success closes for everyone at once (no waiter
fails for the outage any more).

Two things pace the probes, and the slower one wins. The outage's age: the first retry
at once, then a twentieth of the time the server has been away (at least ``min_delay``);
a restart of a second is noticed within about 50 ms. And the pool's reconnect budget (a
``RetryBudget``): a pool probes at most its floor (one every four seconds) plus its ratio
(a tenth) of the checkouts a second its application made before the outage: a busy
application probes often, a quiet one rarely, and a fleet of a thousand quiet pools
sends its server a few hundred attempts a second, not thousands. The delay never passes
``max_delay``, and is jittered by 0.5 to 1.5 times so that a fleet which lost its server
together does not come back together. A probe is one connect attempt, and so is every
open while a pool recovers from an outage (``relapse``): the schedule is their retry.

The opens after the breaker closes share the probes' budget: while the server comes back
(for as long as it was away) a pool opens one connection at a time, each at least the
budget's interval after the last (``got_through``); a failure continues the outage. A
fleet whose probes all get through in the same second would otherwise open for every
waiter at once, and meet a server that takes R logins a second with several times R
(measured in ``bench/fleet_sim.py``: 2.7 R before, about R after). The price: a quiet
pool grows back slowly (a connection every couple of seconds) while the server is new;
its waiters share the connections it has, and a busy application's budget is larger.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .._retry._budget import RetryBudget

SHARE = 0.05  # of the outage's age: the pool notices the server's return within ~5 % of its absence
MIN_DELAY_S = 0.025  # the defaults of PoolConfig.reconnect_min_delay...
MAX_DELAY_S = 5.0  # ...and reconnect_max_delay


def reconnect_budget() -> RetryBudget:
    """The default reconnect budget: a tenth of a probe per checkout the application made,
    and a floor of one probe every four seconds."""
    return RetryBudget(ratio=0.1, min_retries_per_s=0.25)


def probes_per_s(budget: RetryBudget, checkouts_per_s: float) -> float:
    """The probes a second ``budget`` allows a pool whose application made
    ``checkouts_per_s`` before the outage: its floor, and its ratio of those."""
    return budget.min_retries_per_s + budget.ratio * checkouts_per_s


@dataclass(slots=True)
class Outage:
    """The current run of failed opens."""

    since: float
    attempts: int = 0  # connect attempts that failed (each open may make several)
    probes: int = 0  # opens that failed
    next_due: float = 0.0  # the next probe (once the server is back: the next open) starts no earlier
    ended_at: float | None = None  # when an open last got through

    def relapse(self, now: float) -> bool:
        """Whether a failure at ``now`` continues this outage rather than starting another:
        within as long as the outage lasted (a server that came back and went again, or that
        takes only some of the logins), where a fresh start would retry at once."""
        return self.ended_at is not None and now - self.ended_at <= max(1.0, self.ended_at - self.since)

    def failed(
        self,
        now: float,
        attempts: int,
        *,
        rng: random.Random,
        min_delay: float,
        max_delay: float,
        budget_per_s: float | None = None,
    ) -> float:
        """Count a failed probe; the delay before the next one (``next_due`` too).
        ``budget_per_s``: the probes a second the pool's reconnect budget allows it."""
        self.probes += 1
        self.attempts += attempts
        delay = 0.0  # the first retry at once: most outages are a dropped packet or a blip
        if self.probes > 1:
            delay = min(max(min_delay, (now - self.since) * SHARE, _budget_gap(budget_per_s)), max_delay)
        return self._due(now, delay, rng)

    def got_through(
        self, now: float, *, rng: random.Random, min_delay: float, max_delay: float,
        budget_per_s: float | None = None,
    ) -> float:
        """An open got through while the server comes back: the next open waits as long as
        the budget asks between two probes, so the opens after the breaker closes share the
        probes' budget (a fleet whose probes all succeed at once does not then open for
        every waiter at once). The delay before the next open (``next_due`` too)."""
        return self._due(now, min(max(min_delay, _budget_gap(budget_per_s)), max_delay), rng)

    def _due(self, now: float, delay: float, rng: random.Random) -> float:
        delay *= rng.uniform(0.5, 1.5)  # pools that failed together must not try again together
        self.next_due = now + delay
        return delay


def _budget_gap(budget_per_s: float | None) -> float:
    return 1.0 / budget_per_s if budget_per_s else 0.0
