"""Connect retry with the semantics of SQL Server's drivers.

``ConnectRetryCount`` extra attempts after the first; the first retry is immediate and
later ones wait ``ConnectRetryInterval``; the whole is bounded by the login timeout, and
each attempt gets only what is left of it (a deadline inside, timeouts at the edge).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ._policy import Retry

log = logging.getLogger(__name__)
T = TypeVar("T")
_rng = random.Random()


@dataclass(frozen=True, slots=True)
class ConnectRetry:
    """How hard to try when opening one connection."""

    count: int = 1  # retries after the first attempt (SqlClient: 0..255, default 1)
    interval_s: float = 10.0  # wait before the second and later retries (1..60)
    login_timeout_s: float = 15.0  # bound on all attempts together
    policy: Retry | None = None  # a tether.Retry's attempts and gaps instead of the two above
    immediate: int = 1  # retries that do not wait (SqlClient's open: the first; a reconnect: none)

    def __post_init__(self) -> None:
        if not 0 <= self.count <= 255:
            raise ValueError(f"connect_retry_count must be 0..255, not {self.count!r}")
        if not 0 <= self.interval_s <= 60:
            raise ValueError(f"connect_retry_interval must be 0..60 seconds, not {self.interval_s!r}")
        if not self.login_timeout_s > 0:
            raise ValueError(f"login_timeout must be > 0 seconds, not {self.login_timeout_s!r}")

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


def connect_with_retry(
    open_once: Callable[[float], T],
    policy: ConnectRetry,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> T | ConnectFailure:
    """Call ``open_once(timeout_s)`` until it succeeds or the policy gives up.

    Returns the connection, or a ``ConnectFailure`` for the caller to turn into the
    error it wants to raise (the pool adds host, port and pool name).
    """
    start = time.monotonic()
    deadline = start + policy.login_timeout_s
    attempt = 0
    while True:
        attempt += 1
        try:
            return open_once(max(deadline - time.monotonic(), 0.001))
        except Exception as exc:
            cause = exc
        delay = policy.delay_before(attempt + 1)
        now = time.monotonic()
        if attempt >= policy.attempts or now + delay >= deadline:
            return ConnectFailure(attempt, now - start, cause)
        log.debug("connect attempt %d failed (%s); retrying in %.1f s", attempt, cause, delay)
        if delay:
            sleep(delay)
