"""The threaded TDS server: one accept thread, one thread per connection, and the control API."""

from __future__ import annotations

import dataclasses
import selectors
import socket
import ssl
import threading
from collections import deque
from types import TracebackType

from ._connection import Connection
from ._model import Request, SessionInfo, Stats, _Faults
from ._packets import Value
from ._personality import SQLSERVER, Personality
from ._session import Catalog, Session

JOIN_TIMEOUT = 5.0


class TdsServer:
    """A SQL Server (TDS 7.4) stand-in on 127.0.0.1 with faults on demand. See package docs."""

    def __init__(self, users: dict[str, str] | None = None,
                 databases: tuple[str, ...] = ("master", "tempdb", "shop"),
                 tls: tuple[str, str] | None = None, host: str = "127.0.0.1", port: int = 0,
                 server_name: str = "TETHERTDS", server_properties: dict[str, Value] | None = None,
                 version: str | None = None, session_recovery: bool = False,
                 personality: Personality = SQLSERVER) -> None:
        """``server_properties`` override SERVERPROPERTY() values (e.g. ``{"EngineEdition": 5}``
        for Azure SQL Database) and ``version`` replaces @@VERSION. ``session_recovery``
        acknowledges the feature ODBC 18 / mssql-python ask for, so that they reconnect a
        broken idle connection by themselves, as against SQL Server (off: as against Babelfish
        or a server without it)."""
        self.session_recovery = session_recovery
        # SQL Server's behaviour, or Babelfish's where it differs (_personality.py); each
        # switch is honoured where that behaviour lives (builtins, SET, reset, transactions)
        self.personality = personality
        version = version if version is not None else personality.version
        self.users = dict(users if users is not None else {"sa": "Secret-pw1"})
        properties = {**dict(personality.server_properties), **(server_properties or {})}
        self.catalog = Catalog(tuple(databases), properties, version, personality)
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
        self._conns: dict[int, Connection] = {}
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
                    conn = Connection(self, sock, spid, int(addr[1]))
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

    def fail_batches(self, n: int, error: int = 40501, severity: int | None = None,
                     close: bool = False, matching: str = "") -> None:
        """The next n batches/RPCs fail with that error (1205 also rolls the transaction back).

        ``severity`` defaults to what SQL Server uses for that number (40501 is 20). The session
        stays open unless ``close``: then the server closes it after the error, as SQL Server
        does after an error of severity 20 or more. With ``matching``, only requests whose
        text contains it count, so that no other session's request takes the fault.
        """
        with self._lock:
            self._faults.fail_matching = matching
            self._faults.fail = [n, error]
            self._faults.fail_severity = severity
            self._faults.fail_close = close

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
        """Logged-in sessions, until each has fully ended: a killed or closed session stays
        (``closing=True``) until its transaction is rolled back and its ## tables dropped."""
        with self._lock:
            conns = [c for c in self._conns.values() if c.session is not None]
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

    def drop_tables(self) -> None:
        """Drop every permanent and ## table (a session's # tables stay with it)."""
        with self.catalog.lock:
            self.catalog.tables.clear()

    def clear(self) -> None:
        """Faults off, counters (server and per session) zeroed, request log emptied."""
        with self._lock:
            self._faults = _Faults()
            self._stats = Stats()
            self._log.clear()
            for conn in self._conns.values():
                conn.requests = conn.packets_in = conn.packets_out = conn.resets = 0

    # --- used by connections ----------------------------------------------------------------

    def _record(self, conn: Connection, kind: str, text: str, status: int = 0, descriptor: int = 0) -> None:
        with self._lock:
            self._log.append(Request(conn.spid, kind, text, status, descriptor))

    def _count_packet(self, conn: Connection, incoming: bool) -> None:
        with self._lock:
            if incoming:
                conn.packets_in += 1
                self._stats.packets_in += 1
            else:
                conn.packets_out += 1
                self._stats.packets_out += 1

    def _forget(self, conn: Connection) -> None:
        with self._lock:
            if self._conns.get(conn.spid) is conn:
                del self._conns[conn.spid]

    def _live_sessions(self) -> list[Session]:
        with self._lock:
            return [c.session for c in self._conns.values() if c.session is not None and not c.closing]
