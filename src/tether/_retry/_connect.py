"""Connect retry with the semantics of SQL Server's drivers: the policy and its failure.

``ConnectRetryCount`` extra attempts after the first; the first retry is immediate and
later ones wait ``ConnectRetryInterval``; the whole is bounded by the login timeout, and
each attempt gets only what is left of it (a deadline inside, timeouts at the edge). The
loop that follows it is the pool's (``tether.pool._opening``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .._validate import instance, integer, seconds
from ._policy import Retry

_rng = random.Random()
CONNECT_RETRY_COUNT = (0, 255)  # SqlClient's ConnectRetryCount
CONNECT_RETRY_INTERVAL_S = 60.0  # SqlClient's ConnectRetryInterval: at most 60 s


@dataclass(frozen=True, slots=True)
class ConnectRetry:
    """How hard to try when opening one connection."""

    count: int = 1  # retries after the first attempt (SqlClient: 0..255, default 1)
    interval_s: float = 10.0  # wait before the second and later retries (1..60)
    login_timeout_s: float = 15.0  # bound on all attempts together
    policy: Retry | None = None  # a tether.Retry's attempts and gaps instead of the two above
    immediate: int = 1  # retries that do not wait (SqlClient's open: the first; a reconnect: none)

    def __post_init__(self) -> None:
        # Named as the pool's arguments that make one (connect_retry_count, ...).
        low, high = CONNECT_RETRY_COUNT
        integer("connect_retry_count", self.count, low=low, high=high)
        seconds("connect_retry_interval", self.interval_s, high=CONNECT_RETRY_INTERVAL_S)
        seconds("login_timeout", self.login_timeout_s, low_open=True)
        if self.policy is not None:
            instance("connect_retry", self.policy, Retry, "a tether.Retry or None")
        integer("immediate", self.immediate, low=0)

    @property
    def attempts(self) -> int:
        """Attempts in all, the first included."""
        return self.count + 1 if self.policy is None else self.policy.attempts

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (1-based)."""
        if self.policy is not None:
            return self.policy.next_delay(attempt - 1, 0.0, _rng)
        return 0.0 if attempt <= 1 + self.immediate else self.interval_s


@dataclass(frozen=True, slots=True)
class ConnectFailure:
    """Why opening a connection failed, after all attempts."""

    attempts: int
    elapsed_s: float
    cause: BaseException
