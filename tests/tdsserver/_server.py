"""The threaded TDS server: one accept thread, one thread per connection, and the control API."""

from __future__ import annotations

import contextlib
import dataclasses
import selectors
import socket
import ssl
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType

from . import _packets as pk
from . import _tokens as tk
from ._engine import fault_error, run_batch, run_rpc, run_tm
from ._session import Attention, Catalog, Reply, Session, SessionGone, SqlError
from ._wire import Closed, Wire

JOIN_TIMEOUT = 5.0
POLL = 0.02  # how often a waiting request looks for an attention, a kill or a stop


@dataclass(frozen=True)
class SessionInfo:
    spid: int
    client_port: int
    user: str
    database: str
    app: str
    isolation_level: int
    tran_count: int
    transaction_descriptor: int  # what ENVCHANGE gave the client for the open transaction (0: none)
    temp_tables: tuple[str, ...]
    applocks: tuple[str, ...]  # sp_getapplock resources held
    context: tuple[tuple[str, object], ...]  # sp_set_session_context keys and values
    busy: bool
    encrypted: bool  # TLS for everything (the client asked ENCRYPT_ON/REQ and the server has tls=)
    login_encrypted: bool  # LOGIN7 went through TLS (also true for login-only encryption)
    requests: int
    packets_in: int
    packets_out: int
    resets: int  # RESETCONNECTION flags seen plus sp_reset_connection calls


@dataclass
class Stats:
    connections: int = 0  # TCP connections accepted
    logins: int = 0  # successful logins
    rejected_logins: int = 0  # reject_logins faults, bad passwords, unknown databases
    routed: int = 0  # logins answered with a routing ENVCHANGE
    requests: int = 0  # SQL batches, RPC messages, transaction-manager requests
    failed_requests: int = 0  # fail_batches faults delivered
    attentions: int = 0
    packets_in: int = 0
    packets_out: int = 0
    resets: int = 0
    reset_flags: int = 0  # requests whose header carried RESETCONNECTION(SKIPTRAN)
    reset_rpcs: int = 0  # sp_reset_connection calls
    kills: int = 0  # kill() and T-SQL KILL
    idle_closes: int = 0
    busy_closes: int = 0


@dataclass(frozen=True)
class Request:
    """One request as received, kept (the last few hundred) to see what drivers send."""

    spid: int
    kind: str  # prelogin, login, batch, rpc, tm, attention
    text: str
    status: int  # packet header status of the first packet
    descriptor: int = 0  # the transaction descriptor from the request's ALL_HEADERS


@dataclass
class _Faults:
    reject: list[int] = field(default_factory=lambda: [0, 0])  # remaining, error
    fail: list[int] = field(default_factory=lambda: [0, 0])
    fail_severity: int | None = None
    close_busy: int = 0
    delay: float = 0.0
    route: tuple[str, int] | None = None
    route_left: int | None = None  # None: every login while route is set


class TdsServer:
    """A SQL Server (TDS 7.4) stand-in on 127.0.0.1 with faults on demand. See package docs."""

    def __init__(self, users: dict[str, str] | None = None,
                 databases: tuple[str, ...] = ("master", "tempdb", "shop"),
                 tls: tuple[str, str] | None = None, host: str = "127.0.0.1", port: int = 0,
                 server_name: str = "TETHERTDS") -> None:
        self.users = dict(users if users is not None else {"sa": "Secret-pw1"})
        self.catalog = Catalog(tuple(databases))
        self.server_name = server_name
        self._bind = (host, port)
        self._tls_context: ssl.SSLContext | None = None
        self._strict_context: ssl.SSLContext | None = None
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            # TLS 1.2 at most, as SQL Server for TDS 7.x: with 1.3 the client's last handshake
            # flight and the server's session tickets cross the switch from PRELOGIN-wrapped
            # to raw TLS records, which the drivers' TDS 7.4 code paths do not expect.
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            self._tls_context = ctx
            # TDS 8.0 (Encrypt=strict) starts with TLS on the raw socket: any version, ALPN tds/8.0.
            strict = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            strict.load_cert_chain(*tls)
            strict.set_alpn_protocols(["tds/8.0"])
            self._strict_context = strict
        self._lock = threading.RLock()
        self._faults = _Faults()
        self._stats = Stats()
        self._conns: dict[int, _Connection] = {}
        self._threads: list[threading.Thread] = []
        self._next_spid = 51
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._log: deque[Request] = deque(maxlen=500)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> TdsServer:
        if self._listener is not None:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(self._bind)
        listener.listen(64)
        self._listener = listener
        self._stop.clear()
        name = f"tds-{self.port}"  # thread names say which server they belong to
        self._accept_thread = threading.Thread(target=self._accept_loop, name=f"{name}-accept", daemon=True)
        self._accept_thread.start()
        return self

    @property
    def host(self) -> str:
        assert self._listener is not None, "start() the server first"
        return str(self._listener.getsockname()[0])

    @property
    def port(self) -> int:
        assert self._listener is not None, "start() the server first"
        return int(self._listener.getsockname()[1])

    def stop(self) -> None:
        """Close every socket and join every thread (bounded)."""
        self._stop.set()
        if self._accept_thread is not None:
            self._accept_thread.join(JOIN_TIMEOUT)
            self._accept_thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            conns = list(self._conns.values())
            threads = list(self._threads)
        for conn in conns:
            conn.shut()
        for thread in threads:
            thread.join(JOIN_TIMEOUT)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]

    def __enter__(self) -> TdsServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        listener = self._listener
        with selectors.DefaultSelector() as sel:
            sel.register(listener, selectors.EVENT_READ)
            while not self._stop.is_set():
                if not sel.select(0.05):
                    continue
                try:
                    sock, addr = listener.accept()
                except OSError:
                    continue
                with self._lock:
                    if self._stop.is_set():
                        sock.close()
                        break
                    spid = self._next_spid
                    self._next_spid += 1
                    conn = _Connection(self, sock, spid, int(addr[1]))
                    self._conns[spid] = conn
                    self._stats.connections += 1
                    thread = threading.Thread(target=conn.run, name=f"tds-{self.port}-spid-{spid}",
                                              daemon=True)
                    self._threads = [t for t in self._threads if t.is_alive()] + [thread]
                thread.start()

    # --- control API ------------------------------------------------------------------------

    def reject_logins(self, n: int, error: int = 40613) -> None:
        """The next n logins fail with that error number, then the server closes the socket."""
        with self._lock:
            self._faults.reject = [n, error]

    def fail_batches(self, n: int, error: int = 40501, severity: int | None = None) -> None:
        """The next n batches/RPCs fail with that error (1205 also rolls the transaction back)."""
        with self._lock:
            self._faults.fail = [n, error]
            self._faults.fail_severity = severity

    def close_busy(self, n: int) -> None:
        """The next n requests are read, then the socket closes without an answer."""
        with self._lock:
            self._faults.close_busy = n

    def delay(self, seconds: float) -> None:
        """Answer every request this much later (0 to stop); an attention still cancels."""
        with self._lock:
            self._faults.delay = max(0.0, seconds)

    def route_to(self, host: str, port: int, n: int | None = None) -> None:
        """Answer logins with a routing ENVCHANGE (Azure SQL's redirect policy), then close.

        n=None routes every login until clear(); otherwise only the next n.
        """
        with self._lock:
            self._faults.route = (host, port)
            self._faults.route_left = n

    def kill(self, spid: int) -> bool:
        """Close that session's socket without an error token, as KILL does. False if unknown."""
        with self._lock:
            conn = self._conns.get(spid)
            if conn is None or conn.closing:
                return False
            self._stats.kills += 1
        conn.shut()
        return True

    def close_idle(self) -> list[int]:
        """Close every logged-in session that is not running a request; their spids."""
        closed = []
        with self._lock:
            for conn in self._conns.values():
                if conn.session is not None and not conn.busy and not conn.closing:
                    conn.closing = True
                    closed.append(conn.spid)
            self._stats.idle_closes += len(closed)
            conns = [self._conns[spid] for spid in closed]
        for conn in conns:
            conn.shut()
        return closed

    def sessions(self) -> list[SessionInfo]:
        with self._lock:
            conns = [c for c in self._conns.values() if c.session is not None and not c.closing]
            return [c.info() for c in sorted(conns, key=lambda c: c.spid)]

    def session(self, spid: int) -> SessionInfo | None:
        return next((s for s in self.sessions() if s.spid == spid), None)

    @property
    def stats(self) -> Stats:
        with self._lock:
            return dataclasses.replace(self._stats)

    def requests(self, spid: int | None = None) -> list[Request]:
        """The last requests received (for tests and for finding out what a driver sends)."""
        with self._lock:
            return [r for r in self._log if spid is None or r.spid == spid]

    def clear(self) -> None:
        """Faults off, counters (server and per session) zeroed, request log emptied."""
        with self._lock:
            self._faults = _Faults()
            self._stats = Stats()
            self._log.clear()
            for conn in self._conns.values():
                conn.requests = conn.packets_in = conn.packets_out = conn.resets = 0

    # --- used by connections ----------------------------------------------------------------

    def _record(self, conn: _Connection, kind: str, text: str, status: int = 0, descriptor: int = 0) -> None:
        with self._lock:
            self._log.append(Request(conn.spid, kind, text, status, descriptor))

    def _count_packet(self, conn: _Connection, incoming: bool) -> None:
        with self._lock:
            if incoming:
                conn.packets_in += 1
                self._stats.packets_in += 1
            else:
                conn.packets_out += 1
                self._stats.packets_out += 1

    def _forget(self, conn: _Connection) -> None:
        with self._lock:
            if self._conns.get(conn.spid) is conn:
                del self._conns[conn.spid]

    def _live_sessions(self) -> list[Session]:
        with self._lock:
            return [c.session for c in self._conns.values() if c.session is not None and not c.closing]


class _Connection:
    """One client connection: PRELOGIN, optional TLS, LOGIN7, then requests until closed."""

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
            busy=self.busy, encrypted=self.encrypted, login_encrypted=self.login_encrypted,
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
            self.server._forget(self)
            if self.session is not None:
                # As SQL Server does when a session ends: roll back its open transaction and
                # drop the global temp tables it created.
                with self.server.catalog.lock:
                    self.session.end()

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
            (pk.PL_VERSION, bytes([16, 0]) + struct.pack(">HH", 4135, 0)),
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
                    f"/{login.option_flags2:02x}/{login.type_flags:02x}/{login.option_flags3:02x}")
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
        session = Session(self, srv.catalog, login.username, database, login.appname, login.hostname)
        reply.add(tk.env_text(tk.ENV_DATABASE, database, "master"))
        reply.info(5701, f"Changed database context to '{database}'.", state=2)
        reply.add(tk.env_collation())
        reply.add(tk.env_text(tk.ENV_LANGUAGE, "us_english", ""))
        reply.info(5703, "Changed language setting to us_english.")
        reply.add(tk.loginack())
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
        try:
            answer = self._request(session, ptype, status, payload)
        finally:
            with srv._lock:
                self.busy = False  # before sending: once the client has its answer, we are idle
        self._send(answer)

    def _request(self, session: Session, ptype: int, status: int, payload: bytes) -> bytes:
        """Run one request; the answer to send (a DONE+ATTN if the client cancelled it)."""
        srv = self.server
        descriptor, body = pk.split_all_headers(payload)
        calls: list[pk.RpcCall] = []
        tm: pk.TmRequest | None = None
        sql = ""
        if ptype == pk.SQL_BATCH:
            sql = body.decode("utf-16-le", errors="replace")
            srv._record(self, "batch", sql, status, descriptor)
        elif ptype == pk.RPC:
            calls = pk.parse_rpc(body)
            srv._record(self, "rpc", "; ".join(_describe(c) for c in calls), status, descriptor)
        else:
            tm = pk.parse_tm(body)
            srv._record(self, "tm", f"kind={tm.kind} isolation={tm.isolation} begin_after={tm.begin_after}",
                        status, descriptor)
        reply = Reply(srv.server_name)
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
            if not close_now and tm is None and faults.fail[0] > 0:
                faults.fail[0] -= 1
                srv._stats.failed_requests += 1
                fail = fault_error(faults.fail[1], faults.fail_severity, spid=self.spid, user=session.user,
                                   db=session.database, server=srv.server_name)
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
        return reply.render()


def _describe(call: pk.RpcCall) -> str:
    args = ", ".join(f"@{p.name}={p.value!r}" if p.name else repr(p.value) for p in call.params)
    return f"{call.proc}({args})"
