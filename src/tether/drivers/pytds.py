"""python-tds (``mssql+pytds://``): pure Python, so its socket and its session are in reach.

The session reset costs no round trip: tether sets the TDS header's RESETCONNECTION bit
(0x08) on the first packet of the next request, as SqlClient does, by watching what
pytds writes to its socket (``_Wire``). python-tds's own pool sends an
``sp_reset_connection`` RPC instead (a round trip, and not every server has it). When
python-tds keeps a transaction open between requests (it does after every commit and
rollback unless autocommit is on), the bit is 0x10, RESETCONNECTIONSKIPTRAN: reset
everything but that (empty) transaction.

The same watch tells whether the transaction python-tds has open is one it began itself
right after a commit or rollback (nothing ran in it: IDLE) or one that statements ran in.

Not every server takes 0x10: Babelfish refuses it by design, answers the request that
carried it with an error (nothing of that request ran) and ends the session. Babelfish's
login says which version it plays (12.0.2000 unless its administrator changed it), and
such a server gets 0x08 with the transaction begun again in the same batch from its first
reset (``_NO_SKIP_TRAN``). Where the login did not tell, the refusal does: its answer
lacks the reset's acknowledgement (ENVCHANGE 18), which a server sends first when it
resets; tether watches for it. ``reset_refused`` tells the session so that the borrower's
statement goes again on a fresh session, once, and from then on that server gets 0x08.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from typing import TYPE_CHECKING, Any

import pytds  # type: ignore[import-untyped]  # python-tds ships no type information
from pytds import tds_base, tds_session, utils

from ..vocab import TxStatus
from . import _mssql_reset as restore
from ._base import Driver
from ._mssql_args import pytds_kwargs
from ._native_socket import peer_closed

if TYPE_CHECKING:
    from ..dsn import ConnectionSpec

_RESET, _RESET_SKIP_TRAN, _END_OF_MESSAGE = 0x08, 0x10, 0x01
_BATCH, _RPC, _TRANSACTION_MANAGER = 1, 3, 14  # the requests a reset bit may ride on
_TM_BEGIN, _TM_COMMIT, _TM_ROLLBACK = 5, 7, 8
# python-tds begins a transaction itself at connect and with every commit and rollback.
_BEGAN_BY_PYTDS = frozenset((_TRANSACTION_MANAGER, kind) for kind in (_TM_BEGIN, _TM_COMMIT, _TM_ROLLBACK))
_ENV_RESET_ACK = 18  # ENVCHANGE type: the server reset the session
_ERROR_TOKEN = 1  # python-tds's mark on a server message that came as an ERROR token
# Servers (host, port) that refused RESETCONNECTIONSKIPTRAN, or that log in as Babelfish
# does by default: they get 0x08 from then on.
_NO_SKIP_TRAN: set[tuple[str, int]] = set()
# The version in Babelfish's LOGINACK unless its product_version setting is changed:
# 12.0.2000, SQL Server 2014 RTM's. The login tells it at no cost, so the first reset need
# not be refused to learn it (a refusal ends the session: one login more). A real SQL Server
# 2014 RTM then gets 0x08 and a new transaction too, which is as correct, one request more.
_BABELFISH_LOGINACK = (12 << 24) | 2000


class _Wire:
    """python-tds's socket as its writer sees it: marks the next request for a reset and
    remembers what the last request was. Everything else goes to the real transport."""

    __slots__ = ("_inner", "_starting", "acked", "last", "reset_bits", "sent_bits")

    def __init__(self, inner: Any):
        self._inner = inner
        self.reset_bits = 0
        self.sent_bits = 0  # the reset bits the last request carried
        self.acked = False  # whether its answer acknowledged a reset
        self.last: tuple[int, int] = (0, 0)  # (packet type, transaction manager request)
        self._starting = True  # the next packet begins a message

    def sendall(self, data: Any, flags: int = 0) -> None:
        if self._starting and len(data) >= 8:
            kind = data[0]
            self.sent_bits, self.acked = 0, False
            if self.reset_bits and kind in (_BATCH, _RPC, _TRANSACTION_MANAGER):
                data = bytearray(data)
                data[1] |= self.reset_bits
                self.sent_bits, self.reset_bits = self.reset_bits, 0
            self.last = (kind, _tm_request(data) if kind == _TRANSACTION_MANAGER else 0)
        if len(data) >= 8:
            self._starting = bool(data[1] & _END_OF_MESSAGE)
        self._inner.sendall(data, flags) if flags else self._inner.sendall(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _peer_closed(fd: int) -> bool:
    sock = socket.socket(fileno=fd)
    try:
        return peer_closed(sock)
    finally:
        sock.detach()


def _tm_request(packet: Any) -> int:
    """The request type of a transaction manager message, after its ALL_HEADERS."""
    headers = int.from_bytes(bytes(packet[8:12]), "little")
    at = 8 + headers
    return int.from_bytes(bytes(packet[at : at + 2]), "little") if len(packet) >= at + 2 else 0


_ANSWERING = (tds_base.TDS_PENDING, tds_base.TDS_READING)  # an answer not read to its end
_pytds_cancel_if_pending = tds_session._TdsSession.cancel_if_pending


def _cancel_if_pending(session: Any) -> None:
    """python-tds's, on tether's connections: before its next request (or a COMMIT, or a
    cursor's close), python-tds drops the unread end of the last answer with an attention,
    and waits for the server's acknowledgement: a round trip. When the server's last packet
    of that answer came already (``fetchone()`` of a one-row result leaves only its DONE),
    the rest is read from memory instead. What the attention drops unseen (an error after
    the rows) is dropped here too; an answer still arriving gets python-tds's attention."""
    if (
        session.state in _ANSWERING
        and not session.in_cancel
        and isinstance(session._writer._transport, _Wire)
        and session._reader._status & _END_OF_MESSAGE
    ):
        with contextlib.suppress(pytds.Error):
            session.complete_rpc()
        if session.state == tds_base.TDS_IDLE:
            return
    _pytds_cancel_if_pending(session)


tds_session._TdsSession.cancel_if_pending = _cancel_if_pending


_process_env_change = tds_session._token_map[tds_base.TDS_ENVCHANGE_TOKEN]


def _env_change(session: Any) -> Any:
    """python-tds's ENVCHANGE handler, noting a reset's acknowledgement on tether's wire
    first (its type is the third byte; a reset's ENVCHANGE opens the answer, so it never
    straddles a packet)."""
    reader = session._reader
    wire = session._writer._transport
    at = reader._pos + 2
    if isinstance(wire, _Wire) and wire.sent_bits and at < reader._size and reader._buf[at] == _ENV_RESET_ACK:
        wire.acked = True
    return _process_env_change(session)


tds_session._token_map[tds_base.TDS_ENVCHANGE_TOKEN] = _env_change


class _QuietResetAck(logging.Filter):
    """python-tds logs the server's reset acknowledgement (ENVCHANGE 18) as unknown."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.msg == "unknown env type: %d, skipping" and record.args == (18,))


logging.getLogger("pytds").addFilter(_QuietResetAck())
log = logging.getLogger(__name__)

# python-tds retries a failed login itself, even with disable_connect_retry=True: it then
# sleeps out the rest of the login timeout and raises a bare TimeoutError, so a login
# refused with 40613 would spend tether's whole deadline and hide its error number.
# tether's own connect retry decides instead: while tether connects (this thread only),
# python-tds makes one attempt and raises what it got; everyone else's calls are as before.
_one_attempt = threading.local()
_pytds_backoff = utils.exponential_backoff


def _backoff(work: Any, *args: Any, **kwargs: Any) -> Any:
    """python-tds's exponential_backoff(work, ex_handler, max_time_sec, ...), but one
    attempt with the whole time while tether connects."""
    if getattr(_one_attempt, "on", False):
        return work(kwargs.get("max_time_sec", args[1] if len(args) > 1 else None))
    return _pytds_backoff(work, *args, **kwargs)


utils.exponential_backoff = _backoff


class Pytds(Driver):
    name = "pytds"
    dialect = "sqlserver"
    module = pytds

    def connect(self, spec: ConnectionSpec, *, timeout_s: float, autocommit: bool | None,
                      extra: dict[str, Any] | None = None) -> Any:
        _one_attempt.on = True
        try:
            kwargs = {**pytds_kwargs(spec, timeout_s), **(extra or {})}
            raw = pytds.connect(**kwargs, autocommit=bool(autocommit))
        finally:
            _one_attempt.on = False
        try:
            session = raw._tds_socket.main_session
            wire = session._writer._transport = _Wire(session._writer._transport)
            if raw._tds_socket.tds72_transaction and not session.autocommit:
                wire.last = (_TRANSACTION_MANAGER, _TM_BEGIN)  # python-tds's own, in connect()
            raw._tether_login_database = spec.database or raw._tds_socket.env.database
            raw._tether_server = (spec.host, spec.port)
            if raw._tds_socket.product_version == _BABELFISH_LOGINACK:
                _NO_SKIP_TRAN.add(raw._tether_server)
        except Exception:
            raw.close()
            raise
        return raw

    def socket_fd(self, raw: Any) -> int | None:
        sock = raw._tds_socket.sock
        while not isinstance(sock, socket.socket):  # TLS: pytds's EncryptedSocket wraps it
            sock = getattr(sock, "_transport", None)
            if sock is None:
                return None
        return sock.fileno()

    def tx_status(self, raw: Any) -> TxStatus:
        tds = raw._tds_socket
        if tds is None or not tds.is_connected() or tds.main_session.state == tds_base.TDS_DEAD:
            return TxStatus.BROKEN
        fd = self.socket_fd(raw)  # python-tds raises ClosedConnectionError but keeps its state
        if fd is not None and _peer_closed(fd):
            return TxStatus.BROKEN
        if not tds.tds72_transaction:
            return TxStatus.IDLE
        session = tds.main_session
        wire = session._writer._transport
        began_itself = (
            not session.autocommit
            and isinstance(wire, _Wire)
            and wire.last in _BEGAN_BY_PYTDS
        )
        return TxStatus.IDLE if began_itself else TxStatus.IN_TRANSACTION

    def ping(self, raw: Any, sql: str, *, timeout_s: float) -> bool:
        tds = raw._tds_socket
        if tds is None:
            return False
        previous = tds.sock.gettimeout()
        tds.sock.settimeout(timeout_s)
        try:
            self.execute(raw, sql)
            if not raw.autocommit:  # as _mssql_native's pings: the borrower's transaction starts clean
                raw.rollback()
            return True
        except (pytds.Error, OSError):
            self.reset_refused(raw)  # learnt from, if that is why: the pool discards it
            return False  # a timeout leaves the request unanswered: the pool discards it
        finally:
            with contextlib.suppress(OSError):
                tds.sock.settimeout(previous)

    def execute(self, raw: Any, sql: str) -> None:
        # On the session, not a cursor: a cursor would begin a transaction first when
        # autocommit is off, which a ping or a reset must not do. Nor do they count as
        # statements run in python-tds's transaction.
        session = raw._tds_socket.main_session
        wire = session._writer._transport
        last = wire.last if isinstance(wire, _Wire) else None
        session.submit_plain_query(sql)
        session.process_simple_request()
        if last is not None:
            wire.last = last

    def forget_session(self, raw: Any) -> None:
        pass  # python-tds sends statements as sp_executesql: no server-side handles to forget

    def reset(self, raw: Any, changes: tuple[str, ...]) -> bool:
        tds = raw._tds_socket
        wire = tds.main_session._writer._transport if tds is not None else None
        if not isinstance(wire, _Wire):
            return False
        todo = restore.plan(
            changes, server_reset=True, login_database=raw._tether_login_database, login_settings=None
        )
        if todo is None:
            return False
        keeps_transaction = tds.tds72_transaction and not tds.main_session.autocommit
        sql = list(todo.sql)
        if keeps_transaction and raw._tether_server in _NO_SKIP_TRAN:
            # 0x08 rolls python-tds's transaction back: begin the next one in the same batch
            # (after the isolation level is set), and send it now, not with the borrower's.
            wire.reset_bits = _RESET
            sql = [*sql, "BEGIN TRANSACTION"]
        else:
            wire.reset_bits = _RESET_SKIP_TRAN if keeps_transaction else _RESET
        if sql:
            try:
                self.execute(raw, "; ".join(sql))  # the reset rides on this batch
            except pytds.Error:
                self.reset_refused(raw)  # learnt from, if that is why: the pool discards this one
                raise
        return True

    def reset_refused(self, raw: Any) -> bool:
        tds = raw._tds_socket
        wire = tds.main_session._writer._transport if tds is not None else None
        if not isinstance(wire, _Wire) or not wire.sent_bits or wire.acked:
            return False
        # The server answered (an error of its own, not a broken link) without resetting.
        messages = tds.main_session.messages or []
        if not any(m.get("priv_msg_type") == _ERROR_TOKEN for m in messages):
            return False
        if wire.sent_bits & _RESET_SKIP_TRAN:
            _NO_SKIP_TRAN.add(raw._tether_server)
            log.info("%s:%s refused the reset flag 0x10: 0x08 and a new transaction from now on",
                     *raw._tether_server)
        return True

    def close(self, raw: Any) -> None:
        with contextlib.suppress(pytds.Error, OSError):
            raw.close()


driver = Pytds()
