"""Just enough of the MySQL/MariaDB protocol for the checker: the greeting and the SSLRequest.

A packet is a 3-byte little-endian length, a sequence number, then the payload. The server
speaks first: its initial handshake (protocol 10) gives its version and capability flags,
CLIENT_SSL among them; or an ERR packet (0xFF) when it refuses this client outright (too
many connections, a blocked host). A client that wants TLS answers with an SSLRequest (the
start of a handshake response, cut before the user name) and starts the TLS handshake.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Any

__all__ = ["CLIENT_SSL", "Greeting", "MySQLWireError", "parse_greeting", "read_packet", "ssl_request"]

CLIENT_LONG_PASSWORD = 0x1
CLIENT_LONG_FLAG = 0x4
CLIENT_PROTOCOL_41 = 0x200
CLIENT_SSL = 0x800
CLIENT_TRANSACTIONS = 0x2000
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
_WANTED = (CLIENT_LONG_PASSWORD | CLIENT_LONG_FLAG | CLIENT_PROTOCOL_41 | CLIENT_SSL | CLIENT_TRANSACTIONS
           | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH)
_MAX_PACKET = 1 << 24
_UTF8MB4 = 45
_MARIADB_PREFIX = "5.5.5-"  # MariaDB puts this before its real version, for old clients


class MySQLWireError(Exception):
    """Not a MySQL greeting, or the connection closed."""


@dataclass(frozen=True, slots=True)
class Greeting:
    """The server's initial handshake, or its refusal (``error_code`` set)."""

    version: str | None = None
    connection_id: int | None = None
    capabilities: int = 0
    auth_plugin: str | None = None
    error_code: int | None = None
    error: str | None = None

    @property
    def offers_tls(self) -> bool:
        return bool(self.capabilities & CLIENT_SSL)

    @property
    def mariadb(self) -> bool:
        return "mariadb" in (self.version or "").lower()

    def to_dict(self) -> dict[str, Any]:
        return {"server_version": self.version, "mariadb": self.mariadb, "connection_id": self.connection_id,
                "capabilities": f"0x{self.capabilities:08x}", "client_ssl": self.offers_tls,
                "auth_plugin": self.auth_plugin}


def read_packet(sock: socket.socket) -> tuple[int, bytes]:
    """One packet: ``(sequence number, payload)``."""
    head = _exactly(sock, 4)
    length = head[0] | head[1] << 8 | head[2] << 16
    return head[3], _exactly(sock, length)


def _exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise MySQLWireError("the server closed the connection")
        data += chunk
    return bytes(data)


def _nul_string(data: bytes, pos: int) -> tuple[str, int]:
    end = data.index(b"\x00", pos)
    return data[pos:end].decode("utf-8", "replace"), end + 1


def parse_greeting(payload: bytes) -> Greeting:
    """Parse the first packet a server sends; ``MySQLWireError`` when it is not a greeting."""
    if not payload:
        raise MySQLWireError("an empty first packet")
    if payload[0] == 0xFF:
        (code,) = struct.unpack_from("<H", payload, 1)
        text = payload[3:].decode("utf-8", "replace")
        if text.startswith("#"):
            text = text[6:]  # "#" and a SQLSTATE
        return Greeting(error_code=code, error=text)
    if payload[0] != 10:
        raise MySQLWireError(f"protocol version {payload[0]} in the greeting: not a MySQL server")
    try:
        version, pos = _nul_string(payload, 1)
        (connection_id,) = struct.unpack_from("<I", payload, pos)
        pos += 4 + 8 + 1  # connection id, auth-plugin-data part 1, filler
        (capabilities,) = struct.unpack_from("<H", payload, pos)
        pos += 2
        plugin = None
        if len(payload) > pos:
            (upper,) = struct.unpack_from("<H", payload, pos + 3)  # after charset and status flags
            capabilities |= upper << 16
            data_len = payload[pos + 5]
            pos += 6 + 10  # ... auth data length, 10 reserved bytes
            if capabilities & CLIENT_SECURE_CONNECTION:
                pos += max(13, data_len - 8)
            if capabilities & CLIENT_PLUGIN_AUTH and pos < len(payload):
                plugin = payload[pos:].split(b"\x00", 1)[0].decode("ascii", "replace")
    except (ValueError, struct.error, IndexError) as exc:
        raise MySQLWireError(f"a malformed greeting: {exc}") from exc
    if version.startswith(_MARIADB_PREFIX):
        version = version[len(_MARIADB_PREFIX):]
    return Greeting(version=version, connection_id=connection_id, capabilities=capabilities,
                    auth_plugin=plugin)


def ssl_request(server_capabilities: int, sequence: int = 1) -> bytes:
    """The SSLRequest packet (header included) answering a greeting."""
    flags = _WANTED & (server_capabilities | CLIENT_SSL)
    payload = struct.pack("<IIB23x", flags, _MAX_PACKET, _UTF8MB4)
    return struct.pack("<I", len(payload))[:3] + bytes([sequence]) + payload
