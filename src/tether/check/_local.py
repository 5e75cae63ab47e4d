"""Step ``local``: this machine's interfaces, addresses and configured DNS resolvers."""

from __future__ import annotations

import importlib
import ipaddress
import socket

from ._context import Context
from ._events import Outcome, Status

__all__ = ["check_local", "read_resolvers"]

DNS_PORT = 53


def read_resolvers(path: str) -> list[tuple[str, int]]:
    """The ``nameserver`` lines of a resolv.conf, as ``(address, 53)``; [] if unreadable."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            lines = file.read().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] == "nameserver":
            found.append((words[1], DNS_PORT))
    return found


NO_PSUTIL = "addresses unknown: pip install 'tether[check]' (psutil)"


def interfaces() -> dict[str, list[str]] | None:
    """Interface name -> its IPv4/IPv6 addresses; None without psutil (addresses unknown)."""
    try:
        psutil = importlib.import_module("psutil")  # optional, and untyped
    except ImportError:
        return None
    families = (socket.AF_INET, socket.AF_INET6)
    return {
        name: [a.address for a in addrs if a.family in families]
        for name, addrs in psutil.net_if_addrs().items()
    }


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def check_local(ctx: Context, deadline: float) -> Outcome:
    found = interfaces()
    resolvers = ctx.options.resolvers
    if resolvers is None:
        resolvers = tuple(read_resolvers(ctx.options.resolv_conf))
    known = found is not None
    if found is None:  # names only: without psutil the standard library gives no addresses
        found = {name: [] for _, name in socket.if_nameindex()}
    routable = sorted({a for addrs in found.values() for a in addrs if not _is_loopback(a)})
    data = {
        "interfaces": found,
        "resolvers": [f"{host}:{port}" for host, port in resolvers],
        "addresses": routable,
    }
    if known:
        shown = ", ".join(f"{n} {' '.join(a) or '(no address)'}" for n, a in sorted(found.items()))
    else:
        shown = f"{', '.join(sorted(found)) or 'none'} ({NO_PSUTIL})"
    detail = f"interfaces: {shown or 'none'}; resolvers: {', '.join(data['resolvers']) or 'none'}"
    needs_network = not (ctx.data("name", "is_address") and _is_loopback(ctx.host))
    if known and needs_network and not routable and ctx.host not in ("localhost",):
        advice = ("this machine has no address outside loopback: check its network connection",)
        return Outcome(Status.WARN, detail, advice=advice, data=data)
    return Outcome(Status.OK, detail, data=data)
