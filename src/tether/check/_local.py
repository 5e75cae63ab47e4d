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


ADDRESS_PACKAGE = "psutil"  # lists the addresses of the interfaces; optional
INSTALL = "pip install 'tether[check]'"  # the extra that has it


def interfaces() -> dict[str, list[str]] | None:
    """Interface name -> its IPv4/IPv6 addresses; None when psutil, which lists them, is missing."""
    try:
        psutil = importlib.import_module(ADDRESS_PACKAGE)  # optional, and untyped
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


def _names_only() -> list[str]:
    try:
        return sorted(name for _, name in socket.if_nameindex())
    except OSError:
        return []


def check_local(ctx: Context, deadline: float) -> Outcome:
    found = interfaces()
    resolvers = ctx.options.resolvers
    if resolvers is None:
        resolvers = tuple(read_resolvers(ctx.options.resolv_conf))
    shown_resolvers = ", ".join(f"{host}:{port}" for host, port in resolvers) or "none"
    if found is None:
        # Without psutil the addresses are unknown, not absent: say so, and warn about nothing.
        names = _names_only()
        data: dict[str, object] = {"interfaces": {name: None for name in names}, "addresses": None,
                "resolvers": [f"{host}:{port}" for host, port in resolvers],
                "missing": ADDRESS_PACKAGE, "install": INSTALL}
        detail = (f"interfaces: {', '.join(names) or 'none'} (addresses not listed: the package "
                  f"{ADDRESS_PACKAGE} is not installed; {INSTALL}); "
                  f"resolvers: {shown_resolvers}")
        return Outcome(Status.OK, detail, data=data)
    routable = sorted({a for addrs in found.values() for a in addrs if not _is_loopback(a)})
    data = {
        "interfaces": found,
        "resolvers": [f"{host}:{port}" for host, port in resolvers],
        "addresses": routable,
    }
    shown = ", ".join(f"{n} {' '.join(a) or '(no address)'}" for n, a in sorted(found.items()))
    detail = f"interfaces: {shown or 'none'}; resolvers: {shown_resolvers}"
    needs_network = not (ctx.data("name", "is_address") and _is_loopback(ctx.host))
    if needs_network and not routable and ctx.host not in ("localhost",):
        advice = ("this machine has no address outside loopback: check its network connection",)
        return Outcome(Status.WARN, detail, advice=advice, data=data)
    return Outcome(Status.OK, detail, data=data)
