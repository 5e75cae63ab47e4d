"""Just enough TDS for the checker: PRELOGIN, TLS, LOGIN7 and the login response (MS-TDS).

- Packets: an 8-byte header (type, status, big-endian length including the header, SPID,
  packet id, window); a message ends with the packet whose status has the EOM bit.
- PRELOGIN (type 0x12): option headers (token, big-endian offset and length) ended by 0xFF,
  then the option data. The server answers with a tabular-result packet (0x04).
- TLS, TDS 7.x: after the PRELOGIN exchange negotiated encryption, the TLS handshake records
  travel as the payload of PRELOGIN (0x12) packets; once the handshake is done, TLS records
  go straight over TCP and carry the TDS packets. When both sides said ENCRYPT_OFF, only the
  LOGIN7 packet is encrypted: TLS ends right after it, and the response comes in clear.
- TLS, TDS 8.0 (``Encrypt=strict``): the TLS handshake comes first, on the bare TCP
  connection (ALPN ``tds/8.0``), and everything, PRELOGIN included, runs inside it.
- LOGIN7 (0x10): SQL authentication; the password is obfuscated as the protocol wants (each
  byte's nibbles swapped, then XOR 0xA5), which protects nothing: it is only ever sent over
  TLS unless the caller decides otherwise.
- The response's tokens: ERROR/INFO, LOGINACK, ENVCHANGE (type 20 is the routing of Azure
  SQL's redirect policy and of read-only routing), DONE.

Nothing here logs a password; only the LOGIN7 record carries it, obfuscated as above.
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ENCRYPTION_NAMES",
    "LoginReply",
    "Prelogin",
    "TdsConnection",
    "TdsError",
    "build_login7",
    "build_prelogin",
    "parse_login_reply",
    "parse_prelogin",
    "product_name",
]

PRELOGIN, TABULAR, LOGIN7 = 0x12, 0x04, 0x10
_EOM = 0x01
_HEADER = struct.Struct(">BBHHBB")
_PACKET_SIZE = 4096
_MAX_MESSAGE = 1 << 20  # a login response is a few kB; more is not a TDS server talking

# PRELOGIN option tokens.
_VERSION, _ENCRYPTION, _INSTOPT, _THREADID, _MARS, _TRACEID, _FEDAUTH, _NONCE = range(8)
_TERMINATOR = 0xFF

ENCRYPT_OFF, ENCRYPT_ON, ENCRYPT_NOT_SUP, ENCRYPT_REQ = 0, 1, 2, 3
ENCRYPTION_NAMES = {ENCRYPT_OFF: "OFF", ENCRYPT_ON: "ON", ENCRYPT_NOT_SUP: "NOT_SUP", ENCRYPT_REQ: "REQ"}

_TDS_74 = 0x74000004
_ALPN_TDS8 = "tds/8.0"

# Major version -> product (Azure SQL Database, Managed Instance and Babelfish answer 12.x;
# the login step tells Babelfish by its @@VERSION).
_PRODUCTS = {8: "SQL Server 2000", 9: "SQL Server 2005", 10: "SQL Server 2008", 11: "SQL Server 2012",
             12: "SQL Server 2014, Azure SQL or Babelfish", 13: "SQL Server 2016", 14: "SQL Server 2017",
             15: "SQL Server 2019", 16: "SQL Server 2022", 17: "SQL Server 2025"}


class TdsError(Exception):
    """The peer broke the protocol, or closed the connection."""


def product_name(version: str) -> str | None:
    """``"SQL Server 2022"`` for ``"16.0.1000"``; None for an unknown major version."""
    try:
        return _PRODUCTS.get(int(version.split(".", 1)[0]))
    except ValueError:
        return None


# -- PRELOGIN ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prelogin:
    """A parsed PRELOGIN answer: what the server says about itself and encryption."""

    version: str | None  # major.minor.build
    encryption: int | None  # ENCRYPT_*, the low two bits of B_FENCRYPTION
    encryption_flags: int  # the other bits (0x20 extension, 0x80 client certificate)
    instance: str | None  # the server's INSTOPT answer: "ok" (matched) or the raw text
    thread_id: int | None
    mars: bool | None
    fedauth_required: bool | None
    options: tuple[int, ...] = ()  # option tokens present, in order

    @property
    def encryption_name(self) -> str:
        if self.encryption is None:
            return "absent"
        return ENCRYPTION_NAMES.get(self.encryption, f"0x{self.encryption:02x}")

    def to_dict(self) -> dict[str, Any]:
        return {"server_version": self.version, "product": product_name(self.version or ""),
                "encryption": self.encryption_name, "encryption_flags": self.encryption_flags,
                "instance": self.instance, "thread_id": self.thread_id, "mars": self.mars,
                "fedauth_required": self.fedauth_required}


def build_prelogin(encryption: int, *, instance: str = "",
                   version: tuple[int, int, int] = (0, 1, 0)) -> bytes:
    """The payload of a client PRELOGIN: VERSION, ENCRYPTION, INSTOPT, THREADID, MARS (off)."""
    major, minor, build = version
    options = [
        (_VERSION, struct.pack(">BBHH", major, minor, build, 0)),
        (_ENCRYPTION, bytes([encryption])),
        (_INSTOPT, instance.encode("ascii", "replace") + b"\x00"),
        (_THREADID, struct.pack(">I", os.getpid() & 0xFFFFFFFF)),
        (_MARS, b"\x00"),
    ]
    offset = 5 * len(options) + 1
    head, body = bytearray(), bytearray()
    for token, data in options:
        head += struct.pack(">BHH", token, offset + len(body), len(data))
        body += data
    return bytes(head) + bytes([_TERMINATOR]) + bytes(body)


def parse_prelogin(payload: bytes) -> Prelogin:
    """Parse a PRELOGIN answer; ``TdsError`` when it is not one."""
    found: dict[int, bytes] = {}
    order: list[int] = []
    pos = 0
    while True:
        if pos >= len(payload):
            raise TdsError("PRELOGIN answer without its terminator")
        token = payload[pos]
        if token == _TERMINATOR:
            break
        if pos + 5 > len(payload):
            raise TdsError("PRELOGIN answer cut inside an option header")
        _, offset, length = struct.unpack_from(">BHH", payload, pos)
        if offset + length > len(payload):
            raise TdsError(f"PRELOGIN option 0x{token:02x} points past the end of the answer")
        found[token] = payload[offset:offset + length]
        order.append(token)
        pos += 5
    if _VERSION not in found:
        raise TdsError("PRELOGIN answer without VERSION: not a SQL Server")
    return Prelogin(
        version=_version(found[_VERSION]),
        encryption=found[_ENCRYPTION][0] & 0x03 if found.get(_ENCRYPTION) else None,
        encryption_flags=found[_ENCRYPTION][0] & ~0x03 if found.get(_ENCRYPTION) else 0,
        instance=_instance(found.get(_INSTOPT)),
        thread_id=struct.unpack(">I", found[_THREADID])[0] if len(found.get(_THREADID, b"")) == 4 else None,
        mars=bool(found[_MARS][0]) if found.get(_MARS) else None,
        fedauth_required=bool(found[_FEDAUTH][0]) if found.get(_FEDAUTH) else None,
        options=tuple(order),
    )


def _version(data: bytes) -> str | None:
    if len(data) < 4:
        return None
    major, minor, build = struct.unpack_from(">BBH", data)
    return f"{major}.{minor}.{build}"


def _instance(data: bytes | None) -> str | None:
    if not data:
        return None
    text = data.rstrip(b"\x00")
    if not text:
        return "ok"
    if text == b"\x01":
        return "mismatch"
    return text.decode("ascii", "replace")


# -- packets over a socket, optionally through TLS ------------------------------------------


class _TlsOverSocket:
    """TLS records straight over TCP, from an SSLObject whose handshake is done."""

    def __init__(self, sock: socket.socket, tls: ssl.SSLObject, incoming: ssl.MemoryBIO,
                 outgoing: ssl.MemoryBIO) -> None:
        self._sock, self._tls, self._in, self._out = sock, tls, incoming, outgoing

    def sendall(self, data: bytes) -> None:
        self._tls.write(data)
        self._sock.sendall(self._out.read())

    def recv(self, size: int) -> bytes:
        while True:
            try:
                return self._tls.read(size)
            except ssl.SSLWantReadError:
                chunk = self._sock.recv(65536)
                if not chunk:
                    return b""
                self._in.write(chunk)
            except ssl.SSLZeroReturnError:
                return b""


class TdsConnection:
    """TDS messages over one TCP connection (the caller owns and closes the socket).

    ``tls_in_tds`` runs the TDS 7.x handshake inside PRELOGIN packets; ``tls_first`` the
    TDS 8.0 one on the bare connection; ``end_tls`` goes back to clear text (login-only
    encryption).
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock: socket.socket = sock
        self._io: Any = sock
        self._packet_id = 0
        self.tls: ssl.SSLObject | ssl.SSLSocket | None = None

    def send(self, packet_type: int, payload: bytes) -> None:
        step = _PACKET_SIZE - _HEADER.size
        chunks = [payload[i:i + step] for i in range(0, len(payload), step)] or [b""]
        wire = bytearray()
        for n, chunk in enumerate(chunks):
            self._packet_id = (self._packet_id + 1) % 256
            status = _EOM if n == len(chunks) - 1 else 0
            wire += _HEADER.pack(packet_type, status, _HEADER.size + len(chunk), 0, self._packet_id, 0)
            wire += chunk
        self._io.sendall(bytes(wire))

    def receive(self) -> tuple[int, bytes]:
        """One whole message: the type of its first packet and the payloads joined."""
        first_type: int | None = None
        payload = bytearray()
        while True:
            packet_type, status, length, _, _, _ = _HEADER.unpack(self._exactly(_HEADER.size))
            if length < _HEADER.size:
                raise TdsError(f"a TDS packet header says length {length}: not a TDS server")
            first_type = packet_type if first_type is None else first_type
            payload += self._exactly(length - _HEADER.size)
            if len(payload) > _MAX_MESSAGE:
                raise TdsError("a TDS message larger than 1 MB during the login: not a TDS server")
            if status & _EOM:
                return first_type, bytes(payload)

    def _exactly(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = self._io.recv(size - len(data))
            if not chunk:
                raise TdsError("the server closed the connection")
            data += chunk
        return bytes(data)

    def tls_in_tds(self, context: ssl.SSLContext, server_hostname: str | None) -> ssl.SSLObject:
        """TDS 7.x: the TLS handshake in PRELOGIN packets; then TLS directly over TCP."""
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
        while True:
            try:
                tls.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            records = outgoing.read()
            if records:
                self.send(PRELOGIN, records)
            if done:
                break
            packet_type, data = self.receive()
            if packet_type not in (PRELOGIN, TABULAR) or not data:
                raise TdsError(f"expected TLS handshake records in a PRELOGIN packet, got packet type "
                               f"0x{packet_type:02x}")
            incoming.write(data)
        self._io = _TlsOverSocket(self.sock, tls, incoming, outgoing)
        self.tls = tls
        return tls

    def tls_first(self, context: ssl.SSLContext, server_hostname: str | None) -> ssl.SSLSocket:
        """TDS 8.0: the TLS handshake on the bare connection, ALPN ``tds/8.0``."""
        context.set_alpn_protocols([_ALPN_TDS8])
        tls = context.wrap_socket(self.sock, server_hostname=server_hostname)
        self.sock = self._io = self.tls = tls  # wrap_socket detached the plain socket
        return tls

    def end_tls(self) -> None:
        """Back to clear text (after the LOGIN7 packet of a login-only encryption; not for TDS 8.0)."""
        self._io = self.sock

    def prelogin(self, encryption: int, *, instance: str = "") -> Prelogin:
        self.send(PRELOGIN, build_prelogin(encryption, instance=instance))
        packet_type, payload = self.receive()
        if packet_type != TABULAR:
            raise TdsError(f"expected a PRELOGIN answer (packet type 0x04), got 0x{packet_type:02x}")
        return parse_prelogin(payload)


def tls_facts(tls: ssl.SSLObject | ssl.SSLSocket) -> dict[str, Any]:
    """Protocol, cipher, ALPN and the peer's DER certificate of a finished handshake."""
    cipher = tls.cipher()
    return {"protocol": tls.version(), "cipher": cipher[0] if cipher else None,
            "alpn": tls.selected_alpn_protocol(), "der": tls.getpeercert(binary_form=True)}


# -- LOGIN7 and its answer -------------------------------------------------------------------


def _obfuscate(password: str) -> bytes:
    return bytes((((b << 4) & 0xF0) | (b >> 4)) ^ 0xA5 for b in password.encode("utf-16-le"))


def build_login7(*, user: str, password: str, database: str, server_name: str, app_name: str = "tether check",
                 client_host: str = "", packet_size: int = _PACKET_SIZE) -> bytes:
    """A LOGIN7 record for SQL authentication, TDS 7.4, no feature extensions."""
    fixed_size = 94
    fields = [  # in the order of the offset/length table
        client_host.encode("utf-16-le"),
        user.encode("utf-16-le"),
        _obfuscate(password),
        app_name.encode("utf-16-le"),
        server_name.encode("utf-16-le"),
        b"",  # unused / extension
        "tether".encode("utf-16-le"),  # client interface name
        b"",  # language: the login's default
        database.encode("utf-16-le"),
    ]
    table, data = bytearray(), bytearray()
    for value in fields:
        table += struct.pack("<HH", fixed_size + len(data), len(value) // 2)
        data += value
    tail_offset = fixed_size + len(data)
    table += b"\x00" * 6  # ClientID (a MAC address; none)
    # SSPI, AtchDBFile, ChangePassword (offset, length each), cbSSPILong
    table += struct.pack("<HHHHHHI", tail_offset, 0, tail_offset, 0, tail_offset, 0, 0)
    option_flags1 = 0xE0  # USE_DB_ON, INIT_DB_FATAL, SET_LANG_ON
    option_flags2 = 0x03  # INIT_LANG_FATAL, ODBC
    head = struct.pack("<IIIIIIBBBBiI", fixed_size + len(data), _TDS_74, packet_size, 0x00010000,
                       os.getpid() & 0xFFFFFFFF, 0, option_flags1, option_flags2, 0, 0, 0, 0x0409)
    record = head + bytes(table) + bytes(data)
    if len(head) + len(table) != fixed_size:  # pragma: no cover - layout guard
        raise AssertionError("LOGIN7 fixed part is not 94 bytes")
    return record


@dataclass(slots=True)
class LoginReply:
    """What a login response said: success, errors, routing, the server's program."""

    logged_in: bool = False
    errors: list[dict[str, Any]] = field(default_factory=list)
    infos: list[dict[str, Any]] = field(default_factory=list)
    routing: tuple[str, int] | None = None
    program: str | None = None
    tds_version: str | None = None
    database: str | None = None


def _us_varchar(data: bytes, pos: int) -> tuple[str, int]:
    (count,) = struct.unpack_from("<H", data, pos)
    end = pos + 2 + 2 * count
    return data[pos + 2:end].decode("utf-16-le", "replace"), end


def _b_varchar(data: bytes, pos: int) -> tuple[str, int]:
    count = data[pos]
    end = pos + 1 + 2 * count
    return data[pos + 1:end].decode("utf-16-le", "replace"), end


def _message(body: bytes) -> dict[str, Any]:
    number, state, severity = struct.unpack_from("<iBB", body, 0)
    text, pos = _us_varchar(body, 6)
    server, pos = _b_varchar(body, pos)
    return {"number": number, "state": state, "class": severity, "message": text, "server": server}


def _envchange(body: bytes, reply: LoginReply) -> None:
    kind = body[0]
    if kind == 20:  # routing: value length, protocol (0 = TCP), port, server (US_VARCHAR)
        _, protocol, port = struct.unpack_from("<HBH", body, 1)
        server, _ = _us_varchar(body, 6)
        if protocol == 0:
            reply.routing = (server, port)
    elif kind == 1:  # database
        reply.database, _ = _b_varchar(body, 1)


def parse_login_reply(data: bytes) -> LoginReply:
    """The tokens of a login response; stops quietly at a token it does not know."""
    reply = LoginReply()
    pos = 0
    try:
        while pos < len(data):
            token = data[pos]
            pos += 1
            if token in (0xFD, 0xFE, 0xFF):  # DONE, DONEPROC, DONEINPROC: fixed 12 bytes
                pos += 12
            elif token == 0xAE:  # FEATUREEXTACK
                while data[pos] != 0xFF:
                    (size,) = struct.unpack_from("<I", data, pos + 1)
                    pos += 5 + size
                pos += 1
            elif token == 0xEE:  # FEDAUTHINFO: a 4-byte length
                (size,) = struct.unpack_from("<I", data, pos)
                pos += 4 + size
            elif token in (0xAA, 0xAB, 0xAD, 0xE3, 0xED):  # 2-byte length
                (size,) = struct.unpack_from("<H", data, pos)
                body = data[pos + 2:pos + 2 + size]
                pos += 2 + size
                if token == 0xAA:
                    reply.errors.append(_message(body))
                elif token == 0xAB:
                    reply.infos.append(_message(body))
                elif token == 0xAD:
                    reply.logged_in = True
                    reply.tds_version = body[1:5].hex()
                    program, _ = _b_varchar(body, 5)
                    reply.program = program
                elif token == 0xE3:
                    _envchange(body, reply)
            else:
                break
    except (struct.error, IndexError):
        pass  # a cut stream: keep what was read
    return reply
