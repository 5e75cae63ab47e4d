"""The pool's settings: one immutable value, validated once."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..net import Keepalive
from ..retry import ConnectRetry

BLOCKING_PERIODS = ("auto", "always", "never")
RESETS = ("auto", "always")


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """Everything a pool decides with; times in seconds (``math.inf`` means never)."""

    min_size: int = 1
    max_size: int = 10
    timeout: float = 30.0  # acquire timeout
    max_lifetime: float = 3600.0  # jittered down by up to 10 %, so a pool never expires at once
    max_idle: float = 600.0  # idle connections above min_size close after this
    validate_after_idle: float | None = 30.0  # ping before reuse after this much idle time
    ping_timeout: float = 5.0  # a ping slower than this means a dead path
    reset_timeout: float = 10.0  # a background reset stuck longer has its socket severed
    connect_retry: ConnectRetry = field(default_factory=ConnectRetry)
    blocking_period: str = "auto"  # SqlClient's PoolBlockingPeriod: auto, always, never
    blocking_after: int = 2  # failed opens in a row (each after its retries) that start it
    blocking_min_s: float = 5.0
    blocking_max_s: float = 60.0
    keepalive: Keepalive = field(default_factory=Keepalive)
    reset: str = "auto"  # auto: DISCARD only after session changes; always: every return
    maintenance_interval: float = 1.0

    def __post_init__(self) -> None:
        _check(self.min_size >= 0, "min_size", self.min_size, "must be >= 0")
        _check(self.max_size >= 1, "max_size", self.max_size, "must be >= 1")
        _check(
            self.max_size >= self.min_size,
            "max_size",
            self.max_size,
            f"must be >= min_size ({self.min_size})",
        )
        _check(self.timeout >= 0, "timeout", self.timeout, "must be >= 0 seconds")
        _check(self.max_lifetime > 0, "max_lifetime", self.max_lifetime, "must be > 0 seconds")
        _check(self.max_idle > 0, "max_idle", self.max_idle, "must be > 0 seconds")
        _check(
            self.validate_after_idle is None or self.validate_after_idle >= 0,
            "validate_after_idle",
            self.validate_after_idle,
            "must be >= 0 seconds or None",
        )
        _check(self.ping_timeout > 0, "ping_timeout", self.ping_timeout, "must be > 0 seconds")
        _check(self.reset_timeout > 0, "reset_timeout", self.reset_timeout, "must be > 0 seconds")
        _check(
            self.blocking_period in BLOCKING_PERIODS,
            "blocking_period",
            self.blocking_period,
            f"must be one of {', '.join(BLOCKING_PERIODS)}",
        )
        _check(self.blocking_after >= 1, "blocking_after", self.blocking_after, "must be >= 1")
        _check(self.reset in RESETS, "reset", self.reset, f"must be one of {', '.join(RESETS)}")
        _check(
            0 < self.maintenance_interval <= 60,
            "maintenance_interval",
            self.maintenance_interval,
            "must be in (0, 60] seconds",
        )
        for name in ("timeout", "max_lifetime", "max_idle"):
            value = getattr(self, name)
            _check(not math.isnan(value), name, value, "must be a number")


def _check(ok: bool, name: str, value: object, rule: str) -> None:
    if not ok:
        raise ValueError(f"{name} {rule}, not {value!r}")
