"""Round trips counted by the TDS protocol (SQL Server): ``fix_turns``' proxy with a TDS reader.

A turn is what the client sends before the server answers; each message in it is named by
its packet type:

- ``batch:<text>`` a SQLBatch;
- ``rpc:<proc>`` or ``rpc:<proc>:<text>`` an RPC (procedures sent by id are named as SQL
  Server names them: ``sp_executesql``, ``sp_prepexec``...; the text is the first parameter's
  when it is a string: sp_executesql's statement);
- ``tm:<request>`` a TransactionManager request (``BEGIN``, ``COMMIT``, ``ROLLBACK``...,
  ``COMMIT+BEGIN`` / ``ROLLBACK+BEGIN`` when it begins the next transaction too);
- ``prelogin``, ``login``, ``attention``, ``tls`` (a TLS record, during a login's encryption).

A reset flag on a request's first packet is a suffix: ``|reset`` (RESETCONNECTION, 0x08) or
``|reset-skiptran`` (RESETCONNECTIONSKIPTRAN, 0x10). ``counting_tds(server)`` gives a proxy in
front of a :class:`tdsserver.TdsServer` and the (host, port) through it; ``sqlserver_bench``
a pool and the raw driver through it (``fix_turns_borrow.Bench``), for one of :data:`VARIANTS`.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from types import SimpleNamespace

import tether
from fix_tds import DRIVERS, VARIANTS, sqlserver_url  # noqa: F401  (VARIANTS: for the tests)
from fix_turns import TurnCounter, Turns
from fix_turns_borrow import Bench
from tdsserver import TdsServer

_KINDS = {1: "batch", 3: "rpc", 6: "attention", 14: "tm", 16: "login", 17: "sspi", 18: "prelogin"}
_EOM, _RESET, _RESET_SKIP_TRAN = 0x01, 0x08, 0x10
_TLS_RECORDS = (20, 21, 22, 23)  # change_cipher_spec, alert, handshake, application_data
# RPC procedures sent by number (MS-TDS 2.2.6.6).
_PROCS = {1: "sp_cursor", 2: "sp_cursoropen", 3: "sp_cursorprepare", 4: "sp_cursorexecute",
          5: "sp_cursorprepexec", 6: "sp_cursorunprepare", 7: "sp_cursorfetch", 8: "sp_cursoroption",
          9: "sp_cursorclose", 10: "sp_executesql", 11: "sp_prepare", 12: "sp_execute",
          13: "sp_prepexec", 14: "sp_prepexecrpc", 15: "sp_unprepare"}  # fmt: skip
_TM = {0: "GET_DTC_ADDRESS", 1: "PROPAGATE", 5: "BEGIN", 6: "PROMOTE", 7: "COMMIT", 8: "ROLLBACK",
       9: "SAVE"}  # fmt: skip
_NVARCHAR, _NTEXT, _NCHAR = 0xE7, 0x63, 0xEF


class TdsConversation(Turns):
    """One TDS client connection: messages are packets up to the one marked end-of-message."""

    def __init__(self) -> None:
        super().__init__()
        self._kind = 0
        self._bits = 0
        self._payload = b""

    def _next(self) -> str | None:
        while True:
            buf = self._buffer
            if len(buf) >= 5 and buf[0] in _TLS_RECORDS and buf[1] == 3:
                (length,) = struct.unpack("!H", buf[3:5])
                if len(buf) < 5 + length:
                    return None
                self._buffer = buf[5 + length :]
                return "tls"
            if len(buf) < 8:
                return None
            kind, status, length = buf[0], buf[1], struct.unpack("!H", buf[2:4])[0]
            if len(buf) < length:
                return None
            self._buffer = buf[length:]
            if not self._payload and not self._kind:
                self._kind, self._bits = kind, status & (_RESET | _RESET_SKIP_TRAN)
            self._payload += buf[8:length]
            if status & _EOM:
                name = describe(self._kind, self._payload)
                if self._bits:
                    name += "|reset-skiptran" if self._bits & _RESET_SKIP_TRAN else "|reset"
                self._kind, self._bits, self._payload = 0, 0, b""
                return name


def describe(kind: int, payload: bytes) -> str:
    """A request's name: its kind, and what it asks (see the module's docstring)."""
    label = _KINDS.get(kind, f"type{kind}")
    if kind not in (1, 3, 14):
        return label
    try:
        at = struct.unpack("<I", payload[:4])[0]  # ALL_HEADERS' total length
        if kind == 1:
            return f"batch:{payload[at:].decode('utf-16-le', 'replace')}"
        if kind == 14:
            return f"tm:{_transaction(payload, at)}"
        return f"rpc:{_rpc(payload, at)}"
    except (struct.error, IndexError, UnicodeDecodeError):
        return label


def _transaction(payload: bytes, at: int) -> str:
    (request,) = struct.unpack("<H", payload[at : at + 2])
    name = _TM.get(request, str(request))
    if request in (7, 8):  # B_VARCHAR transaction name, then fBeginXact
        begins = payload[at + 3 + 2 * payload[at + 2]] if len(payload) > at + 3 + 2 * payload[at + 2] else 0
        if begins:
            name += "+BEGIN"
    return name


def _rpc(payload: bytes, at: int) -> str:
    (size,) = struct.unpack("<H", payload[at : at + 2])
    if size == 0xFFFF:
        (proc_id,) = struct.unpack("<H", payload[at + 2 : at + 4])
        proc, at = _PROCS.get(proc_id, f"proc{proc_id}"), at + 4
    else:
        proc, at = payload[at + 2 : at + 2 + 2 * size].decode("utf-16-le"), at + 2 + 2 * size
    at += 2  # OptionFlags
    text = _first_string(payload, at)
    return proc if text is None else f"{proc}:{text}"


def _first_string(payload: bytes, at: int) -> str | None:
    """The first parameter's value when it is a Unicode string (sp_executesql's statement)."""
    at += 1 + 2 * payload[at]  # B_VARCHAR parameter name
    at += 1  # status flags
    kind = payload[at]
    if kind == _NTEXT:
        return None
    if kind not in (_NVARCHAR, _NCHAR):
        return None
    (max_length,) = struct.unpack("<H", payload[at + 1 : at + 3])
    at += 3 + 5  # max length, collation
    if max_length != 0xFFFF:
        (length,) = struct.unpack("<H", payload[at : at + 2])
        return None if length == 0xFFFF else payload[at + 2 : at + 2 + length].decode("utf-16-le")
    at += 8  # PLP: the total length, then chunks up to a zero-length terminator
    chunks = b""
    while True:
        (length,) = struct.unpack("<I", payload[at : at + 4])
        if length == 0:
            return chunks.decode("utf-16-le")
        chunks += payload[at + 4 : at + 4 + length]
        at += 4 + length


@contextlib.contextmanager
def counting_tds(server: TdsServer) -> Iterator[tuple[TurnCounter, tuple[str, int]]]:
    """A turn-counting proxy in front of ``server``, and its (host, port)."""
    counter = TurnCounter((server.host, server.port), TdsConversation)
    try:
        yield counter, ("127.0.0.1", counter.port)
    finally:
        counter.close()


def requests(turns: list[list[str]]) -> list[list[str]]:
    """The turns with the login's messages left out (those a test of a borrow never sees)."""
    login = ("prelogin", "login", "tls", "sspi")
    kept = [[m for m in turn if m not in login] for turn in turns]
    return [turn for turn in kept if turn]


def sqlserver_bench(counter: TurnCounter, address: tuple[str, int], variant: str, *,
                    autocommit: bool) -> Bench:
    """A pool of one connection and the raw driver, through ``counter`` at ``address``.
    mssql-python must have its own pooling off (``mssql_python.pooling(enabled=False)``)."""
    pool = tether.Pool(sqlserver_url(variant, *address), autocommit=autocommit, min_size=1, max_size=1,
                       timeout=10)  # fmt: skip
    try:
        pool.wait(10)
        raw = DRIVERS[variant](SimpleNamespace(host=address[0], port=address[1]), autocommit=autocommit)
    except BaseException:
        pool.close()
        raise
    keep = requests if variant not in ATTENTION_BY_GC else _requests_but_attention
    return Bench(counter, pool, raw, autocommit=autocommit, keep=keep)


# FreeTDS sends its attention when pyodbc frees a statement, which the garbage collector
# times: its attentions are left out of the counts.
ATTENTION_BY_GC = ("pyodbc-freetds",)


def _requests_but_attention(turns: list[list[str]]) -> list[list[str]]:
    return [turn for turn in requests(turns) if turn != ["attention"]]
