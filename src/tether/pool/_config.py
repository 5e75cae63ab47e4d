"""The pool's settings: one immutable value, validated once."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .._retry import ConnectRetry, Retry
from .._retry._budget import RetryBudget
from .._retry._connect import CONNECT_RETRY_COUNT, CONNECT_RETRY_INTERVAL_S
from .._validate import boolean, choice, instance, optional_text, type_error, value_error
from .._validate import integer as _integer
from .._validate import seconds as _seconds
from ..dsn import ConnectionSpec
from ..net import Keepalive
from ._hooks import check_hook, check_kwargs
from ._outage import MAX_DELAY_S, MIN_DELAY_S

BLOCKING_PERIODS = ("auto", "always", "never")
RESETS = ("auto", "always")


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """Everything a pool decides with; times in seconds (``math.inf`` means never)."""

    min_size: int = 1
    """Connections kept open, even when idle."""
    max_size: int = 10
    """Connections open at most, borrowed or idle."""
    timeout: float = 30.0
    """Acquire timeout: a checkout waiting longer raises ``tether.PoolTimeout``, with the
    idle, busy and waiting counts and the last connect error."""
    max_lifetime: float = 3600.0
    """A connection is retired after this, jittered down by up to 10 % so that a pool
    never expires all at once (``Connection Lifetime=0`` in a connection string: never)."""
    max_idle: float = 600.0
    """Idle connections above ``min_size`` close after this."""
    validate_after_idle: float | None = 30.0
    """A connection idle longer is pinged before reuse (a silent path failure is possible
    by then); None: never."""
    ping_timeout: float = 5.0
    """A ping slower than this means a dead path: the connection is discarded."""
    reset_timeout: float = 10.0
    """A background reset stuck longer (a dead path) has its socket severed and the
    connection is discarded."""
    command_timeout: float = 30.0
    """Bound on every statement, COMMIT, ROLLBACK and fetch: cancelled, then severed
    (SqlClient's CommandTimeout); 0: none."""
    connect_retry: ConnectRetry = field(default_factory=ConnectRetry)
    """How each connection is opened: SqlClient's ConnectRetryCount, ConnectRetryInterval
    and login timeout, or a ``tether.Retry``."""
    blocking_period: str = "never"
    """SqlClient's PoolBlockingPeriod (fail every checkout fast for a while after repeated
    failed opens): never by default, for every database; always, or auto (SqlClient's
    meaning: always except Azure SQL), for those who want it."""
    blocking_after: int = 2
    """Failed opens in a row (each after its retries) that start a blocking period."""
    blocking_min_s: float = 5.0
    """The first blocking period; each next one doubles it."""
    blocking_max_s: float = 60.0
    """The longest blocking period."""
    reconnect_min_delay: float = MIN_DELAY_S
    """During an outage, the shortest wait between two probes of the server."""
    reconnect_max_delay: float = MAX_DELAY_S
    """During an outage, the longest wait between two probes of the server."""
    keepalive: Keepalive = field(default_factory=Keepalive)
    """TCP keepalive and ``TCP_USER_TIMEOUT`` on every connection's socket, so a dead
    peer is found in seconds."""
    reset: str = "auto"
    """auto: the session is reset (``DISCARD ALL`` and the like) only after a borrow
    changed it; always: after every borrow. A callable instead is psycopg_pool's ``reset``
    hook: run on the driver's connection after every return, after tether's own reset
    (auto), off the caller's path; it raising discards the connection."""
    maintenance_interval: float = 1.0
    """How often the maintenance sweep probes idle connections and expires old ones."""
    leak_detection_threshold: float | None = None
    """A connection borrowed longer logs one WARNING with the stack of its borrow site, and an
    INFO when it comes back (HikariCP's leakDetectionThreshold); None: off. On, each borrow
    captures its stack; the maintenance sweep checks."""

    def __post_init__(self) -> None:
        _integer("min_size", self.min_size, low=0)
        _integer("max_size", self.max_size, low=1)
        if self.max_size < self.min_size:
            raise value_error("max_size", f"must be >= min_size ({self.min_size})", self.max_size)
        _seconds("timeout", self.timeout)  # a wait: finite (pass a large number to wait long)
        _seconds("max_lifetime", self.max_lifetime, low_open=True, high=math.inf, never=True)
        _seconds("max_idle", self.max_idle, low_open=True, high=math.inf, never=True)
        if self.validate_after_idle is not None:
            _seconds("validate_after_idle", self.validate_after_idle, high=math.inf, never=True)
        _seconds("ping_timeout", self.ping_timeout, low_open=True)
        _seconds("reset_timeout", self.reset_timeout, low_open=True)
        _seconds("command_timeout", self.command_timeout)  # 0: no limit
        instance("connect_retry", self.connect_retry, ConnectRetry, "a ConnectRetry")
        choice("blocking_period", self.blocking_period, BLOCKING_PERIODS)
        _integer("blocking_after", self.blocking_after, low=1)
        _seconds("blocking_min_s", self.blocking_min_s)
        _seconds("blocking_max_s", self.blocking_max_s, low=self.blocking_min_s)
        _seconds("reconnect_min_delay", self.reconnect_min_delay, low_open=True, high=60)
        _seconds("reconnect_max_delay", self.reconnect_max_delay, low=self.reconnect_min_delay, high=600)
        instance("keepalive", self.keepalive, Keepalive, "a tether.Keepalive")
        choice("reset", self.reset, RESETS)
        _seconds("maintenance_interval", self.maintenance_interval, low_open=True, high=60)
        if self.leak_detection_threshold is not None:
            _seconds("leak_detection_threshold", self.leak_detection_threshold, low_open=True)


def check_arguments(arguments: dict[str, Any]) -> None:
    """Pool's and AsyncPool's arguments as given (None: from the connection string, or
    the default), checked before anything is built, so each error names the argument."""
    dsn = arguments.get("dsn")
    if not isinstance(dsn, (str, ConnectionSpec)):
        raise type_error("dsn", "a str or a tether.ConnectionSpec", dsn)
    for name, value in arguments.items():
        rule = _ARGUMENTS.get(name)
        if rule is not None and value is not None:
            rule(name, value)


def _reset(name: str, value: object) -> None:
    """tether's reset mode, or psycopg_pool's ``reset`` hook (a callable)."""
    if not callable(value):
        choice(name, value, RESETS)


def _retry_policy(name: str, value: object) -> None:
    if not isinstance(value, Retry):
        hint = " (for a number of retries, use connect_retry_count)" if isinstance(value, int) else ""
        raise type_error(name, "a tether.Retry or None" + hint, value)


# Every argument of Pool and AsyncPool but ``dsn``; those PoolConfig holds as given are
# checked again there, which costs nothing.
_ARGUMENTS: dict[str, Callable[[str, Any], object]] = {
    "name": optional_text,
    "driver": optional_text,
    "min_size": partial(_integer, low=0),
    "max_size": partial(_integer, low=1),
    "timeout": _seconds,
    "max_lifetime": partial(_seconds, low_open=True, high=math.inf, never=True),
    "max_idle": partial(_seconds, low_open=True, high=math.inf, never=True),
    "validate_after_idle": partial(_seconds, high=math.inf, never=True),
    "ping_timeout": partial(_seconds, low_open=True),
    "reset_timeout": partial(_seconds, low_open=True),
    "command_timeout": _seconds,
    "connect_retry_count": partial(_integer, low=CONNECT_RETRY_COUNT[0], high=CONNECT_RETRY_COUNT[1]),
    "connect_retry_interval": partial(_seconds, high=CONNECT_RETRY_INTERVAL_S),
    "login_timeout": partial(_seconds, low_open=True),
    "connect_retry": _retry_policy,
    "blocking_period": partial(choice, choices=BLOCKING_PERIODS),
    "blocking_after": partial(_integer, low=1),
    "reconnect_min_delay": partial(_seconds, low_open=True, high=60),
    "reconnect_max_delay": partial(_seconds, low_open=True, high=600),
    "keepalive": partial(instance, cls=Keepalive, label="a tether.Keepalive"),
    "reset": _reset,
    "configure": check_hook,
    "check": check_hook,
    "kwargs": check_kwargs,
    "autocommit": boolean,
    "maintenance_interval": partial(_seconds, low_open=True, high=60),
    "leak_detection_threshold": partial(_seconds, low_open=True),
    "retry_budget": partial(instance, cls=RetryBudget, label="a tether.RetryBudget"),
    "reconnect_budget": partial(instance, cls=RetryBudget, label="a tether.RetryBudget"),
    "open": boolean,
}


# The meaning of Pool's and AsyncPool's arguments that PoolConfig does not hold as such
# (PoolConfig's own are its attribute docstrings); docs/reference/settings.md is generated
# from both by tools/gen_settings_ref.py, which fails when an argument has neither.
ARGUMENT_DOCS = {
    "name": "The pool's name, in its repr, logs, events and counters.",
    "driver": "The driver package to use (psycopg, asyncpg, mssql_python, pyodbc, pymssql, pytds, "
    "pymysql) when the URL has no +driver suffix; else each database's default.",
    "connect_retry_count": "Retries after a connection's first attempt, the first at once; also the "
    "reconnects of idle connection resiliency (0 turns it off).",
    "connect_retry_interval": "Wait before each later connect retry.",
    "login_timeout": "Bound on all the attempts to open one connection together, kept by tether "
    "whatever the driver rounds it to.",
    "connect_retry": "A tether.Retry for opening connections, instead of connect_retry_count and "
    "connect_retry_interval.",
    "autocommit": "The connections' transaction mode.",
    "configure": "A function run on every new connection, the driver's own (type registration, "
    "session settings), before it is first lent, also on the one idle resiliency opens, before the "
    "replay; the async pool's may be a coroutine function. It raising, or leaving a transaction "
    "open, discards the connection (counted in hook_failures).",
    "check": "A function run at every checkout on the driver's connection (an opt-in ping, e.g. "
    "psycopg_pool.ConnectionPool.check_connection); it raising discards the connection and the "
    "borrower gets another.",
    "kwargs": "Keyword arguments for the driver's connect, winning over the connection string's; "
    "a password among them is kept as the string's is (never shown).",
    "retry_budget": "Limits pool.transaction's retries to a fraction of requests (a token bucket "
    "shared by the pool's callers).",
    "reconnect_budget": "Paces an outage's probes: at most its floor plus its ratio of the "
    "application's checkouts a second.",
    "open": "Start the pool (its maintenance and min_size connections) when it is made; None: "
    "Pool at once, AsyncPool at its first use (it may be made before its loop runs).",
}


# The settings config_for reads (Pool's arguments but dsn, name, driver, autocommit, the
# budgets and open).
SETTING_NAMES = (
    "min_size", "max_size", "timeout", "max_lifetime", "max_idle", "validate_after_idle", "ping_timeout",
    "reset_timeout", "command_timeout", "connect_retry_count", "connect_retry_interval", "login_timeout",
    "connect_retry", "blocking_period", "blocking_after", "reconnect_min_delay", "reconnect_max_delay",
    "keepalive", "reset", "maintenance_interval", "leak_detection_threshold",
)


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
        reset=settings["reset"] if isinstance(settings["reset"], str) else "auto",
        maintenance_interval=settings["maintenance_interval"],
        leak_detection_threshold=settings.get("leak_detection_threshold"),
    )


_DEFAULT_CONNECT_RETRY = ConnectRetry()  # its defaults, written once: in the dataclass
_AZURE_RETRY_COUNT = 2  # SqlClient's ConnectRetryCount for an Azure SQL endpoint


def connect_retry_for(
    spec: ConnectionSpec,
    *,
    count: int | None = None,
    interval_s: float | None = None,
    login_timeout_s: float | None = None,
    policy: Any = None,
) -> ConnectRetry:
    """SqlClient's connect retry: an argument wins over the string, which wins over the
    default (``ConnectRetry``'s own: ConnectRetryCount 1, or 2 for Azure SQL; interval
    10 s; login timeout 15 s)."""
    default = _DEFAULT_CONNECT_RETRY
    default_count = _AZURE_RETRY_COUNT if spec.is_azure else default.count
    return ConnectRetry(
        count=first_given(count, spec.connect_retry_count, default_count),
        interval_s=first_given(interval_s, spec.connect_retry_interval, default.interval_s),
        login_timeout_s=first_given(login_timeout_s, spec.login_timeout, default.login_timeout_s),
        policy=policy,
    )


def command_timeout_for(spec: ConnectionSpec, given: float | None = None) -> float:
    """An argument wins over the string's ``Command Timeout``, which wins over 30 s."""
    return float(first_given(given, spec.command_timeout, 30.0))


def _lifetime(connection_lifetime: float | None) -> float | None:
    # SqlClient's Connection Lifetime=0 means unlimited.
    if connection_lifetime is None:
        return None
    return math.inf if connection_lifetime == 0 else connection_lifetime


def first_given(*values: Any) -> Any:
    """The first value that is not None: an argument, then the string, then a default."""
    return next(v for v in values if v is not None)
