"""One proxied connection: the client's socket, the upstream socket, and a pipe each way."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from tether.wan._items import Action
from tether.wan._pipe import Pipe
from tether.wan.faults._base import Fault

if TYPE_CHECKING:
    from tether.wan._link_state import LinkState

__all__ = ["Connection"]

log = logging.getLogger(__name__)

_WRITE_HIGH = 256 * 1024
_LINGER_RST = struct.pack("ii", 1, 0)


class _Side(asyncio.Protocol):
    """The protocol for one socket: what it reads goes out, what goes in is written to it."""

    def __init__(self, conn: Connection, outgoing: Pipe, incoming: Pipe) -> None:
        self.conn = conn
        self.outgoing = outgoing  # data read from this socket flows here
        self.incoming = incoming  # this pipe writes to this socket
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=_WRITE_HIGH)
        self.outgoing.src = transport
        self.incoming.dst = transport
        self.conn.side_made(self)

    def data_received(self, data: bytes) -> None:
        self.outgoing.feed(data)

    def eof_received(self) -> bool:
        self.outgoing.feed_eof()
        return True  # keep the other half open: half-close is forwarded, not assumed

    def pause_writing(self) -> None:
        self.incoming.dst_paused()

    def resume_writing(self) -> None:
        self.incoming.dst_resumed()

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.side_lost(self, exc)


class Connection:
    """A client connection accepted by a link, and its upstream connection."""

    def __init__(self, state: LinkState, rng: random.Random) -> None:
        self.state = state
        self.up = Pipe(self, "upstream", rng)
        self.down = Pipe(self, "downstream", rng)
        self.client = _Side(self, self.up, self.down)
        self.server = _Side(self, self.down, self.up)
        self.closed = asyncio.get_running_loop().create_future()
        self._ending = False
        self._lost = 0

    def __repr__(self) -> str:
        peer = self.client.transport.get_extra_info("peername") if self.client.transport else None
        return (
            f"<Connection {self.state.name!r} from {peer} [up {self.up.bytes_out}B,"
            f" down {self.down.bytes_out}B]>"
        )

    def side_made(self, side: _Side) -> None:
        assert side.transport is not None
        if self._ending:
            # Killed before this socket was set up (a reset_all() between accept and
            # connection_made, or while connecting upstream): close it here, as nothing
            # else will; the task that awaited it may have been cancelled.
            side.transport.close()
        elif side is self.client:
            side.transport.pause_reading()  # until the upstream answers
            self.state.start(self)

    async def open_upstream(self, faults: Mapping[str, Iterable[tuple[str, Fault]]]) -> None:
        """Connect to the upstream; until then the client's bytes wait in the kernel."""
        assert self.client.transport is not None
        loop = asyncio.get_running_loop()
        host, port = self.state.upstream
        try:
            await loop.create_connection(lambda: self.server, host, port)
        except OSError as exc:
            log.warning("link %r: upstream %s:%s unreachable: %s", self.state.name, host, port, exc)
            self.kill(Action.CLOSE, "upstream")
            return
        if self._ending:  # dropped while connecting
            assert self.server.transport is not None
            self.server.transport.close()
            return
        self.set_faults(faults)
        self.client.transport.resume_reading()

    def set_faults(self, faults: Mapping[str, Iterable[tuple[str, Fault]]]) -> None:
        self.up.set_faults(faults.get("upstream", ()))
        self.down.set_faults(faults.get("downstream", ()))

    def kill(self, action: Action, direction: str = "") -> None:
        """End the connection: RST both sides, or close them gracefully (FIN)."""
        if self._ending:
            return
        self._ending = True
        log.debug("link %r: %s %r (%s)", self.state.name, action.value, self, direction)
        self.up.stop()
        self.down.stop()
        for side in (self.client, self.server):
            transport = side.transport
            if transport is None or transport.is_closing():
                continue
            if action is Action.RESET:
                _set_linger_zero(transport)
                transport.abort()
            else:
                transport.close()
        if self.server.transport is None:
            self._lost += 1  # never connected: nothing to wait for on that side
        self._maybe_closed()

    def check_done(self) -> None:
        """Both halves were closed and forwarded: close both sockets."""
        if self.up.eof_done and self.down.eof_done:
            self.kill(Action.CLOSE, "eof")

    def side_lost(self, side: _Side, exc: Exception | None) -> None:
        self._lost += 1
        if not self._ending:
            # A peer vanished under us: pass a reset on as a reset, anything else as a close.
            reset = isinstance(exc, ConnectionResetError)
            self.kill(Action.RESET if reset else Action.CLOSE, "peer lost")
        self._maybe_closed()

    def _maybe_closed(self) -> None:
        if self._lost >= 2 and not self.closed.done():
            self.closed.set_result(None)
            self.state.forget(self)


def _set_linger_zero(transport: asyncio.Transport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    except OSError as exc:  # already dead: nothing to reset
        log.debug("SO_LINGER failed: %s", exc)
