"""What the async pool needs from an asyncio database driver.

The twin of ``Driver``: the calls that make a round trip are coroutines; those that
only read client state (``socket_fd``, ``tx_status``, ``is_closed``) stay plain calls,
so the checkout's liveness check never yields to the event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..dsn import ConnectionSpec
    from ..sql import TxStatus


class AsyncDriver(Protocol):
    """One asyncio package's way of talking to one database family."""

    name: str  # as in a URL's ``+driver`` suffix
    dialect: str
    # Has ``OperationalError`` and ``InterfaceError``: tether's errors are bound to them.
    module: Any
    # The proxy's shape: psycopg's execute() returns a cursor (wrapped, PEP 249 style);
    # asyncpg returns rows or a status, and these methods take the SQL first.
    returns_cursors: bool
    sql_methods: frozenset[str]

    async def connect(self, spec: ConnectionSpec, *, timeout_s: float, autocommit: bool | None) -> Any:
        """Open one connection within ``timeout_s``; raise the driver's own error."""
        ...

    def socket_fd(self, raw: Any) -> int | None:
        """The connection's socket descriptor, or None where the driver hides it."""
        ...

    def is_closed(self, raw: Any) -> bool:
        """The driver already knows the connection is gone (it may have closed its fd)."""
        ...

    def tx_status(self, raw: Any) -> TxStatus:
        """The connection's transaction status, known without a round trip."""
        ...

    async def ping(self, raw: Any, sql: str, *, timeout_s: float) -> bool:
        """Run ``sql`` within ``timeout_s``; False if it failed or timed out."""
        ...

    async def execute(self, raw: Any, sql: str) -> None:
        """Run one statement for the pool (reset) outside a transaction."""
        ...

    async def commit(self, raw: Any) -> None: ...

    async def rollback(self, raw: Any) -> None: ...

    async def restore(self, raw: Any, saved: dict[str, Any]) -> None:
        """Put back client-side settings the borrower changed."""
        ...

    def forget_session(self, raw: Any) -> None:
        """After a session reset: drop client caches of server state (prepared statements)."""
        ...

    async def close(self, raw: Any) -> None:
        """Close within a bounded time, swallowing the driver's own errors."""
        ...
