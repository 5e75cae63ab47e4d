"""The pool's settings: one immutable value, validated once."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._retry import ConnectRetry
from ..net import Keepalive
from ._outage import MAX_DELAY_S, MIN_DELAY_S

if TYPE_CHECKING:
    from ..dsn import ConnectionSpec

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
    # A statement running longer is cancelled, then severed (SqlClient's CommandTimeout); 0: none.
    command_timeout: float = 30.0
    connect_retry: ConnectRetry = field(default_factory=ConnectRetry)
    # SqlClient's PoolBlockingPeriod (fail every checkout fast for a while after repeated
    # failed opens): never by default, for every database; always, or auto (SqlClient's
    # meaning: always except Azure SQL), for those who want it.
    blocking_period: str = "never"
    blocking_after: int = 2  # failed opens in a row (each after its retries) that start it
    blocking_min_s: float = 5.0
    blocking_max_s: float = 60.0
    reconnect_min_delay: float = MIN_DELAY_S  # an outage's probes: at least this far apart...
    reconnect_max_delay: float = MAX_DELAY_S  # ...and at most this (``_outage``)
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
            0 <= self.command_timeout < math.inf,
            "command_timeout",
            self.command_timeout,
            "must be >= 0 seconds (0: no limit) and finite",
        )
        _check(
            self.blocking_period in BLOCKING_PERIODS,
            "blocking_period",
            self.blocking_period,
            f"must be one of {', '.join(BLOCKING_PERIODS)}",
        )
        _check(self.blocking_after >= 1, "blocking_after", self.blocking_after, "must be >= 1")
        _check(
            0 < self.reconnect_min_delay <= 60,
            "reconnect_min_delay",
            self.reconnect_min_delay,
            "must be in (0, 60] seconds",
        )
        _check(
            self.reconnect_min_delay <= self.reconnect_max_delay <= 600,
            "reconnect_max_delay",
            self.reconnect_max_delay,
            f"must be in [reconnect_min_delay ({self.reconnect_min_delay}), 600] seconds",
        )
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


def config_for(spec: ConnectionSpec, **settings: Any) -> PoolConfig:
    """The pool's settings: an argument wins over the connection string, which wins over
    the default; Azure SQL endpoints get SqlClient's Azure defaults."""

    def pick(name: str, from_string: Any, default: Any) -> Any:
        return first_given(settings[name], from_string, default)

    return PoolConfig(
        min_size=pick("min_size", spec.min_pool_size, 1),
        max_size=pick("max_size", spec.max_pool_size, 10),
        timeout=settings["timeout"],
        max_lifetime=pick("max_lifetime", _lifetime(spec.connection_lifetime), 3600.0),
        max_idle=settings["max_idle"],
        validate_after_idle=settings["validate_after_idle"],
        ping_timeout=settings["ping_timeout"],
        reset_timeout=settings["reset_timeout"],
        command_timeout=command_timeout_for(spec, settings["command_timeout"]),
        connect_retry=connect_retry_for(
            spec,
            count=settings["connect_retry_count"],
            interval_s=settings["connect_retry_interval"],
            login_timeout_s=settings["login_timeout"],
            policy=settings["connect_retry"],
        ),
        blocking_period=pick("blocking_period", spec.pool_blocking_period, "never"),
        blocking_after=settings["blocking_after"],
        reconnect_min_delay=settings["reconnect_min_delay"],
        reconnect_max_delay=settings["reconnect_max_delay"],
        keepalive=settings["keepalive"] or Keepalive(),
        reset=settings["reset"],
        maintenance_interval=settings["maintenance_interval"],
    )


def connect_retry_for(
    spec: ConnectionSpec,
    *,
    count: int | None = None,
    interval_s: float | None = None,
    login_timeout_s: float | None = None,
    policy: Any = None,
) -> ConnectRetry:
    """SqlClient's connect retry: an argument wins over the string, which wins over the
    default (ConnectRetryCount 1, or 2 for Azure SQL; interval 10 s; login timeout 15 s)."""
    return ConnectRetry(
        count=first_given(count, spec.connect_retry_count, 2 if spec.is_azure else 1),
        interval_s=first_given(interval_s, spec.connect_retry_interval, 10.0),
        login_timeout_s=first_given(login_timeout_s, spec.login_timeout, 15.0),
        policy=policy,
    )


def command_timeout_for(spec: ConnectionSpec, given: float | None = None) -> float:
    """An argument wins over the string's ``Command Timeout``, which wins over 30 s."""
    return float(first_given(given, getattr(spec, "command_timeout", None), 30.0))


def _lifetime(connection_lifetime: float | None) -> float | None:
    # SqlClient's Connection Lifetime=0 means unlimited.
    if connection_lifetime is None:
        return None
    return math.inf if connection_lifetime == 0 else connection_lifetime


def first_given(*values: Any) -> Any:
    """The first value that is not None: an argument, then the string, then a default."""
    return next(v for v in values if v is not None)
