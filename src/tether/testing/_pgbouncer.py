"""An embedded PgBouncer on 127.0.0.1, in front of a PostgreSQL, for tether's tests.

It runs the system's ``pgbouncer`` (Debian: the package ``pgbouncer``) in the foreground, on
a free TCP port of 127.0.0.1 and no unix socket, with its configuration, user list, PID file
and log in a temporary directory of its own, so several can run at once and nothing touches
a system PgBouncer. PgBouncer refuses to run as root: under root it runs as ``nobody`` (or
the ``tether-pg`` user), like the embedded PostgreSQL, and owns that directory.

One database, ``database``, is routed to the upstream server; clients log in as ``user``.
Without a password that is ``trust`` on both sides (PgBouncer still wants the user in its
user list); with one, clients log in with SCRAM and PgBouncer logs in upstream with the
same password. The console (the virtual ``pgbouncer`` database) admits the admin user
``pgbouncer``: ``admin("SHOW POOLS")`` runs one console command and returns its rows.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Literal, NamedTuple
from urllib.parse import quote

from ._postgres import HOST, _log_tail, _run_as_user, free_port
from ._process import LIVE, ServerContext, as_user, chown_tree, stop_process

__all__ = ["EmbeddedPgBouncer", "pgbouncer_program"]

log = logging.getLogger(__name__)

PoolMode = Literal["session", "transaction", "statement"]

_ADMIN_USER = "pgbouncer"
_CONSOLE_DB = "pgbouncer"
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/usr/bin"])
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0
# Written into the ini and the URL unquoted: a database or user name, a host or socket directory.
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_HOST = re.compile(r"[^\s'\"=;#]+")

# Settings for tests, where PgBouncer's defaults make an outage slow to show and to end:
# after a failed login upstream it waits server_login_retry (15 s) before trying again,
# failing new clients meanwhile; a query waiting for a server connection (PostgreSQL down,
# PAUSE) fails only after query_wait_timeout (120 s, past pytest's timeout).
_TEST_SETTINGS: Mapping[str, str] = MappingProxyType({"server_login_retry": "0.5", "query_wait_timeout": "5"})
# Settings the instance owns: its address, files, authentication and the keyword arguments.
_RESERVED = frozenset({
    "listen_addr", "listen_port", "unix_socket_dir", "auth_type", "auth_file", "admin_users",
    "pool_mode", "default_pool_size", "max_client_conn", "pidfile", "logfile",
})


def pgbouncer_program() -> Path:
    """The system's ``pgbouncer``; ``FileNotFoundError`` naming its package when missing."""
    path = shutil.which("pgbouncer", path=_SEARCH_PATH)
    if path is None:
        raise FileNotFoundError("pgbouncer is not installed (Debian/Ubuntu: apt-get install pgbouncer)")
    return Path(path)


@functools.cache
def _stop_signal(program: Path) -> signal.Signals:
    """The signal for an immediate shutdown: SIGTERM until 1.22; from 1.23 SIGTERM waits for
    every client to leave, and SIGQUIT is the immediate one."""
    out = subprocess.run([str(program), "--version"], capture_output=True, text=True, timeout=10, check=False)
    found = re.search(r"PgBouncer (\d+)\.(\d+)", out.stdout)
    version = (int(found[1]), int(found[2])) if found else (0, 0)
    return signal.SIGQUIT if version >= (1, 23) else signal.SIGTERM


def _userlist_line(user: str, password: str | None) -> str:
    """One line of PgBouncer's auth_file: ``"user" "password"``, quotes doubled."""
    secret = (password or "").replace('"', '""')
    return f'"{user}" "{secret}"\n'


class EmbeddedPgBouncer(ServerContext):
    """A PgBouncer listening on 127.0.0.1 in front of ``upstream_host:upstream_port``.

    ``with EmbeddedPgBouncer(pg.host, pg.port) as bouncer:`` starts it and, on exit, stops
    it and removes its temporary directory. ``port`` is chosen once, so ``restart()`` brings
    it back at the same address. It starts whether or not the upstream server is up:
    PgBouncer connects upstream only when a client needs a server connection. Bouncers still
    running at interpreter exit are stopped by an ``atexit`` hook.
    """

    host = HOST
    admin_user = _ADMIN_USER

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        database: str = "postgres",
        user: str = "postgres",
        password: str | None = None,
        pool_mode: PoolMode = "transaction",
        default_pool_size: int = 20,
        max_client_conn: int = 100,
        port: int | None = None,
        settings: Mapping[str, str] | None = None,
        start_timeout: float = _START_TIMEOUT_S,
        stop_timeout: float = _STOP_TIMEOUT_S,
    ) -> None:
        if not _HOST.fullmatch(upstream_host):
            raise ValueError(f"upstream_host must be a host, an address or a directory: {upstream_host!r}")
        for name, value in (("database", database), ("user", user)):
            if not _NAME.fullmatch(value):
                raise ValueError(f"{name} must be letters, digits, '_', '.' or '-', got {value!r}")
        for name, number in (("upstream_port", upstream_port), ("port", port)):
            if number is not None and not 0 < number < 65536:
                raise ValueError(f"{name} must be in 1..65535, got {number!r}")
        if pool_mode not in ("session", "transaction", "statement"):
            raise ValueError(f"pool_mode must be 'session', 'transaction' or 'statement', got {pool_mode!r}")
        if default_pool_size < 1 or max_client_conn < 1:
            raise ValueError("default_pool_size and max_client_conn must be at least 1")
        if password is not None and not password:
            raise ValueError("password must be non-empty, or None for trust authentication")
        if start_timeout <= 0 or stop_timeout <= 0:
            raise ValueError("start_timeout and stop_timeout must be positive seconds")
        reserved = sorted(_RESERVED.intersection(settings or {}))
        if reserved:
            raise ValueError(f"settings may not set {reserved}: use the keyword arguments")
        self.upstream = (upstream_host, upstream_port)
        self.database = database
        self.user = user
        self.pool_mode: PoolMode = pool_mode
        self.default_pool_size = default_pool_size
        self.max_client_conn = max_client_conn
        self.port = port if port is not None else free_port()
        self.settings: Mapping[str, str] = MappingProxyType({**_TEST_SETTINGS, **(settings or {})})
        self._password = password
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._tmp: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop_signal = signal.SIGTERM  # set by start() from the version

    # -- addresses and state ------------------------------------------------------------

    def url(self, *, password: bool = True) -> str:
        """``postgresql://`` URL of the bouncer's database; with the password if set and asked."""
        auth = self.user
        if password and self._password is not None:
            auth += ":" + quote(self._password, safe="")
        return f"postgresql://{auth}@{self.host}:{self.port}/{self.database}"

    @property
    def config_path(self) -> Path:
        return self._tmp_dir() / "pgbouncer.ini"

    @property
    def log_path(self) -> Path:
        return self._tmp_dir() / "pgbouncer.log"

    def __repr__(self) -> str:
        state = f"running pid={self.pid}" if self.running else "stopped"
        auth = "scram-sha-256" if self._password is not None else "trust"
        up_host, up_port = self.upstream
        return (f"<EmbeddedPgBouncer {self.host}:{self.port} -> {up_host}:{up_port}/{self.database}"
                f" [{state}, {self.pool_mode}, {auth}]>")

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Write the configuration, start, wait until the console answers.

        Raises ``FileNotFoundError`` when PgBouncer is not installed, ``RuntimeError`` with
        the tail of its log if it exits or does not answer within ``start_timeout``.
        No-op while running.
        """
        if self.running:
            return
        began = time.monotonic()
        program = pgbouncer_program()
        self._stop_signal = _stop_signal(program)
        self._write_files()
        chown_tree(self._tmp_dir(), _run_as_user())
        self._spawn(program)
        self._wait_ready(deadline=began + self._start_timeout)
        log.debug("%r started in %.2f s", self, time.monotonic() - began)

    def stop(self) -> None:
        """Immediate shutdown (clients and server connections are dropped), SIGKILL if that
        takes too long. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        stop_process(proc, self._stop_signal, timeout=self._stop_timeout, name="pgbouncer")
        (self._tmp_dir() / "pgbouncer.pid").unlink(missing_ok=True)  # left behind by SIGKILL
        log.debug("pgbouncer pid %d on port %d stopped", proc.pid, self.port)



    def __enter__(self) -> EmbeddedPgBouncer:
        bouncer: EmbeddedPgBouncer = super().__enter__()
        return bouncer

    # -- administration -----------------------------------------------------------------

    def admin(self, command: str) -> list[NamedTuple]:
        """Run one console command (``SHOW POOLS``, ``KILL postgres``, ``RESUME``...); its
        rows, as named tuples (``row.remote_pid`` in ``SHOW SERVERS``).

        The console speaks only the simple query protocol: psycopg uses it for a query
        without parameters unless the query has been prepared, which ``prepare_threshold=None``
        rules out. Errors are ``psycopg`` errors. ``PAUSE`` returns only once every server
        connection is released: in session mode, once every client has left.
        """
        import psycopg
        from psycopg.rows import namedtuple_row

        with psycopg.connect(
            host=self.host, port=self.port, user=self.admin_user, dbname=_CONSOLE_DB,
            password=self._password, autocommit=True, prepare_threshold=None, connect_timeout=5,
            row_factory=namedtuple_row,
        ) as conn, conn.cursor() as cur:
            cur.execute(command)
            return cur.fetchall() if cur.description is not None else []

    # -- internals ----------------------------------------------------------------------

    def _tmp_dir(self) -> Path:
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="tether-pgbouncer-"))
            LIVE.add(self)
        return self._tmp

    def _write_files(self) -> None:
        tmp = self._tmp_dir()
        up_host, up_port = self.upstream
        settings = {
            "listen_addr": self.host,
            "listen_port": str(self.port),
            "unix_socket_dir": "",  # none: a socket in /tmp would clash between instances
            "auth_type": "trust" if self._password is None else "scram-sha-256",
            "auth_file": str(tmp / "userlist.txt"),
            "admin_users": self.admin_user,
            "pool_mode": self.pool_mode,
            "default_pool_size": str(self.default_pool_size),
            "max_client_conn": str(self.max_client_conn),
            "pidfile": str(tmp / "pgbouncer.pid"),
            **self.settings,
        }
        lines = ["; written by tether.testing.EmbeddedPgBouncer at each start", "[databases]",
                 f"{self.database} = host={up_host} port={up_port} dbname={self.database}", "[pgbouncer]"]
        lines += [f"{name} = {value}" for name, value in settings.items()]
        self.config_path.write_text("\n".join(lines) + "\n")
        users = dict.fromkeys((self.user, self.admin_user))
        (tmp / "userlist.txt").write_text("".join(_userlist_line(u, self._password) for u in users))

    def _spawn(self, program: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        with open(self.log_path, "ab") as log_file:  # no logfile setting: PgBouncer logs to stderr
            self._proc = subprocess.Popen(
                [str(program), str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
                cwd=self._tmp_dir(),
                **as_user(_run_as_user()),
            )
        LIVE.add(self)

    def _wait_ready(self, *, deadline: float) -> None:
        """Until the console answers: that needs PgBouncer only, not the upstream server."""
        import psycopg

        last: Exception | None = None
        while self._proc is not None and self._proc.poll() is None:
            try:
                self.admin("SHOW VERSION")
            except psycopg.OperationalError as exc:
                last = exc
            else:
                return
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(self._failure(f"not accepting connections: {last}")) from last
            time.sleep(0.01)
        code = self._proc.returncode if self._proc is not None else None
        self._proc = None
        raise RuntimeError(self._failure(f"pgbouncer exited with code {code} while starting"))

    def _failure(self, what: str) -> str:
        return f"{self!r}: {what}\n--- tail of {self.log_path} ---\n{_log_tail(self.log_path)}"

