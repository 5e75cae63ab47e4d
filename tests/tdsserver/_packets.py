"""TDS framing and the client messages the server has to understand (MS-TDS 2.2.3, 2.2.6).

Everything here is pure parsing/building of bytes; sockets live in ``_wire``/``_server``.
"""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

# Packet types (MS-TDS 2.2.3.1.1).
SQL_BATCH = 0x01
RPC = 0x03
REPLY = 0x04  # "tabular result": every server response
ATTENTION = 0x06
TRANSACTION_MANAGER = 0x0E
LOGIN7 = 0x10
PRELOGIN = 0x12

# Packet status bits (2.2.3.1.2).
ST_EOM = 0x01
ST_IGNORE = 0x02
ST_RESETCONNECTION = 0x08
ST_RESETCONNECTIONSKIPTRAN = 0x10

HEADER = struct.Struct(">BBHHBB")  # type, status, length, spid, packet id, window
HEADER_SIZE = HEADER.size

# PRELOGIN option tokens (2.2.6.5) and ENCRYPTION values.
PL_VERSION, PL_ENCRYPTION, PL_INSTOPT, PL_THREADID, PL_MARS = 0, 1, 2, 3, 4
PL_TERMINATOR = 0xFF
ENCRYPT_OFF, ENCRYPT_ON, ENCRYPT_NOT_SUP, ENCRYPT_REQ = 0, 1, 2, 3


class ProtocolError(Exception):
    """The client sent something this server cannot parse; the session is closed."""


def header(ptype: int, status: int, length: int, spid: int, packet_id: int) -> bytes:
    return HEADER.pack(ptype, status, length, spid & 0xFFFF, packet_id & 0xFF, 0)


# --- PRELOGIN ---------------------------------------------------------------------------


def parse_prelogin(payload: bytes) -> dict[int, bytes]:
    """Option token -> raw option data."""
    options: dict[int, bytes] = {}
    pos = 0
    while pos < len(payload) and payload[pos] != PL_TERMINATOR:
        if pos + 5 > len(payload):
            raise ProtocolError("truncated PRELOGIN option table")
        token, offset, length = struct.unpack_from(">BHH", payload, pos)
        options[token] = payload[offset : offset + length]
        pos += 5
    return options


def build_prelogin(options: list[tuple[int, bytes]]) -> bytes:
    table_size = 5 * len(options) + 1
    table = b""
    data = b""
    for token, value in options:
        table += struct.pack(">BHH", token, table_size + len(data), len(value))
        data += value
    return table + bytes([PL_TERMINATOR]) + data


# --- LOGIN7 -----------------------------------------------------------------------------


@dataclass
class Login7:
    tds_version: int
    packet_size: int
    client_pid: int
    option_flags1: int
    option_flags2: int
    type_flags: int
    option_flags3: int
    hostname: str
    username: str
    password: str
    appname: str
    servername: str
    library: str
    language: str
    database: str
    features: dict[int, bytes] = field(default_factory=dict)  # FeatureExt id -> data (TDS 7.4)


def _deobfuscate(raw: bytes) -> str:
    # The client swapped each byte's nibbles and XORed with 0xA5 (2.2.6.4); undo both.
    out = bytearray()
    for b in raw:
        b ^= 0xA5
        out.append(((b << 4) & 0xF0) | (b >> 4))
    return out.decode("utf-16-le")


def parse_login7(payload: bytes) -> Login7:
    if len(payload) < 94:
        raise ProtocolError("LOGIN7 shorter than its fixed part")
    _length, version, packet_size, _prog, pid, _conn_id = struct.unpack_from("<IIIIII", payload, 0)
    f1, f2, tflags, f3 = payload[24:28]

    def text(at: int, password: bool = False) -> str:
        offset, chars = struct.unpack_from("<HH", payload, at)
        raw = payload[offset : offset + 2 * chars]
        return _deobfuscate(raw) if password else raw.decode("utf-16-le")

    features: dict[int, bytes] = {}
    if f3 & 0x10:  # fExtension: ibExtension points at a DWORD offset of the FeatureExt block
        ext_offset, ext_len = struct.unpack_from("<HH", payload, 56)
        if ext_len >= 4 and ext_offset + 4 <= len(payload):
            pos = struct.unpack_from("<I", payload, ext_offset)[0]
            while 0 < pos < len(payload) and payload[pos] != 0xFF and pos + 5 <= len(payload):
                feature, size = struct.unpack_from("<BI", payload, pos)
                features[feature] = payload[pos + 5 : pos + 5 + size]
                pos += 5 + size
    return Login7(
        features=features,
        tds_version=version,
        packet_size=packet_size,
        client_pid=pid,
        option_flags1=f1,
        option_flags2=f2,
        type_flags=tflags,
        option_flags3=f3,
        hostname=text(36),
        username=text(40),
        password=text(44, password=True),
        appname=text(48),
        servername=text(52),
        library=text(60),
        language=text(64),
        database=text(68),
    )


# --- ALL_HEADERS (2.2.5.3) --------------------------------------------------------------


def split_all_headers(payload: bytes) -> tuple[int, bytes]:
    """(transaction descriptor or 0, the rest). Requests from TDS 7.2 on start with ALL_HEADERS."""
    if len(payload) < 4:
        return 0, payload
    total = struct.unpack_from("<I", payload, 0)[0]
    if total < 4 or total > len(payload):
        return 0, payload  # no ALL_HEADERS (not sent by a 7.2+ client; be lenient)
    descriptor = 0
    pos = 4
    while pos + 6 <= total:
        hlen, htype = struct.unpack_from("<IH", payload, pos)
        if htype == 2 and hlen >= 18:  # transaction descriptor header
            descriptor = struct.unpack_from("<Q", payload, pos + 6)[0]
        if hlen < 6:
            break
        pos += hlen
    return descriptor, payload[total:]


# --- RPC requests (2.2.6.6) -------------------------------------------------------------

PROC_IDS = {
    1: "sp_cursor",
    2: "sp_cursoropen",
    3: "sp_cursorprepare",
    4: "sp_cursorexecute",
    5: "sp_cursorprepexec",
    6: "sp_cursorunprepare",
    7: "sp_cursorfetch",
    8: "sp_cursoroption",
    9: "sp_cursorclose",
    10: "sp_executesql",
    11: "sp_prepare",
    12: "sp_execute",
    13: "sp_prepexec",
    14: "sp_prepexecrpc",
    15: "sp_unprepare",
}

Value = int | float | str | bytes | bool | None


@dataclass
class Param:
    name: str  # without the leading '@', lower case; '' when positional
    output: bool
    type_id: int
    value: Value


@dataclass
class RpcCall:
    proc: str  # lower case name (ProcIDs mapped to their names)
    params: list[Param] = field(default_factory=list)


class _Reader:
    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ProtocolError("truncated RPC request")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack("<H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def u64(self) -> int:
        return int(struct.unpack("<Q", self.take(8))[0])

    def ucs2(self, chars: int) -> str:
        return self.take(2 * chars).decode("utf-16-le")

    def done(self) -> bool:
        return self.pos >= len(self.data)


# TYPE_INFO classes (2.2.5.4): fixed-length types and their sizes.
_FIXED = {0x1F: 0, 0x30: 1, 0x32: 1, 0x34: 2, 0x38: 4, 0x3A: 4, 0x3B: 4, 0x3C: 8, 0x3D: 8, 0x3E: 8,
          0x7A: 4, 0x7F: 8}
_BYTELEN = {0x24, 0x26, 0x37, 0x3F, 0x68, 0x6A, 0x6C, 0x6D, 0x6E, 0x6F, 0x2F, 0x27, 0x2D, 0x25}
_SCALED = {0x29, 0x2A, 0x2B}  # TIMEN, DATETIME2N, DATETIMEOFFSETN: TYPE_INFO is a scale byte
_USHORTLEN = {0xA5, 0xA7, 0xAD, 0xAF, 0xE7, 0xEF}
_CHAR_TYPES = {0xA7, 0xAF, 0xE7, 0xEF, 0x2F, 0x27, 0x23, 0x63}
_UNICODE = {0xE7, 0xEF, 0x63}
_LONGLEN = {0x22, 0x23, 0x63}  # IMAGE, TEXT, NTEXT


def _plp(r: _Reader) -> bytes | None:
    total = r.u64()
    if total == 0xFFFFFFFFFFFFFFFF:
        return None
    chunks: list[bytes] = []
    while True:
        size = r.u32()
        if size == 0:
            return b"".join(chunks)
        chunks.append(r.take(size))


def _decode(type_id: int, raw: bytes, scale: int, unicode: bool) -> Value:
    """Turn a parameter's bytes into the engine's few value kinds (int, float, str, bytes, bool)."""
    if type_id in (0x30, 0x34, 0x38, 0x7F, 0x26):
        return int.from_bytes(raw, "little", signed=len(raw) > 1)
    if type_id in (0x32, 0x68):
        return raw[0] != 0
    if type_id in (0x3B, 0x3E, 0x6D):
        return float(struct.unpack("<f" if len(raw) == 4 else "<d", raw)[0])
    if type_id in (0x37, 0x3F, 0x6A, 0x6C):
        magnitude = int.from_bytes(raw[1:], "little")
        number = Decimal(magnitude if raw[0] else -magnitude).scaleb(-scale)
        return int(number) if scale == 0 else float(number)
    if type_id in (0x3C, 0x7A, 0x6E):  # money: ten-thousandths, high dword first for 8 bytes
        if len(raw) == 8:
            hi, lo = struct.unpack("<iI", raw)
            return int((hi << 32) | lo) / 10000
        return int(struct.unpack("<i", raw)[0]) / 10000
    if type_id in _CHAR_TYPES:
        return raw.decode("utf-16-le") if unicode else raw.decode("cp1252")
    if type_id == 0x24:
        return str(uuid.UUID(bytes_le=raw)).upper()
    if type_id in (0x3D, 0x3A, 0x6F):  # DATETIME / SMALLDATETIME: days since 1900, then time
        if len(raw) == 8:
            days, ticks = struct.unpack("<iI", raw)
            when = dt.datetime(1900, 1, 1) + dt.timedelta(days=days, milliseconds=ticks * 10 / 3)
        else:
            days, minutes = struct.unpack("<HH", raw)
            when = dt.datetime(1900, 1, 1) + dt.timedelta(days=days, minutes=minutes)
        return when.isoformat(sep=" ")
    if type_id == 0x28:
        return (dt.date(1, 1, 1) + dt.timedelta(days=int.from_bytes(raw, "little"))).isoformat()
    if type_id in _SCALED:
        tlen = {0: 3, 1: 3, 2: 3, 3: 4, 4: 4, 5: 5, 6: 5, 7: 5}[scale]
        seconds = int.from_bytes(raw[:tlen], "little") / 10**scale
        t = (dt.datetime(1, 1, 1) + dt.timedelta(seconds=seconds)).time()
        if type_id == 0x29:
            return t.isoformat()
        day = dt.date(1, 1, 1) + dt.timedelta(days=int.from_bytes(raw[tlen : tlen + 3], "little"))
        return f"{day.isoformat()} {t.isoformat()}"
    return bytes(raw)


def _param_value(r: _Reader) -> tuple[int, Value]:
    type_id = r.u8()
    scale = 0
    if type_id in _FIXED:
        size = _FIXED[type_id]
        return type_id, (None if size == 0 else _decode(type_id, r.take(size), 0, False))
    if type_id in _BYTELEN:
        r.u8()  # max length
        if type_id in (0x37, 0x3F, 0x6A, 0x6C):
            r.u8()  # precision
            scale = r.u8()
        if type_id in (0x2F, 0x27):
            r.take(5)  # collation (old-style char types)
        size = r.u8()
        return type_id, (None if size == 0 else _decode(type_id, r.take(size), scale, False))
    if type_id == 0x28:  # DATEN
        size = r.u8()
        return type_id, (None if size == 0 else _decode(type_id, r.take(size), 0, False))
    if type_id in _SCALED:
        scale = r.u8()
        size = r.u8()
        return type_id, (None if size == 0 else _decode(type_id, r.take(size), scale, False))
    if type_id in _USHORTLEN:
        max_len = r.u16()
        if type_id in _CHAR_TYPES:
            r.take(5)  # collation
        unicode = type_id in _UNICODE
        if max_len == 0xFFFF:  # (n)varchar(max) / varbinary(max): partially length-prefixed
            data = _plp(r)
            return type_id, (None if data is None else _decode(type_id, data, 0, unicode))
        size = r.u16()
        return type_id, (None if size == 0xFFFF else _decode(type_id, r.take(size), 0, unicode))
    if type_id in _LONGLEN:
        r.u32()  # max length
        if type_id in _CHAR_TYPES:
            r.take(5)
        size = r.u32()
        if size == 0xFFFFFFFF:
            return type_id, None
        return type_id, _decode(type_id, r.take(size), 0, type_id in _UNICODE)
    if type_id == 0xF1:  # XML: schema-present byte, then PLP
        if r.u8():
            r.take(r.u8() * 2)
            r.take(r.u8() * 2)
            r.take(r.u16() * 2)
        data = _plp(r)
        return type_id, (None if data is None else str(data.decode("utf-16-le")))
    raise ProtocolError(f"unsupported RPC parameter type 0x{type_id:02x}")


def parse_rpc(body: bytes) -> list[RpcCall]:
    """One or more RPC calls (separated by a batch flag byte in TDS 7.2+)."""
    r = _Reader(body)
    calls: list[RpcCall] = []
    while not r.done():
        name_len = r.u16()
        if name_len == 0xFFFF:
            proc = PROC_IDS.get(r.u16(), "?")
        else:  # "[sys].sp_datatype_info_100" -> "sp_datatype_info_100"
            proc = r.ucs2(name_len).split(".")[-1].strip("[]").lower()
        r.u16()  # option flags (WithRecomp, NoMetaData, ReuseMetaData)
        call = RpcCall(proc=proc)
        while not r.done() and r.data[r.pos] not in (0x80, 0xFF, 0xFE):
            name = r.ucs2(r.u8())
            status = r.u8()
            type_id, value = _param_value(r)
            call.params.append(Param(name.lstrip("@").lower(), bool(status & 0x01), type_id, value))
        calls.append(call)
        if not r.done():
            r.u8()  # batch separator
    return calls


# --- Transaction manager requests (2.2.6.9) ---------------------------------------------

TM_BEGIN_XACT = 5
TM_COMMIT_XACT = 7
TM_ROLLBACK_XACT = 8
TM_SAVE_XACT = 9


@dataclass
class TmRequest:
    kind: int
    isolation: int = 0  # TM_BEGIN_XACT: 0 = unchanged, 1..5 = READ UNCOMMITTED..SNAPSHOT
    begin_after: bool = False  # commit/rollback with fBeginXact: start a new transaction
    new_isolation: int = 0


def parse_tm(body: bytes) -> TmRequest:
    r = _Reader(body)
    kind = r.u16()
    req = TmRequest(kind)
    if kind == TM_BEGIN_XACT:
        req.isolation = r.u8()
        r.ucs2(r.u8())  # transaction name
    elif kind in (TM_COMMIT_XACT, TM_ROLLBACK_XACT):
        r.ucs2(r.u8())
        flags = r.u8()
        if flags & 0x01:
            req.begin_after = True
            req.new_isolation = r.u8()
    return req
