"""Real-network faults on Linux: a server behind a veth pair in a network namespace.

A userspace proxy cannot fake a path that silently stops forwarding: the proxy's own
sockets would still answer. :class:`NetNamespace` creates a namespace and a veth pair with
link-local addresses (169.254.x.y/30, on that pair only, so traffic never leaves the
machine), runs commands inside it, takes the link down without a FIN or RST
(:meth:`~NetNamespace.link_down`) and shapes bandwidth with ``tc tbf``
(:meth:`~NetNamespace.shape`). Everything it created is removed on exit, and on failure
half way through creation. Needs root and iproute2; :func:`netns_unavailable` says why not.

The host holds a permanent neighbour (ARP) entry for the namespace's address. Without it,
a link that is down fails loudly: ARP goes unanswered and after ~3 s the kernel reports
"No route to host" (EHOSTUNREACH) to new and open connections alike, and keeps failing for
a while after the link is back. With it the host never asks: its packets leave and
vanish, SYNs included, as on a path through a router that died.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from tether.errors import ConfigError
from tether.wan._errors import WanError
from tether.wan.faults._base import MAX_BYTES, check_number

__all__ = ["NetNamespace", "netns_unavailable"]

log = logging.getLogger(__name__)

_lock = threading.Lock()
_counter = 0


def netns_unavailable() -> str | None:
    """Why namespaces cannot be used here, or None if they can."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the 'ip' command is not installed (as root: apt-get install iproute2)"
    return _namespace_refused()


@functools.cache
def _namespace_refused() -> str | None:
    """Try once per process: make a namespace, reach into it, remove it. Some places refuse
    although root and ``ip`` are there (a chroot into a plain directory fails ``ip -n``'s
    ``mount --make-rslave /``; a container without CAP_SYS_ADMIN fails ``ip netns add``)."""
    name = f"tether-probe-{os.getpid()}"
    try:
        for args in (["ip", "netns", "add", name], ["ip", "-n", name, "link", "show", "lo"]):
            done = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
            if done.returncode != 0:
                return f"network namespaces do not work here: {' '.join(args)}: {done.stderr.strip()}"
        return None
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"network namespaces do not work here: {exc}"
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10, check=False)


def _next_index() -> int:
    global _counter
    with _lock:
        _counter += 1
        return _counter


class NetNamespace:
    """A namespace ``name`` reachable from the host at :attr:`address` over a veth pair."""

    def __init__(self, *, prefix: str = "tw") -> None:
        reason = netns_unavailable()
        if reason is not None:
            raise WanError(f"cannot create a network namespace: {reason}")
        n = _next_index()
        tag = f"{prefix}{os.getpid() % 100000}x{n}"
        if len(tag) > 13:
            raise ConfigError(f"prefix too long for interface names: {prefix!r}", key="prefix")
        self.name = f"tether-{tag}"
        self.host_ifname = f"{tag}h"
        self.ns_ifname = f"{tag}n"
        subnet = (os.getpid() * 7 + n) % 16384  # a /30 inside 169.254.0.0/16
        base = 4 * subnet
        third, fourth = divmod(base, 256)
        third = max(1, third % 254)  # 169.254.0.x and 169.254.255.x are reserved
        self.host_address = f"169.254.{third}.{fourth + 1}"
        self.address = f"169.254.{third}.{fourth + 2}"
        self._created: list[str] = []
        try:
            self._create()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"<NetNamespace {self.name!r} {self.host_address} <-> {self.address}>"

    def _create(self) -> None:
        _ip("netns", "add", self.name)
        self._created.append("netns")
        _ip("link", "add", self.host_ifname, "type", "veth", "peer", "name", self.ns_ifname)
        self._created.append("veth")
        _ip("link", "set", self.ns_ifname, "netns", self.name)
        _ip("addr", "add", f"{self.host_address}/30", "dev", self.host_ifname)
        _ip("link", "set", self.host_ifname, "up")
        _ip("-n", self.name, "addr", "add", f"{self.address}/30", "dev", self.ns_ifname)
        _ip("-n", self.name, "link", "set", self.ns_ifname, "up")
        _ip("-n", self.name, "link", "set", "lo", "up")
        self._peer_mac = self._read_peer_mac()
        self._pin_neighbour()
        log.debug("created %r", self)

    def _read_peer_mac(self) -> str:
        shown = _ip("-n", self.name, "-o", "link", "show", "dev", self.ns_ifname)
        match = re.search(r"link/ether ([0-9a-f]{2}(?::[0-9a-f]{2}){5})", shown)
        if match is None:
            raise WanError(f"no MAC address for {self.ns_ifname} in: {shown.strip()}")
        return match.group(1)

    def _pin_neighbour(self) -> None:
        """Make the host's ARP entry for the namespace permanent (see the module docstring)."""
        _ip(
            "neigh", "replace", self.address, "lladdr", self._peer_mac,
            "nud", "permanent", "dev", self.host_ifname,
        )  # fmt: skip

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside the namespace; the caller owns (and must end) the process."""
        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **kwargs)

    def run(self, argv: Sequence[str], *, timeout_s: float = 30.0) -> str:
        """Run ``argv`` inside the namespace to completion; return its output."""
        return _run(["ip", "netns", "exec", self.name, *argv], timeout_s=timeout_s)

    def link_down(self) -> None:
        """Stop forwarding silently: the namespace's end goes down, no FIN, no RST is sent.

        The host keeps its address, route and (permanent) neighbour entry, so its packets
        are dropped by the pair without an error, as by a router that stopped forwarding:
        a new connection's SYNs go unanswered, an open connection sees nothing at all.
        Only timeouts and keepalive can notice. :meth:`link_up` lifts it; open connections
        whose TCP timers have not given up carry on.
        """
        self._pin_neighbour()  # again, in case something flushed the table since
        _ip("-n", self.name, "link", "set", self.ns_ifname, "down")

    def link_up(self) -> None:
        """Bring the namespace end of the veth pair up again."""
        _ip("-n", self.name, "link", "set", self.ns_ifname, "up")

    def shape(self, *, rate_bps: float, burst_bytes: int = 16384, limit_bytes: int = 1 << 20) -> None:
        """Limit host → namespace traffic to ``rate_bps`` bytes/s with ``tc qdisc ... tbf``."""
        check_number("rate_bps", rate_bps, low=1, high=MAX_BYTES)
        check_number("burst_bytes", burst_bytes, low=1, high=MAX_BYTES, integer=True)
        check_number("limit_bytes", limit_bytes, low=1, high=MAX_BYTES, integer=True)
        rate = f"{int(rate_bps * 8)}bit"
        _run(
            ["tc", "qdisc", "replace", "dev", self.host_ifname, "root", "tbf",
             "rate", rate, "burst", str(burst_bytes), "limit", str(limit_bytes)],
            timeout_s=10,
        )  # fmt: skip

    def unshape(self) -> None:
        """Remove the shaping that :meth:`shape` installed."""
        _run(["tc", "qdisc", "del", "dev", self.host_ifname, "root"], timeout_s=10)

    def close(self) -> None:
        """Remove the namespace and the veth pair (idempotent, best effort, logged)."""
        if "veth" in self._created:
            _quiet(["ip", "link", "del", self.host_ifname])
        if "netns" in self._created:
            _quiet(["ip", "netns", "del", self.name])
        self._created.clear()

    def __enter__(self) -> NetNamespace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _ip(*args: str) -> str:
    return _run(["ip", *args], timeout_s=10)


def _run(argv: Sequence[str], *, timeout_s: float) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s, check=True)
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip()
        raise WanError(f"{' '.join(argv)} failed: {detail}") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WanError(f"{' '.join(argv)} failed: {exc}") from exc
    return done.stdout


def _quiet(argv: Sequence[str]) -> None:
    try:
        _run(argv, timeout_s=10)
    except WanError as exc:  # already gone (deleting a netns removes its veth end)
        log.debug("cleanup: %s", exc)
