"""Response tokens (MS-TDS 2.2.7) and the few column types the engine returns."""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass

from ._packets import Value

TDS74 = 0x74000004
# SQL_Latin1_General_CP1_CI_AS: LCID 0x0409 with the usual compare flags, sort id 52.
COLLATION = bytes([0x09, 0x04, 0xD0, 0x00, 0x34])

# DONE status bits (2.2.7.6).
DONE_FINAL = 0x00
DONE_MORE = 0x01
DONE_ERROR = 0x02
DONE_INXACT = 0x04
DONE_COUNT = 0x10
DONE_ATTN = 0x20
DONE_SRVERROR = 0x100

# ENVCHANGE types (2.2.7.9).
ENV_DATABASE = 1
ENV_LANGUAGE = 2
ENV_PACKETSIZE = 4
ENV_COLLATION = 7
ENV_BEGIN_TRAN = 8
ENV_COMMIT_TRAN = 9
ENV_ROLLBACK_TRAN = 10
ENV_RESET_ACK = 18
ENV_ROUTING = 20


def b_varchar(text: str) -> bytes:
    raw = text.encode("utf-16-le")
    return bytes([len(raw) // 2]) + raw


def us_varchar(text: str) -> bytes:
    raw = text.encode("utf-16-le")
    return struct.pack("<H", len(raw) // 2) + raw


def loginack(prog_name: str = "Microsoft SQL Server", version: tuple[int, int, int] = (16, 0, 4135)) -> bytes:
    body = bytes([1]) + struct.pack(">I", TDS74) + b_varchar(prog_name)
    body += bytes([version[0], version[1], version[2] >> 8, version[2] & 0xFF])
    return bytes([0xAD]) + struct.pack("<H", len(body)) + body


def _envchange(env_type: int, new: bytes, old: bytes) -> bytes:
    body = bytes([env_type]) + new + old
    return bytes([0xE3]) + struct.pack("<H", len(body)) + body


def env_text(env_type: int, new: str, old: str) -> bytes:
    return _envchange(env_type, b_varchar(new), b_varchar(old))


def env_collation() -> bytes:
    return _envchange(ENV_COLLATION, bytes([len(COLLATION)]) + COLLATION, b"\x00")


def env_begin_tran(descriptor: int) -> bytes:
    return _envchange(ENV_BEGIN_TRAN, b"\x08" + struct.pack("<Q", descriptor), b"\x00")


def env_end_tran(env_type: int, descriptor: int) -> bytes:
    return _envchange(env_type, b"\x00", b"\x08" + struct.pack("<Q", descriptor))


def env_reset_ack() -> bytes:
    return _envchange(ENV_RESET_ACK, b"\x00", b"\x00")


def env_routing(host: str, port: int) -> bytes:
    # Routing data: protocol 0 (TCP), port, server name as US_VARCHAR; old value is empty.
    value = bytes([0]) + struct.pack("<H", port) + us_varchar(host)
    return _envchange(ENV_ROUTING, struct.pack("<H", len(value)) + value, b"\x00\x00")


# DONE CurCmd values SQL Server uses; ODBC drivers report a row count only for DML ones.
CMD_SELECT, CMD_INSERT, CMD_DELETE, CMD_UPDATE = 0xC1, 0xC3, 0xC4, 0xC5


def done(status: int, rowcount: int = 0, curcmd: int = 0, token: int = 0xFD) -> bytes:
    return struct.pack("<BHHQ", token, status, curcmd, rowcount)


def message(number: int, state: int, severity: int, text: str, server: str, proc: str = "",
            line: int = 1) -> bytes:
    """ERROR (class > 10) or INFO token."""
    token = 0xAA if severity > 10 else 0xAB
    body = struct.pack("<iBB", number, state, severity) + us_varchar(text)
    body += b_varchar(server) + b_varchar(proc) + struct.pack("<i", line)
    return bytes([token]) + struct.pack("<H", len(body)) + body


def returnstatus(value: int) -> bytes:
    return b"\x79" + struct.pack("<i", value)


# --- columns ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SqlType:
    """A column type the server can send: int/bigint/smallint/tinyint/bit/float/nvarchar/varbinary,
    and datetime2 (SYSDATETIME())."""

    kind: str
    size: int = 0  # characters for nvarchar, bytes for varbinary; MAX (-1) for (MAX)

    @property
    def is_max(self) -> bool:
        """nvarchar(max)/varbinary(max), or too long for the plain kind: sent as PLP."""
        limit = 8000 if self.kind == "varbinary" else 4000
        return self.kind in ("nvarchar", "varbinary") and (self.size < 0 or self.size > limit)

    def type_info(self) -> bytes:
        if self.kind in INT_SIZES:
            return bytes([0x26, INT_SIZES[self.kind]])
        if self.kind == "bit":
            return b"\x68\x01"
        if self.kind == "float":
            return b"\x6d\x08"
        if self.kind == "datetime2":
            return b"\x2a\x07"  # DATETIME2N, scale 7
        if self.kind == "varbinary":
            return b"\xa5" + struct.pack("<H", 0xFFFF if self.is_max else max(self.size, 1))
        return b"\xe7" + struct.pack("<H", 0xFFFF if self.is_max else 2 * max(self.size, 1)) + COLLATION

    def encode(self, value: Value) -> bytes:
        if self.kind in INT_SIZES or self.kind in ("bit", "float"):
            if value is None:
                return b"\x00"
            if self.kind == "float":
                return b"\x08" + struct.pack("<d", float(value))
            size = INT_SIZES.get(self.kind, 1)
            return bytes([size]) + int(value).to_bytes(size, "little", signed=self.kind != "tinyint")
        if self.kind == "datetime2":
            return b"\x00" if value is None else datetime2(value)
        if value is None:
            return b"\xff" * (8 if self.is_max else 2)
        if self.kind == "varbinary":
            raw = value if isinstance(value, bytes) else str(value).encode()
        else:
            raw = to_text(value).encode("utf-16-le")
        if self.is_max:  # PLP: total length, one chunk, the zero-length terminator chunk
            chunk = struct.pack("<I", len(raw)) + raw if raw else b""
            return struct.pack("<Q", len(raw)) + chunk + b"\x00\x00\x00\x00"
        return struct.pack("<H", len(raw)) + raw


def datetime2(value: Value) -> bytes:
    """A datetime2(7) value (MS-TDS 2.2.5.5.1.8): the time in 100 ns units since midnight
    (5 bytes), then days since 0001-01-01 (3 bytes)."""
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(to_text(value))
    midnight = when.replace(hour=0, minute=0, second=0, microsecond=0)
    ticks = (when - midnight) // dt.timedelta(microseconds=1) * 10
    days = (when.date() - dt.date(1, 1, 1)).days
    return b"\x08" + ticks.to_bytes(5, "little") + days.to_bytes(3, "little")


INT_SIZES = {"tinyint": 1, "smallint": 2, "int": 4, "bigint": 8}
MAX = -1


def to_text(value: Value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def type_of(value: Value) -> SqlType:
    """The type SQL Server gives a literal or a computed value."""
    if isinstance(value, bool):
        return SqlType("bit")
    if isinstance(value, int):
        return SqlType("int" if -(2**31) <= value < 2**31 else "bigint")
    if isinstance(value, float):
        return SqlType("float")
    if isinstance(value, bytes):
        return SqlType("varbinary", max(len(value), 1))
    if isinstance(value, str):
        return SqlType("nvarchar", max(len(value), 1))
    return SqlType("int")  # SELECT NULL is an int column


def colmetadata(columns: list[tuple[str, SqlType]]) -> bytes:
    out = bytearray(b"\x81" + struct.pack("<H", len(columns)))
    for name, sql_type in columns:
        out += struct.pack("<IH", 0, 0x0001 | 0x0008)  # user type; nullable, updatable unknown
        out += sql_type.type_info() + b_varchar(name)
    return bytes(out)


def row(types: list[SqlType], values: list[Value]) -> bytes:
    return b"\xd1" + b"".join(t.encode(v) for t, v in zip(types, values, strict=True))


def returnvalue(ordinal: int, name: str, sql_type: SqlType, value: Value) -> bytes:
    body = struct.pack("<H", ordinal) + b_varchar(name) + b"\x01" + struct.pack("<IH", 0, 0x0001)
    return b"\xac" + body + sql_type.type_info() + sql_type.encode(value)
