"""The connection proxy: what a borrower holds, and what its session carries.

``AsyncConnection`` and ``AsyncCursor`` (``_proxy_async``) are the source; ``Connection``
and ``Cursor`` (``_proxy``, for threads) are generated from them. A proxy keeps its state
in a ``Lease``, which is what an owner (a pool) deals with: ``lease_of(conn)``.
"""

from __future__ import annotations

from typing import Any

from ._lease import Lease
from ._proxy import Connection, Cursor, Owner
from ._proxy_async import AsyncConnection, AsyncCursor, AsyncOwner

__all__ = [
    "AsyncConnection",
    "AsyncCursor",
    "AsyncOwner",
    "Connection",
    "Cursor",
    "Lease",
    "Owner",
    "lease_of",
]


def lease_of(conn: Connection | AsyncConnection | Any) -> Lease:
    """The lease behind a proxy, for its owner and tether's integrations."""
    lease: Lease = conn._lease
    return lease
