"""TCP keepalive and the dead-peer bound on a driver's socket.

Without keepalive, a connection whose path died silently (a router stopped forwarding,
a NAT forgot the flow) looks alive for the kernel's default of two hours. SqlClient and
JDBC on Linux probe after 30 s idle, every second; ``TCP_USER_TIMEOUT`` bounds how long
sent data may stay unacknowledged, so a query on a blackholed link fails in seconds too.
Options set on any descriptor of a socket apply to the socket itself, so tether sets
them on the driver's descriptor without taking ownership of it.
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keepalive:
    """Keepalive settings; ``Keepalive.off()`` leaves the socket as the driver made it."""

    enabled: bool = True
    idle_s: float = 30.0
    interval_s: float = 1.0
    count: int = 5
    user_timeout_s: float | None = 30.0

    def __post_init__(self) -> None:
        if self.idle_s < 1 or self.idle_s > 32767:
            raise ValueError(f"keepalive idle_s must be 1..32767 seconds, not {self.idle_s!r}")
        if self.interval_s < 1 or self.interval_s > 32767:
            raise ValueError(
                f"keepalive interval_s must be 1..32767 seconds, not {self.interval_s!r}"
            )
        if not 1 <= self.count <= 127:
            raise ValueError(f"keepalive count must be 1..127, not {self.count!r}")
        if self.user_timeout_s is not None and self.user_timeout_s < 0:
            raise ValueError(f"keepalive user_timeout_s must be >= 0, not {self.user_timeout_s!r}")

    @classmethod
    def off(cls) -> Keepalive:
        return cls(enabled=False, user_timeout_s=None)

    @property
    def dead_peer_bound_s(self) -> float:
        """Longest an idle connection over a dead path can go unnoticed."""
        bound = self.idle_s + self.interval_s * self.count
        if self.user_timeout_s:
            bound = min(bound, max(self.idle_s + self.interval_s, self.user_timeout_s))
        return bound


def apply_keepalive(fd: int, keepalive: Keepalive) -> None:
    """Set the options on the socket behind ``fd`` (which stays the driver's)."""
    if not keepalive.enabled:
        return
    sock = socket.socket(fileno=fd)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in _tcp_options(keepalive):
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
    finally:
        sock.detach()


def read_keepalive(fd: int) -> dict[str, int]:
    """Read the options back (``getsockopt``), for tests and ``tether check``."""
    sock = socket.socket(fileno=fd)
    try:
        values = {"SO_KEEPALIVE": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)}
        for name in ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT", "TCP_USER_TIMEOUT"):
            option = getattr(socket, name, None)
            if option is not None:
                values[name] = sock.getsockopt(socket.IPPROTO_TCP, option)
        return values
    finally:
        sock.detach()


def _tcp_options(keepalive: Keepalive) -> list[tuple[str, int]]:
    # macOS names the idle time TCP_KEEPALIVE; Linux and Windows TCP_KEEPIDLE.
    idle_name = "TCP_KEEPIDLE" if hasattr(socket, "TCP_KEEPIDLE") else "TCP_KEEPALIVE"
    options = [
        (idle_name, round(keepalive.idle_s)),
        ("TCP_KEEPINTVL", round(keepalive.interval_s)),
        ("TCP_KEEPCNT", keepalive.count),
    ]
    if keepalive.user_timeout_s is not None and sys.platform.startswith("linux"):
        options.append(("TCP_USER_TIMEOUT", round(keepalive.user_timeout_s * 1000)))
    return options
