"""tether: keeps Python applications connected to their SQL databases.

``tether.Pool`` hands out connections that work, with no round trip the application did
not ask for; ``tether.connect`` draws from an implicit pool per connection identity.
"""

from __future__ import annotations

from ._retry import (
    Classification,
    Fault,
    Retry,
    RetryBudget,
    RetryDetails,
    async_attempts,
    attempts,
    classify,
    retry,
)
from .dsn import ConnectionSpec, Secret, parse
from .errors import (
    CommandTimeout,
    CommitOutcomeUnknown,
    ConfigError,
    ConnectError,
    ConnectionReturned,
    Error,
    PoolClosed,
    PoolError,
    PoolTimeout,
    SessionLost,
    SettingTypeError,
    UnitOfWorkError,
)
from .metrics import PoolStats, ProcessStats, pools, stats
from .net import Keepalive
from .pool import AsyncPool, Pool, clear_all_pools, connect
from .session import AsyncConnection, AsyncCursor, Connection, Cursor

# The one place the version is written: pyproject.toml reads it from here (setuptools
# ``dynamic = ["version"]``), so the built metadata and the running code always agree.
__version__ = "0.1.0"

__all__ = [
    "AsyncConnection",
    "AsyncCursor",
    "AsyncPool",
    "Classification",
    "CommandTimeout",
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
    "SettingTypeError",
    "UnitOfWorkError",
    "__version__",
    "async_attempts",
    "attempts",
    "classify",
    "clear_all_pools",
    "connect",
    "parse",
    "pools",
    "retry",
    "stats",
]
