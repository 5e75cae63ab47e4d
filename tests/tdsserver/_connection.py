"""One client connection: PRELOGIN, optional TLS, LOGIN7, then requests until it closes."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from typing import TYPE_CHECKING

from . import _packets as pk
from . import _tokens as tk
from ._engine import fault_error, run_batch, run_rpc, run_tm
from ._model import SessionInfo
from ._personality import LOCK_TIMEOUT_MESSAGE
from ._recovery import FEATURE_SESSION_RECOVERY, feature_ext_ack, parse_recovery, session_state
from ._session import Attention, Reply, Session, SessionGone, SqlError
from ._wire import Closed, Wire

if TYPE_CHECKING:
    from ._server import TdsServer

POLL = 0.02  # how often a waiting request looks for an attention, a kill or a stop


class Connection:
    """Runs in its own thread; the server reads its counters and state under its lock."""

    def __init__(self, server: TdsServer, sock: socket.socket, spid: int, client_port: int) -> None:
        self.server = server
        self.sock = sock
        self.spid = spid
        self.client_port = client_port
        self.wire = Wire(sock, lambda incoming: server._count_packet(self, incoming))
        self.session: Session | None = None
        self.packet_size = 4096
        self.busy = False
        self.closing = False
        self.login_encrypted = False
        self.close_after_answer = False
        self.recovery = False  # session recovery negotiated (TdsServer(session_recovery=True))
        self.recovered = False  # this login restored a broken connection's session
        self._unrecoverable = False  # what the last SESSIONSTATE told the client
        self._state_seqno = 0
        self.killed = threading.Event()
        self.requests = self.packets_in = self.packets_out = self.resets = 0

    @property
    def encrypted(self) -> bool:
        return self.wire.encrypted

    def info(self) -> SessionInfo:
        s = self.session
        assert s is not None
        return SessionInfo(
            spid=self.spid, client_port=self.client_port, user=s.user, database=s.database, app=s.app,
            isolation_level=s.isolation, tran_count=s.trancount, transaction_descriptor=s.descriptor,
            temp_tables=tuple(t.name for t in s.temp_tables.values()),
            applocks=tuple(resource for resource, _owner in s.applocks), context=tuple(s.context.items()),
            busy=self.busy, closing=self.closing, recovered=self.recovered, encrypted=self.encrypted,
            login_encrypted=self.login_encrypted,
            requests=self.requests, packets_in=self.packets_in, packets_out=self.packets_out,
            resets=self.resets)

    def shut(self) -> None:
        """Wake and end the connection's thread: the peer sees the socket close, no error token."""
        self.closing = True
        self.killed.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    # --- Host protocol for the engine --------------------------------------------------------

    def wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            if self.killed.is_set() or self.server._stop.is_set():
                raise SessionGone()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if self.wire.readable(min(POLL, left)):
                if self.killed.is_set():
                    raise SessionGone()
                ptype, _status, _payload = self.wire.read_message()
                if ptype == pk.ATTENTION:
                    raise Attention()
                raise pk.ProtocolError(f"request type 0x{ptype:02x} while busy")

    def kill_other(self, spid: int) -> bool:
        return self.server.kill(spid)

    def all_sessions(self) -> list[Session]:
        return self.server._live_sessions()

    # --- the connection's thread -------------------------------------------------------------

    def run(self) -> None:
        try:
            if self._login():
                while not self.killed.is_set():
                    self._serve_one()
        except (Closed, SessionGone, pk.ProtocolError, OSError, struct.error):
            pass
        finally:
            self.closing = True
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()
            if self.session is not None:
                # As SQL Server does when a session ends (before it leaves sessions()): roll back
                # its open transaction and drop the global temp tables it created.
                with self.server.catalog.lock:
                    self.session.end()
            self.server._forget(self)

    def _send(self, payload: bytes) -> None:
        self.wire.send_message(pk.REPLY, payload, self.packet_size, self.spid)

    def _login(self) -> bool:
        srv = self.server
        strict = self.wire.first_byte() == 0x16  # a TLS ClientHello: TDS 8.0
        if strict:
            if srv._strict_context is None:
                raise pk.ProtocolError("TDS 8.0 (TLS first) without tls= configured")
            self.wire.tls_accept_strict(srv._strict_context)
            self.login_encrypted = True
        ptype, _status, payload = self.wire.read_message()
        if ptype != pk.PRELOGIN:
            raise pk.ProtocolError("expected PRELOGIN")
        options = pk.parse_prelogin(payload)
        client_enc = options.get(pk.PL_ENCRYPTION, bytes([pk.ENCRYPT_OFF]))[:1] or b"\x00"
        srv._record(self, "prelogin", f"encryption={client_enc[0]}" + (" strict" if strict else ""))
        encryption = pk.ENCRYPT_NOT_SUP
        if strict:
            encryption = pk.ENCRYPT_REQ  # already inside TLS: no second handshake
        elif srv._tls_context is not None and client_enc[0] != pk.ENCRYPT_NOT_SUP:
            encryption = pk.ENCRYPT_OFF if client_enc[0] == pk.ENCRYPT_OFF else pk.ENCRYPT_ON
        self._send(pk.build_prelogin([
            (pk.PL_VERSION, bytes(srv.personality.product_version[:2])
             + struct.pack(">HH", srv.personality.product_version[2], 0)),
            (pk.PL_ENCRYPTION, bytes([encryption])),
            (pk.PL_INSTOPT, b"\x00"),
            (pk.PL_THREADID, b""),
            (pk.PL_MARS, b"\x00"),
        ]))
        if encryption in (pk.ENCRYPT_OFF, pk.ENCRYPT_ON):
            assert srv._tls_context is not None
            self.wire.tls_handshake(srv._tls_context, self.packet_size)
            self.login_encrypted = True
        ptype, _status, payload = self.wire.read_message()
        if ptype != pk.LOGIN7:
            raise pk.ProtocolError(f"expected LOGIN7, got 0x{ptype:02x}")
        if encryption == pk.ENCRYPT_OFF:
            self.wire.drop_tls()
        login = pk.parse_login7(payload)
        srv._record(self, "login", f"user={login.username} db={login.database} app={login.appname} "
                    f"lib={login.library} packet={login.packet_size} flags={login.option_flags1:02x}"
                    f"/{login.option_flags2:02x}/{login.type_flags:02x}/{login.option_flags3:02x}"
                    f" tds={login.tds_version:08x} features={sorted(login.features)}")
        self.packet_size = min(max(login.packet_size or 4096, 512), 32767)
        database = srv.catalog.database(login.database or "master")
        reply = Reply(srv.server_name)

        with srv._lock:
            faults = srv._faults
            rejected: int | None = None
            if faults.reject[0] > 0:
                faults.reject[0] -= 1
                rejected = faults.reject[1]
            elif srv.users.get(login.username) != login.password:
                rejected = 18456
            elif database is None:
                rejected = 4060
            route = None
            if rejected is None and faults.route is not None:
                route = faults.route
                if faults.route_left is not None:
                    faults.route_left -= 1
                    if faults.route_left <= 0:
                        faults.route = None
            if rejected is not None:
                srv._stats.rejected_logins += 1
            elif route is not None:
                srv._stats.routed += 1
            else:
                srv._stats.logins += 1

        if rejected is not None:
            reply.error(fault_error(rejected, None, user=login.username, db=login.database or "master",
                                    server=srv.server_name, spid=self.spid))
            reply.done(tk.DONE_ERROR)
            self._send(reply.render())
            return False
        assert database is not None
        session = Session(self, srv.catalog, login.username, database, login.appname, login.hostname,
                          srv.personality)
        self.recovery = srv.session_recovery and FEATURE_SESSION_RECOVERY in login.features
        restored = None
        if self.recovery:
            restored = parse_recovery(login.features.get(FEATURE_SESSION_RECOVERY, b""))
        if restored is not None:
            self.recovered = True
            with srv._lock:
                srv._stats.recovered_logins += 1
            session.database = srv.catalog.database(restored.database) or database
            session.opts.language = restored.language or session.opts.language
        reply.add(tk.env_text(tk.ENV_DATABASE, session.database, "master"))
        reply.info(5701, f"Changed database context to '{session.database}'.", state=2)
        reply.add(tk.env_collation())
        reply.add(tk.env_text(tk.ENV_LANGUAGE, session.opts.language, ""))
        reply.info(5703, f"Changed language setting to {session.opts.language}.")
        reply.add(tk.loginack(version=self.server.personality.product_version))
        if self.recovery:
            reply.add(feature_ext_ack())
        reply.add(tk.env_text(tk.ENV_PACKETSIZE, str(self.packet_size), str(self.packet_size)))
        if route is not None:
            reply.add(tk.env_routing(*route))
            reply.done()
            self._send(reply.render())
            return False  # Azure's gateway closes the connection after redirecting
        reply.done()
        session.login_done()
        self.session = session
        self._send(reply.render())
        return True

    def _serve_one(self) -> None:
        srv = self.server
        ptype, status, payload = self.wire.read_message()
        session = self.session
        assert session is not None
        if ptype == pk.ATTENTION:
            # A cancel that arrived after the answer (or between requests): acknowledge it.
            with srv._lock:
                srv._stats.attentions += 1
            srv._record(self, "attention", "", status)
            self._send(tk.done(tk.DONE_ATTN, curcmd=0))
            return
        if ptype not in (pk.SQL_BATCH, pk.RPC, pk.TRANSACTION_MANAGER):
            raise pk.ProtocolError(f"unexpected packet type 0x{ptype:02x}")
        with srv._lock:
            if self.closing:
                raise SessionGone()
            self.busy = True
            self.requests += 1
            srv._stats.requests += 1
        self.close_after_answer = False
        try:
            answer = self._request(session, ptype, status, payload)
        finally:
            with srv._lock:
                self.busy = False  # before sending: once the client has its answer, we are idle
        self._send(answer)
        if self.close_after_answer:
            raise SessionGone()

    def _request(self, session: Session, ptype: int, status: int, payload: bytes) -> bytes:
        """Run one request; the answer to send (a DONE+ATTN if the client cancelled it)."""
        srv = self.server
        descriptor, body = pk.split_all_headers(payload)
        calls: list[pk.RpcCall] = []
        tm: pk.TmRequest | None = None
        sql = text = ""
        if ptype == pk.SQL_BATCH:
            sql = text = body.decode("utf-16-le", errors="replace")
            srv._record(self, "batch", sql, status, descriptor)
        elif ptype == pk.RPC:
            calls = pk.parse_rpc(body)
            text = "; ".join(_describe(c) for c in calls)
            srv._record(self, "rpc", text, status, descriptor)
        else:
            tm = pk.parse_tm(body)
            srv._record(self, "tm", f"kind={tm.kind} isolation={tm.isolation} begin_after={tm.begin_after}",
                        status, descriptor)
        reply = Reply(srv.server_name)
        if status & pk.ST_RESETCONNECTIONSKIPTRAN and not srv.personality.reset_skip_tran:
            # Babelfish: the request does not run, and the session ends after the answer.
            reply.error(SqlError(33557097, 16, "RESETCONSKIPTRAN is not supported"))
            reply.done(tk.DONE_ERROR)
            self.close_after_answer = True
            return reply.render()
        resets = 0
        if status & (pk.ST_RESETCONNECTION | pk.ST_RESETCONNECTIONSKIPTRAN):
            resets += 1
            with srv._lock:
                srv._stats.reset_flags += 1
            with srv.catalog.lock:
                session.reset(reply, keep_transaction=bool(status & pk.ST_RESETCONNECTIONSKIPTRAN))
            reply.add(tk.env_reset_ack())
        reset_rpcs = sum(1 for c in calls if c.proc == "sp_reset_connection")
        with srv._lock:
            srv._stats.reset_rpcs += reset_rpcs
            srv._stats.resets += resets + reset_rpcs
            self.resets += resets + reset_rpcs
            faults = srv._faults
            close_now = faults.close_busy > 0
            if close_now:
                faults.close_busy -= 1
                srv._stats.busy_closes += 1
            delay = faults.delay
            fail: SqlError | None = None
            if not close_now and tm is None and faults.fail[0] > 0 and faults.fail_matching in text:
                faults.fail[0] -= 1
                srv._stats.failed_requests += 1
                self.close_after_answer = faults.fail_close
                fail = fault_error(faults.fail[1], faults.fail_severity, spid=self.spid, user=session.user,
                                   db=session.database, server=srv.server_name)
                if fail.number == 1222 and srv.personality.lock_timeout_error != 1222:  # Babelfish's
                    fail = SqlError(srv.personality.lock_timeout_error, fail.severity, LOCK_TIMEOUT_MESSAGE)
        if close_now:
            raise SessionGone()
        try:
            if delay:
                self.wait(delay)
            if fail is not None:
                if fail.number == 1205:
                    with srv.catalog.lock:
                        session.rollback(reply)
                reply.error(fail)
                reply.done(tk.DONE_ERROR, token=0xFE if ptype == pk.RPC else 0xFD)
            elif ptype == pk.SQL_BATCH:
                run_batch(session, reply, sql)
            elif ptype == pk.RPC:
                run_rpc(session, reply, calls)
            else:
                assert tm is not None
                run_tm(session, reply, tm)
        except Attention:
            with srv._lock:
                srv._stats.attentions += 1
            srv._record(self, "attention", "", 0)
            return tk.done(tk.DONE_ATTN, curcmd=0)
        except (SessionGone, Closed, pk.ProtocolError):
            raise
        except Exception as exc:  # a gap in the mini engine: say so to the client, keep the session
            reply = Reply(srv.server_name)
            reply.error(SqlError(50000, 16, f"tdsserver cannot run this ({type(exc).__name__}: {exc})"))
            reply.done(tk.DONE_ERROR)
        return reply.render(self._session_state(session))

    def _session_state(self, session: Session) -> bytes:
        """With session recovery on: a SESSIONSTATE token when recoverability changed."""
        unrecoverable = bool(session.temp_tables)
        if not self.recovery or unrecoverable == self._unrecoverable:
            return b""
        self._unrecoverable = unrecoverable
        self._state_seqno += 1
        return session_state(self._state_seqno - 1, not unrecoverable)


def _describe(call: pk.RpcCall) -> str:
    args = ", ".join(f"@{p.name}={p.value!r}" if p.name else repr(p.value) for p in call.params)
    return f"{call.proc}({args})"
