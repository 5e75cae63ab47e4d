"""tether: keeps Python applications connected to their SQL databases.

``tether.Pool`` hands out connections that work, with no round trip the application did
not ask for; ``tether.connect`` draws from an implicit pool per connection identity.
"""

from __future__ import annotations

from .dsn import ConnectionSpec, Secret, parse
from .errors import (
    CommitOutcomeUnknown,
    ConfigError,
    ConnectError,
    ConnectionReturned,
    Error,
    PoolClosed,
    PoolError,
    PoolTimeout,
    SessionLost,
)
from .metrics import PoolStats, ProcessStats, pools, stats
from .net import Keepalive
from .pool import AsyncPool, Pool, clear_all_pools, connect
from .retry import Classification, Fault, Retry, RetryBudget, RetryDetails, async_attempts, attempts
from .retry import retry as retry  # the decorator; the subpackage stays tether.retry in imports
from .session import AsyncConnection, AsyncCursor, Connection, Cursor

__version__ = "0.1.0"

__all__ = [
    "AsyncConnection",
    "AsyncCursor",
    "AsyncPool",
    "Classification",
    "CommitOutcomeUnknown",
    "ConfigError",
    "ConnectError",
    "Connection",
    "ConnectionReturned",
    "ConnectionSpec",
    "Cursor",
    "Error",
    "Fault",
    "Keepalive",
    "Pool",
    "PoolClosed",
    "PoolError",
    "PoolStats",
    "PoolTimeout",
    "ProcessStats",
    "Retry",
    "RetryBudget",
    "RetryDetails",
    "Secret",
    "SessionLost",
    "__version__",
    "async_attempts",
    "attempts",
    "clear_all_pools",
    "connect",
    "parse",
    "pools",
    "retry",
    "stats",
]
