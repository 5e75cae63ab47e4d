"""What the pool and the session need to know about a database family.

A dialect knows a database (its SQL, its error codes, how to reset a session); a driver
knows a Python package (how to connect, where its socket is). The pool talks to both
through these two small protocols and never looks at SQL text or error messages itself.
Every attribute the pool and the session use is declared here, so none probes a dialect
with ``getattr`` or ``hasattr``; ``BaseDialect`` holds the defaults.
"""

from __future__ import annotations

import socket
import ssl
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..vocab import Effect, Reading


class Dialect(Protocol):
    """A database family: PostgreSQL, SQL Server, MySQL."""

    name: str
    default_port: int
    ping_sql: str  # the cheapest statement that makes a round trip
    reset_sql: tuple[str, ...]  # run outside a transaction to restore a clean session
    # Commit safety (pool.transaction), None where the database cannot do it: a BEGIN that
    # also returns a marker row (transaction id, backend), the query that tells a lost
    # COMMIT's outcome from that id, and the one that ends that backend.
    begin_sql: str | None
    mark_sql: str | None  # the marker row alone, sent inside an open transaction
    commit_status_sql: str | None
    terminate_sql: str | None
    replays: bool  # ``read`` is good enough for idle resiliency (transparent recovery)

    def read(self, sql: str) -> Reading:
        """What ``sql`` does to the session, each statement read once (cached per text):
        its ``effects`` for idle resiliency (``session/_log.py``: replayable state,
        state no replay rebuilds, transaction boundaries; ``PLAIN`` itself when none), and
        its ``changes``, one reason per change the pool's reset must undo ("temporary
        object", "SET of a session setting"; empty when nothing). Conservative: what
        cannot be read with confidence counts as a change, and as lost state."""
        ...

    def session_changes(self, sql: str) -> tuple[str, ...]:
        """``read(sql).changes``."""
        ...

    def session_effects(self, sql: str) -> tuple[Effect, ...]:
        """``read(sql).effects``. A dialect that does not ``replay`` gets no transparent
        recovery."""
        ...

    def idle_bytes_mean_dead(self, data: bytes) -> bool:
        """Given unsolicited bytes on an idle connection: is this the server's goodbye?"""
        ...

    def is_disconnect(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the connection is gone (the pool then discards it)."""
        ...


class BaseDialect(Dialect):
    """The defaults: no commit safety, no idle resiliency until a dialect says so, and the
    two questions of ``read`` answered from it."""

    begin_sql: str | None = None
    mark_sql: str | None = None
    commit_status_sql: str | None = None
    terminate_sql: str | None = None
    replays = False  # a new dialect earns transparent recovery by setting it

    def session_changes(self, sql: str) -> tuple[str, ...]:
        return self.read(sql).changes

    def session_effects(self, sql: str) -> tuple[Effect, ...]:
        return self.read(sql).effects


# getaddrinfo's answers that no retry mends (EAI_AGAIN, a resolver that did not answer, may)
_NO_SUCH_NAME = frozenset(
    code for code in (getattr(socket, name, None) for name in ("EAI_NONAME", "EAI_NODATA", "EAI_SERVICE"))
    if code is not None
)


def unmendable_connect(exc: BaseException) -> str | None:
    """Why a connect that failed below the database (``exc`` or what it wraps) will fail
    the same way again: a host name that does not resolve, a certificate not trusted;
    None for a fault that can heal (refused, reset, timed out)."""
    for error in (exc, exc.__cause__, exc.__context__):  # PyMySQL raises its own inside ``except``
        if isinstance(error, socket.gaierror) and error.errno in _NO_SUCH_NAME:
            return "the host name does not resolve"
        if isinstance(error, ssl.SSLCertVerificationError):
            return "the server's certificate is not trusted"
    return None
