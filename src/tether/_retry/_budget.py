"""A retry budget: retries limited to a fraction of requests, so a fleet cannot storm.

When a database comes back from a failover, every client that saw it fail retries at
once; with five attempts each, the load it meets is five times the normal. A budget
shared by a pool caps retries at a fraction of the requests it serves (Finagle's
``RetryBudget``, gRPC's retry throttling): each request deposits ``ratio`` of a token,
each retry spends a whole one. A floor of ``min_retries_per_s`` keeps a pool that serves
few requests able to retry at all.

Two buckets: the floor refills with time up to one second's worth (at least one token);
deposits accumulate
up to ``cap``. A retry spends from the floor first. Time comes in as ``now``
(``time.monotonic()`` seconds), so tests drive it with plain numbers.
"""

from __future__ import annotations

import threading

from .._fork import renew_lock
from .._validate import number

__all__ = ["RetryBudget"]


class RetryBudget:
    """A thread-safe token bucket shared by the callers of one pool."""

    __slots__ = (
        "__weakref__", "_deposited", "_floor", "_floor_cap", "_lock", "_refilled_at", "cap",
        "min_retries_per_s", "ratio",
    )

    def __init__(self, *, ratio: float = 0.1, min_retries_per_s: float = 10.0, cap: float = 100.0) -> None:
        self.ratio = number("ratio", ratio, low=0, unit="tokens per request")
        self.min_retries_per_s = number("min_retries_per_s", min_retries_per_s, low=0, unit="retries/s")
        self.cap = number("cap", cap, low=1, unit="tokens")
        self._deposited = 0.0
        # One second's worth, and at least one token so a floor below 1/s still allows one.
        self._floor_cap = max(self.min_retries_per_s, 1.0) if self.min_retries_per_s else 0.0
        self._floor = self._floor_cap  # starts full
        self._refilled_at: float | None = None
        self._lock = threading.Lock()
        renew_lock(self)  # in a forked child

    def deposit(self, now: float) -> None:
        """Count one request: ``ratio`` of a token, up to ``cap``."""
        with self._lock:
            self._refill(now)
            self._deposited = min(self._deposited + self.ratio, self.cap)

    def try_spend(self, now: float) -> bool:
        """Take one token for a retry; False when the budget is spent."""
        with self._lock:
            self._refill(now)
            if self._floor >= 1.0:
                self._floor -= 1.0
                return True
            if self._deposited >= 1.0:
                self._deposited -= 1.0
                return True
            return False

    def available(self, now: float) -> float:
        """Retries the budget would allow at ``now`` (floor and deposits together)."""
        with self._lock:
            self._refill(now)
            return self._floor + self._deposited

    def _refill(self, now: float) -> None:
        if self._refilled_at is not None and now > self._refilled_at:
            elapsed = now - self._refilled_at
            self._floor = min(self._floor + elapsed * self.min_retries_per_s, self._floor_cap)
        if self._refilled_at is None or now > self._refilled_at:
            self._refilled_at = now

    def __repr__(self) -> str:
        return (
            f"<RetryBudget {self._floor + self._deposited:.1f} tokens"
            f" | ratio {self.ratio:g}, floor {self.min_retries_per_s:g}/s, cap {self.cap:g}>"
        )
