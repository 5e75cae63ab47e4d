"""What the pool needs from a Python database driver."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..dsn import ConnectionSpec
    from ..sql import TxStatus


class Driver(Protocol):
    """One Python package's way of talking to one database family."""

    name: str  # as in a URL's ``+driver`` suffix
    dialect: str
    module: ModuleType  # the PEP 249 module, for its exception classes

    def connect(self, spec: ConnectionSpec, *, timeout_s: float, autocommit: bool | None) -> Any:
        """Open one connection within ``timeout_s``; raise the driver's own error."""
        ...

    def socket_fd(self, raw: Any) -> int | None:
        """The connection's socket descriptor, or None where the driver hides it."""
        ...

    def tx_status(self, raw: Any) -> TxStatus:
        """The connection's transaction status, known without a round trip."""
        ...

    def ping(self, raw: Any, sql: str, *, timeout_s: float) -> bool:
        """Run ``sql`` within ``timeout_s``; False if it failed or timed out."""
        ...

    def execute(self, raw: Any, sql: str) -> None:
        """Run one statement for the pool (ping, reset), discarding any result."""
        ...

    def forget_session(self, raw: Any) -> None:
        """After a session reset: drop client caches of server state (prepared statements)."""
        ...

    def reset(self, raw: Any, changes: tuple[str, ...]) -> bool:
        """Put the session back as it was after login, outside any transaction, given
        what the borrow changed (``changes`` from ``dialect.session_changes``; empty when
        the pool resets on every return). False when it cannot: the pool then discards
        the connection. The cheapest correct way is the driver's to choose (a reset flag
        on the next request, an RPC, or SQL)."""
        ...

    def close(self, raw: Any) -> None:
        """Close, swallowing nothing but the driver's own errors."""
        ...
