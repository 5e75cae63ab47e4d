"""Where a connection is, as its driver reports it: what drivers say and the pool and session act on."""

from __future__ import annotations

import enum


class TxStatus(enum.Enum):
    """Where a connection is, as its driver reports it without a round trip."""

    IDLE = "idle"  # no transaction open
    IN_TRANSACTION = "in transaction"
    IN_ERROR = "in failed transaction"  # must roll back before anything else
    ACTIVE = "active"  # a statement is still running or its results are unread
    BROKEN = "broken"  # the driver knows the connection is unusable
