"""Moving TDS packets over one socket, in the clear or through TLS (``ssl.SSLObject``).

TLS in TDS is odd: the handshake travels inside PRELOGIN (0x12) packets, and only then do
TLS records flow directly on the TCP stream (carrying TDS packets). With login-only
encryption the TLS layer is dropped again right after LOGIN7. MemoryBIOs let us do both.
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Callable

from ._packets import HEADER, HEADER_SIZE, PRELOGIN, ST_EOM, ProtocolError, header

MAX_MESSAGE = 16 * 1024 * 1024  # refuse absurd requests rather than buffer forever


class Closed(Exception):
    """The peer closed the connection (or it was closed under us)."""


class Wire:
    def __init__(self, sock: socket.socket, on_packet: Callable[[bool], None]) -> None:
        self.sock = sock
        self.on_packet = on_packet  # called with True for each packet in, False for each out
        self._buf = bytearray()  # plaintext received and not yet consumed
        self._tls: ssl.SSLObject | None = None
        self._tls_in = ssl.MemoryBIO()
        self._tls_out = ssl.MemoryBIO()

    @property
    def encrypted(self) -> bool:
        return self._tls is not None

    # --- raw bytes ------------------------------------------------------------------------

    def _recv_socket(self) -> bytes:
        try:
            data = self.sock.recv(65536)
        except OSError as exc:
            raise Closed(str(exc)) from exc
        if not data:
            raise Closed("EOF")
        return data

    def _fill(self) -> None:
        if self._tls is None:
            self._buf += self._recv_socket()
            return
        while True:
            try:
                self._buf += self._tls.read(65536)
                return
            except ssl.SSLWantReadError:
                self._tls_in.write(self._recv_socket())
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError) as exc:
                raise Closed("TLS closed") from exc
            except ssl.SSLError as exc:
                raise ProtocolError(f"TLS: {exc}") from exc

    def _read_exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._fill()
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _send(self, data: bytes) -> None:
        if self._tls is not None:
            self._tls.write(data)
            data = self._tls_out.read()
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise Closed(str(exc)) from exc

    def readable(self, timeout: float) -> bool:
        """True if a packet (or EOF) may be waiting; used to notice attentions while busy."""
        if self._buf or (self._tls is not None and self._tls.pending()):
            return True
        try:
            ready, _, _ = select.select([self.sock], [], [], timeout)
        except (OSError, ValueError):
            return True  # closed under us: let the read report it
        return bool(ready)

    # --- packets --------------------------------------------------------------------------

    def read_packet(self) -> tuple[int, int, bytes]:
        ptype, status, length, _spid, _pid, _win = HEADER.unpack(self._read_exact(HEADER_SIZE))
        if length < HEADER_SIZE:
            raise ProtocolError(f"bad packet length {length}")
        payload = self._read_exact(length - HEADER_SIZE)
        self.on_packet(True)
        return ptype, status, payload

    def read_message(self) -> tuple[int, int, bytes]:
        """(type, status of the first packet, payload of all packets up to EOM)."""
        ptype, status, payload = self.read_packet()
        first_status = status
        data = bytearray(payload)
        while not status & ST_EOM:
            more_type, status, payload = self.read_packet()
            if more_type != ptype:
                if more_type == 0x06:  # attention in the middle of a message: drop the message
                    return more_type, status, b""
                raise ProtocolError("packet type changed inside a message")
            data += payload
            if len(data) > MAX_MESSAGE:
                raise ProtocolError("message too large")
        return ptype, first_status, bytes(data)

    def send_message(self, ptype: int, payload: bytes, packet_size: int, spid: int) -> None:
        chunk = packet_size - HEADER_SIZE
        out = bytearray()
        pieces = [payload[i : i + chunk] for i in range(0, len(payload), chunk)] or [b""]
        for number, piece in enumerate(pieces, start=1):
            status = ST_EOM if number == len(pieces) else 0
            out += header(ptype, status, HEADER_SIZE + len(piece), spid, number) + piece
            self.on_packet(False)
        self._send(bytes(out))

    # --- TLS ------------------------------------------------------------------------------

    def tls_handshake(self, context: ssl.SSLContext, packet_size: int) -> None:
        """Run the server side of the handshake, wrapped in PRELOGIN packets both ways."""
        tls = context.wrap_bio(self._tls_in, self._tls_out, server_side=True)
        while True:
            try:
                tls.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            except ssl.SSLError as exc:
                raise ProtocolError(f"TLS handshake: {exc}") from exc
            pending = self._tls_out.read()
            if pending:
                self.send_message(PRELOGIN, pending, packet_size, 0)
            if done:
                break
            ptype, _status, payload = self.read_message()
            if ptype != PRELOGIN:
                raise ProtocolError(f"expected a TLS handshake packet, got type 0x{ptype:02x}")
            self._tls_in.write(payload)
        self._tls = tls

    def tls_accept_strict(self, context: ssl.SSLContext) -> None:
        """TDS 8.0 (Encrypt=strict): TLS first, with its records straight on the socket."""
        tls = context.wrap_bio(self._tls_in, self._tls_out, server_side=True)
        while True:
            try:
                tls.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            except ssl.SSLError as exc:
                raise ProtocolError(f"TLS handshake: {exc}") from exc
            pending = self._tls_out.read()
            if pending:
                try:
                    self.sock.sendall(pending)
                except OSError as exc:
                    raise Closed(str(exc)) from exc
            if done:
                break
            self._tls_in.write(self._recv_socket())
        self._tls = tls

    def first_byte(self) -> int:
        """Peek at the first byte: 0x12 starts a PRELOGIN, 0x16 a TLS handshake (TDS 8.0)."""
        try:
            data = self.sock.recv(1, socket.MSG_PEEK)
        except OSError as exc:
            raise Closed(str(exc)) from exc
        if not data:
            raise Closed("EOF")
        return data[0]

    def drop_tls(self) -> None:
        """Login-only encryption: back to the clear after LOGIN7 (MS-TDS 3.3.5.3)."""
        self._tls = None
