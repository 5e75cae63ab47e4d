"""Sockets: the zero-round-trip liveness probe and the keepalive options."""

from __future__ import annotations

from ._keepalive import Keepalive, apply_keepalive, read_keepalive
from ._probe import Liveness, SocketProbe

__all__ = ["Keepalive", "Liveness", "SocketProbe", "apply_keepalive", "read_keepalive"]
