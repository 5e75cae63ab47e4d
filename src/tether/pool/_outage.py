"""A server that stopped taking connections, as a pool lives through it: when to ask again.

Nothing the application asked for is in doubt at checkout (no statement was sent), so
waiting and trying again is always safe. While opens fail with a fault that can heal
(refused, reset, timed out, the server starting or stopping, too many connections), the
pool keeps its waiters waiting, each until its own timeout, and sends one probe at a time:
a half-open circuit breaker, which the first success closes for everyone at once.

The probes are paced by the outage's age: the first retry at once, then a tenth of the
time the server has been away (at least ``min_delay``, at most ``max_delay``), jittered
by 0.5 to 1.5 times so that a fleet which lost its server together does not come back together. A
restart of a second is noticed within about 0.1 s; an outage of a minute costs the
server one attempt every ``max_delay`` per pool. Each probe after the first spends a
token of the pool's ``RetryBudget`` (filled by the requests that wait, and by a floor
rate); with none left, the probe waits for the floor to refill, which bounds a pool's
attempts whatever its load.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .._retry._budget import RetryBudget

SHARE = 0.1  # of the outage's age: the pool notices the server's return within ~10 % of its absence
MIN_DELAY_S = 0.025  # the defaults of PoolConfig.reconnect_min_delay...
MAX_DELAY_S = 2.0  # ...and reconnect_max_delay


@dataclass(slots=True)
class Outage:
    """The current run of failed opens."""

    since: float
    attempts: int = 0  # connect attempts that failed (each open may make several)
    probes: int = 0  # opens that failed
    probe_due: float = 0.0  # the next probe starts no earlier

    def failed(
        self,
        now: float,
        attempts: int,
        *,
        rng: random.Random,
        budget: RetryBudget | None,
        min_delay: float,
        max_delay: float,
    ) -> float:
        """Count a failed probe; the delay before the next one (``probe_due`` too)."""
        self.probes += 1
        self.attempts += attempts
        delay = 0.0  # the first retry at once: most outages are a dropped packet or a blip
        if self.probes > 1:
            delay = min(max(min_delay, (now - self.since) * SHARE), max_delay) * rng.uniform(0.5, 1.5)
        if budget is not None and not budget.try_spend(now):
            delay = max(delay, min(budget.wait_s(now), max_delay))
        self.probe_due = now + delay
        return delay
