"""A link as the event loop sees it: listener, upstream, faults, open connections.

Everything here runs in the emulator's loop thread; :class:`tether.wan.Link` is the
thread-safe handle that users hold.

A link does not listen on one of the process's last :data:`RESERVED_FDS` file descriptors
(``RLIMIT_NOFILE``): it fails with :class:`ListenError` instead, so that creating links
without end runs into a refusal (409 from the control API) rather than a control API that
can no longer accept a connection.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Literal

from tether.errors import ConfigError
from tether.wan._connection import Connection
from tether.wan._errors import AlreadyExists, ListenError, NotFound
from tether.wan._items import Action
from tether.wan.faults._base import Fault

__all__ = ["Address", "FaultEntry", "LinkState", "LinkStats", "parse_address"]

log = logging.getLogger(__name__)

try:
    import resource
except ImportError:  # Windows has none: no limit known, none kept
    resource = None  # type: ignore[assignment]

#: File descriptors no listener may take, kept for the control API's and the links' connections.
RESERVED_FDS = 32

Address = tuple[str, int]
Direction = Literal["upstream", "downstream"]
DIRECTIONS: tuple[Direction, ...] = ("upstream", "downstream")


@dataclass(frozen=True, slots=True)
class FaultEntry:
    """A fault as installed on a link: its name, the direction it acts on, the setting."""

    name: str
    direction: Direction
    fault: Fault


@dataclass(frozen=True, slots=True)
class LinkStats:
    """A snapshot of a link's open connections."""

    connections: int
    bytes_upstream: int  # forwarded client -> server, by open connections
    bytes_downstream: int  # forwarded server -> client, by open connections
    buffered: int  # bytes held by the emulator (queues and write buffers)


def parse_address(value: str | tuple[str, int], *, key: str) -> Address:
    """``"host:port"``, ``"[::1]:port"`` or ``(host, port)`` → ``(host, port)``."""
    if isinstance(value, tuple):
        if len(value) != 2 or not isinstance(value[0], str) or not isinstance(value[1], int):
            raise ConfigError(f"{key} must be (host, port), got {value!r}", key=key)
        host, port = value
    elif isinstance(value, str):
        host, sep, port_text = value.rpartition(":")
        if not sep or not port_text.isdigit():
            raise ConfigError(f"{key} must be host:port, got {value!r}", key=key)
        host, port = host.strip("[]") or "127.0.0.1", int(port_text)
    else:
        raise ConfigError(f"{key} must be host:port or (host, port), got {value!r}", key=key)
    if not 0 <= port <= 65535 or isinstance(port, bool):
        raise ConfigError(f"{key} port must be 0..65535, got {port!r}", key=key)
    return host, port


def format_address(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class LinkState:
    """Listener, upstream and faults of one link, and its connections."""

    def __init__(self, *, name: str, listen: Address, upstream: Address, rng: random.Random) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.faults: dict[str, FaultEntry] = {}
        self.connections: set[Connection] = set()
        # bytes (received, sent) per direction of the connections that ended (``/metrics``)
        self.retired_bytes = {"upstream": [0, 0], "downstream": [0, 0]}
        self._rng = rng
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._watchers: set[asyncio.Future[None]] = set()

    def __repr__(self) -> str:
        state = "enabled" if self.enabled else "disabled"
        return (
            f"<Link {self.name!r} {format_address(self.listen)} -> "
            f"{format_address(self.upstream)} [{state}, {len(self.faults)} faults,"
            f" {len(self.connections)} connections]>"
        )

    # -- listening -----------------------------------------------------------------------

    @property
    def listening(self) -> bool:
        return self._server is not None

    def _is_down(self) -> bool:
        return any(e.fault.link_level and e.fault.toxicity >= 1.0 for e in self.faults.values())

    async def enable(self) -> None:
        self.enabled = True
        await self._sync_listener()

    async def disable(self) -> None:
        self.enabled = False
        await self._sync_listener()

    async def _sync_listener(self) -> None:
        want = self.enabled and not self._is_down()
        if want and self._server is None:
            await self._listen()
        elif not want and self._server is not None:
            server, self._server = self._server, None
            server.close()
            self.drop_all(Action.CLOSE)
            await server.wait_closed()
            log.info("link %r: stopped listening on %s", self.name, format_address(self.listen))

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        host, port = self.listen
        where = format_address(self.listen)
        try:
            server = await loop.create_server(self._accept, host, port, reuse_address=True)
        except OSError as exc:
            self.enabled = False
            raise ListenError(f"link {self.name!r} cannot listen on {where}: {exc}") from exc
        if not server.sockets or _among_the_last_fds(max(s.fileno() for s in server.sockets)):
            # create_server skips addresses it has no socket for (EMFILE): none may be left
            server.close()
            self.enabled = False
            message = f"link {self.name!r} cannot listen on {where}: out of file descriptors"
            raise ListenError(message)
        sockname = server.sockets[0].getsockname()
        self.listen = (host, sockname[1])
        self._server = server
        log.info("link %r: listening on %s", self.name, format_address(self.listen))

    def _accept(self) -> asyncio.Protocol:
        conn = Connection(self, self._rng)
        self.connections.add(conn)
        self._notify()
        return conn.client

    def start(self, conn: Connection) -> None:
        """The client is connected: open the upstream side in a task."""
        task = asyncio.get_running_loop().create_task(self._start(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start(self, conn: Connection) -> None:
        if self._rolled_down():
            conn.kill(Action.RESET, "down")
            return
        await conn.open_upstream(self.pipe_faults())

    def _rolled_down(self) -> bool:
        return any(e.fault.link_level and self._rng.random() < e.fault.toxicity for e in self.faults.values())

    # -- faults --------------------------------------------------------------------------

    def pipe_faults(self) -> dict[str, list[tuple[str, Fault]]]:
        chains: dict[str, list[tuple[str, Fault]]] = {d: [] for d in DIRECTIONS}
        for entry in self.faults.values():
            if not entry.fault.link_level:
                chains[entry.direction].append((entry.name, entry.fault))
        return chains

    async def add_fault(self, entry: FaultEntry) -> None:
        if entry.name in self.faults:
            raise AlreadyExists(f"fault {entry.name!r} already exists on link {self.name!r}")
        self.faults[entry.name] = entry
        await self._faults_changed(new=entry)

    async def update_fault(self, entry: FaultEntry) -> None:
        if entry.name not in self.faults:
            raise NotFound(f"no fault {entry.name!r} on link {self.name!r}")
        self.faults[entry.name] = entry
        await self._faults_changed(new=entry)

    async def remove_fault(self, name: str) -> None:
        if self.faults.pop(name, None) is None:
            raise NotFound(f"no fault {name!r} on link {self.name!r}")
        await self._faults_changed()

    async def clear_faults(self) -> None:
        self.faults.clear()
        await self._faults_changed()

    async def _faults_changed(self, new: FaultEntry | None = None) -> None:
        chains = self.pipe_faults()
        for conn in list(self.connections):
            conn.set_faults(chains)
        if new is not None and new.fault.link_level:
            for conn in list(self.connections):
                if self._rng.random() < new.fault.toxicity:
                    conn.kill(Action.CLOSE, "down")
        await self._sync_listener()

    # -- connections ---------------------------------------------------------------------

    def drop_all(self, action: Action) -> int:
        conns = list(self.connections)
        for conn in conns:
            conn.kill(action, "link")
        return len(conns)

    def stats(self) -> LinkStats:
        conns = list(self.connections)
        return LinkStats(
            connections=len(conns),
            bytes_upstream=sum(c.up.bytes_out for c in conns),
            bytes_downstream=sum(c.down.bytes_out for c in conns),
            buffered=sum(c.up.buffered + c.down.buffered for c in conns),
        )

    def byte_totals(self) -> dict[str, tuple[int, int]]:
        """Bytes (received, sent) per direction since the link was made, the connections
        open now included: Toxiproxy's ``toxiproxy_proxy_{received,sent}_bytes_total``."""
        totals = {}
        for direction, (received, sent) in self.retired_bytes.items():
            pipes = [c.up if direction == "upstream" else c.down for c in self.connections]
            totals[direction] = (received + sum(p.bytes_in for p in pipes),
                                 sent + sum(p.bytes_out for p in pipes))
        return totals

    def forget(self, conn: Connection) -> None:
        if conn in self.connections:
            for direction, pipe in (("upstream", conn.up), ("downstream", conn.down)):
                totals = self.retired_bytes[direction]
                totals[0] += pipe.bytes_in
                totals[1] += pipe.bytes_out
        self.connections.discard(conn)
        self._notify()

    def _notify(self) -> None:
        for fut in self._watchers:
            if not fut.done():
                fut.set_result(None)
        self._watchers.clear()

    async def wait_connections(self, count: int, *, timeout_s: float) -> None:
        """Wait until exactly ``count`` connections are open; TimeoutError otherwise."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(self.connections) != count:
            remaining = deadline - loop.time()
            fut: asyncio.Future[None] = loop.create_future()
            self._watchers.add(fut)
            try:
                await asyncio.wait_for(fut, max(remaining, 0.0))
            except asyncio.TimeoutError:
                message = f"link {self.name!r}: {len(self.connections)} connections, not {count}"
                raise TimeoutError(message) from None
            finally:
                self._watchers.discard(fut)

    async def close(self) -> None:
        self.faults.clear()
        await self.disable()
        self.drop_all(Action.CLOSE)
        waits = [c.closed for c in self.connections]
        if waits:
            await asyncio.wait(waits, timeout=2.0)
        for task in list(self._tasks):
            task.cancel()


def _among_the_last_fds(fd: int) -> bool:
    """Whether a new descriptor ``fd`` is one of the last :data:`RESERVED_FDS`.

    The kernel hands out the lowest free descriptor, so all below a new one are in use and
    at most ``limit - fd - 1`` are left. (Free ones may be fewer, never more.)
    """
    if resource is None:
        return False
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if limit == resource.RLIM_INFINITY:
        return False
    return fd >= limit - RESERVED_FDS
