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

from .._validate import MAX_WAIT_S, boolean, integer, seconds

MAX_KEEPIDLE_S = 32767  # Linux's MAX_TCP_KEEPIDLE and MAX_TCP_KEEPINTVL
MAX_KEEPCNT = 127  # Linux's MAX_TCP_KEEPCNT


@dataclass(frozen=True, slots=True)
class Keepalive:
    """Keepalive settings; ``Keepalive.off()`` leaves the socket as the driver made it."""

    enabled: bool = True
    idle_s: float = 30.0
    interval_s: float = 1.0
    count: int = 5
    user_timeout_s: float | None = 30.0

    def __post_init__(self) -> None:
        # What Linux accepts: TCP_KEEPIDLE and TCP_KEEPINTVL 1..32767 s (MAX_TCP_KEEPIDLE,
        # MAX_TCP_KEEPINTVL), TCP_KEEPCNT 1..127 (MAX_TCP_KEEPCNT), TCP_USER_TIMEOUT an int
        # of milliseconds (setsockopt takes a C int: at most 2**31 - 1 ms; 0 is the system's
        # default). Checked here, not at the first connect.
        boolean("enabled", self.enabled)
        seconds("idle_s", self.idle_s, low=1, high=MAX_KEEPIDLE_S)
        seconds("interval_s", self.interval_s, low=1, high=MAX_KEEPIDLE_S)
        integer("count", self.count, low=1, high=MAX_KEEPCNT)
        if self.user_timeout_s is not None:
            seconds("user_timeout_s", self.user_timeout_s, high=MAX_WAIT_S)

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
