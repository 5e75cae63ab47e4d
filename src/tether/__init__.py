"""tether: keeps Python applications connected to their SQL databases."""

from __future__ import annotations

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

__version__ = "0.1.0"

__all__ = [
    "CommitOutcomeUnknown",
    "ConfigError",
    "ConnectError",
    "ConnectionReturned",
    "Error",
    "PoolClosed",
    "PoolError",
    "PoolTimeout",
    "SessionLost",
    "__version__",
]
