"""What the pool and the session need to know about a database family.

A dialect knows a database (its SQL, its error codes, how to reset a session); a driver
knows a Python package (how to connect, where its socket is). The pool talks to both
through these two small protocols and never looks at SQL text or error messages itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..sql import Effect


class Dialect(Protocol):
    """A database family: PostgreSQL, SQL Server, MySQL."""

    name: str
    default_port: int
    ping_sql: str  # the cheapest statement that makes a round trip
    reset_sql: tuple[str, ...]  # run outside a transaction to restore a clean session

    def session_changes(self, sql: str) -> tuple[str, ...]:
        """What running ``sql`` leaves in the session beyond its transaction, one reason
        per change ("temporary object", "SET of a session setting"); empty when nothing.
        Conservative: what cannot be read with confidence counts as a change."""
        ...

    def session_effects(self, sql: str) -> tuple[Effect, ...]:
        """What ``sql`` does to the session, for idle resiliency: replayable state, state
        no replay rebuilds, transaction boundaries (``session/_effects.py``). A dialect
        without it gets no transparent recovery."""
        ...

    def idle_bytes_mean_dead(self, data: bytes) -> bool:
        """Given unsolicited bytes on an idle connection: is this the server's goodbye?"""
        ...

    def is_disconnect(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the connection is gone (the pool then discards it)."""
        ...
