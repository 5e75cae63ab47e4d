"""An embedded PostgreSQL server on 127.0.0.1, for tether's demo, tests and benchmarks.

It runs the ``initdb`` and ``postgres`` binaries shipped in the ``pgserver`` wheel, found
without importing ``pgserver`` (its import takes global locks and warns). Each instance
has its own port on 127.0.0.1, its own unix socket directory and, unless given one, its
own temporary data directory, so several can run at once.

PostgreSQL refuses to run as root: under root, ``initdb`` and ``postgres`` run as the
``nobody`` user (or a ``tether-pg`` system user created with ``useradd`` where there is no
``nobody``), which then owns the data and socket directories.

The fixture connects over the unix socket, always with ``trust``; TCP clients on
127.0.0.1 get ``trust`` too, or ``scram-sha-256`` when a password is set.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import pwd
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ._process import LIVE, ServerContext, as_user, run_to_end, stop_process

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql
    from psycopg.abc import Params

__all__ = ["EmbeddedPostgres", "free_port", "postgres_bin_dir"]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
_SUPERUSER = "postgres"
_DATABASE = "postgres"
_RUN_AS = ("nobody", "tether-pg")  # existing user to run as under root; the one to create
_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0
_TERMINATE_WAIT_MS = 5000
_LOG_TAIL_LINES = 30

# Settings for a throwaway test server: durability off, small memory, quiet log.
_TEST_SETTINGS: Mapping[str, str] = MappingProxyType(
    {
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "shared_buffers": "16MB",
        "log_min_messages": "warning",
        "logging_collector": "off",
        "password_encryption": "scram-sha-256",
    }
)
# Settings the instance owns: they are its address and its limits, given as arguments.
_RESERVED = frozenset({"port", "listen_addresses", "unix_socket_directories", "max_connections"})

_CLIENT_BACKENDS = (
    "FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
)


def postgres_bin_dir() -> Path:
    """The ``bin`` directory of the PostgreSQL shipped by ``pgserver``.

    Raises ``FileNotFoundError`` naming what is missing.
    """
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("pgserver is not installed: pip install 'tether[embedded]'")
    bin_dir = Path(spec.origin).parent / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise FileNotFoundError(f"pgserver has no PostgreSQL binaries in {bin_dir}")
    return bin_dir


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def _run_as_user() -> pwd.struct_passwd | None:
    """The unprivileged user to run PostgreSQL as, or None when not root."""
    if os.geteuid() != 0:
        return None
    for name in _RUN_AS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    name = _RUN_AS[-1]
    cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name]
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)
    log.warning("created system user %r to run PostgreSQL as", name)
    return pwd.getpwnam(name)


def _add_mode(path: Path, bits: int) -> None:
    mode = path.stat().st_mode
    if mode & bits != bits:
        path.chmod(mode | bits)
        who = ("r" if bits & stat.S_IROTH else "") + ("x" if bits & stat.S_IXOTH else "")
        log.warning("chmod o+%s %s, for the PostgreSQL user", who, path)


def _ensure_traversable(path: Path, *, uid: int) -> None:
    """Let user ``uid`` traverse every ancestor of ``path`` (o+x where not its own)."""
    for parent in path.resolve().parents:
        if parent.stat().st_uid != uid:
            _add_mode(parent, stat.S_IXOTH)


@functools.cache
def _ensure_readable_install(bin_dir: Path, *, uid: int) -> None:
    """Let other users read the installation and run its programs, as pgserver does."""
    root = bin_dir.parent
    _ensure_traversable(root, uid=uid)
    _add_mode(root, stat.S_IROTH | stat.S_IXOTH)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            _add_mode(Path(dirpath, name), stat.S_IROTH | stat.S_IXOTH)
        for name in filenames:
            path = Path(dirpath, name)
            exec_bit = stat.S_IXOTH if path.stat().st_mode & stat.S_IXUSR else 0
            _add_mode(path, stat.S_IROTH | exec_bit)


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(no server log: {exc})"
    return "\n".join(lines[-_LOG_TAIL_LINES:])


def _hba(*, password: bool) -> str:
    method = "scram-sha-256" if password else "trust"
    return (
        "# written by tether.testing.EmbeddedPostgres at each start\n"
        "local all all trust\n"
        f"host all all 127.0.0.1/32 {method}\n"
        f"host all all ::1/128 {method}\n"
    )


def _child_env() -> dict[str, str]:
    """The environment without libpq's PG* variables, with C messages."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


class EmbeddedPostgres(ServerContext):
    """A PostgreSQL server listening on 127.0.0.1, started and stopped by this object.

    ``with EmbeddedPostgres() as pg:`` starts it and, on exit, stops it and removes the
    temporary directories it made. ``port`` is chosen once, so ``restart()`` brings the
    server back at the same address. Servers still running at interpreter exit are
    stopped by an ``atexit`` hook.
    """

    user = _SUPERUSER
    database = _DATABASE
    host = HOST

    def __init__(
        self,
        *,
        port: int | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        max_connections: int = 200,
        password: str | None = None,
        settings: Mapping[str, str] | None = None,
        bin_dir: str | os.PathLike[str] | None = None,
        start_timeout: float = _START_TIMEOUT_S,
        stop_timeout: float = _STOP_TIMEOUT_S,
    ) -> None:
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"port must be in 1..65535, got {port!r}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections!r}")
        if password is not None and not password:
            raise ValueError("password must be non-empty, or None for trust authentication")
        if start_timeout <= 0 or stop_timeout <= 0:
            raise ValueError("start_timeout and stop_timeout must be positive seconds")
        reserved = sorted(_RESERVED.intersection(settings or {}))
        if reserved:
            raise ValueError(f"settings may not set {reserved}: use the keyword arguments")
        self.port = port if port is not None else free_port()
        self.max_connections = max_connections
        self.settings: Mapping[str, str] = MappingProxyType({**_TEST_SETTINGS, **(settings or {})})
        self._password = password
        self._given_data_dir = Path(data_dir) if data_dir is not None else None
        self._bin_dir = Path(bin_dir) if bin_dir is not None else None
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._tmp: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- addresses and state ------------------------------------------------------------

    def url(self, *, password: bool = True) -> str:
        """``postgresql://`` URL for TCP on 127.0.0.1; with the password if set and asked."""
        auth = self.user
        if password and self._password is not None:
            auth += ":" + quote(self._password, safe="")
        return f"postgresql://{auth}@{self.host}:{self.port}/{self.database}"

    @property
    def data_dir(self) -> Path:
        if self._given_data_dir is not None:
            return self._given_data_dir
        return self._tmp_dir() / "data"

    @property
    def socket_dir(self) -> Path:
        return self._tmp_dir() / "sock"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "postgres.log"

    def __repr__(self) -> str:
        state = f"running pid={self.pid}" if self.running else "stopped"
        auth = "scram-sha-256" if self._password is not None else "trust"
        return f"<EmbeddedPostgres {self.host}:{self.port} [{state}, {auth}]>"

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Initialise the data directory if needed, start, wait until it takes connections.

        Raises ``RuntimeError`` with the tail of the server log if the server exits or does
        not accept connections within ``start_timeout`` seconds. No-op while running.
        """
        if self.running:
            return
        began = time.monotonic()
        deadline = began + self._start_timeout
        bin_dir = self._bin_dir or postgres_bin_dir()
        run_as = _run_as_user()
        if run_as is not None:
            _ensure_readable_install(bin_dir, uid=run_as.pw_uid)
        self._prepare_dirs(run_as)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(bin_dir, run_as, deadline=deadline)
        self._write_hba(run_as)
        self._spawn(bin_dir, run_as)
        self._wait_ready(deadline=deadline)
        log.debug("%r started in %.2f s", self, time.monotonic() - began)

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster), SIGKILL if that takes too long.

        Idempotent. Keeps the data and socket directories, for ``start()`` or ``restart()``.
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return
        stop_process(proc, signal.SIGINT, timeout=self._stop_timeout, name="postgres")  # fast shutdown
        log.debug("postgres pid %d on port %d stopped", proc.pid, self.port)



    def __enter__(self) -> EmbeddedPostgres:
        server: EmbeddedPostgres = super().__enter__()
        return server

    # -- administration -----------------------------------------------------------------

    def execute(
        self, query: str | sql.SQL | sql.Composed, params: Params | None = None
    ) -> list[tuple[Any, ...]]:
        """Run one statement as the superuser over the unix socket, in autocommit."""
        with self._admin() as conn, conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description is not None else []

    def backend_pids(self) -> list[int]:
        """PIDs of the client backends, excluding the one asking."""
        return [pid for (pid,) in self.execute(f"SELECT pid {_CLIENT_BACKENDS} ORDER BY pid")]

    def terminate_backends(self) -> int:
        """Terminate every client backend but the caller's, wait for them; how many."""
        query = (
            f"SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, {_TERMINATE_WAIT_MS}))"
            f" {_CLIENT_BACKENDS}"
        )
        count: int = self.execute(query)[0][0]
        log.debug("terminated %d backends on %r", count, self)
        return count

    # -- internals ----------------------------------------------------------------------

    def _tmp_dir(self) -> Path:
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="tether-pg-"))
            LIVE.add(self)
        return self._tmp

    def _prepare_dirs(self, run_as: pwd.struct_passwd | None) -> None:
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if run_as is None:
            return
        for path in {self._tmp_dir(), self.socket_dir, self.data_dir}:
            os.chown(path, run_as.pw_uid, run_as.pw_gid)
        _ensure_traversable(self.data_dir, uid=run_as.pw_uid)
        _ensure_traversable(self.socket_dir, uid=run_as.pw_uid)

    def _run(self, args: list[str], run_as: pwd.struct_passwd | None, *, deadline: float) -> None:
        run_to_end(args, deadline=deadline, **self._child_kwargs(run_as))

    def _child_kwargs(self, run_as: pwd.struct_passwd | None) -> dict[str, Any]:
        return {"env": _child_env(), "cwd": self.socket_dir, **as_user(run_as)}

    def _initdb(self, bin_dir: Path, run_as: pwd.struct_passwd | None, *, deadline: float) -> None:
        began = time.monotonic()
        args = [str(bin_dir / "initdb"), "-D", str(self.data_dir), "-U", self.user]
        args += ["-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"]
        self._run(args, run_as, deadline=deadline)
        log.debug("initdb %s took %.2f s", self.data_dir, time.monotonic() - began)

    def _write_hba(self, run_as: pwd.struct_passwd | None) -> None:
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(_hba(password=self._password is not None))
        if run_as is not None:
            os.chown(hba, run_as.pw_uid, run_as.pw_gid)

    def _server_args(self, bin_dir: Path) -> list[str]:
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "max_connections": str(self.max_connections),
            **self.settings,
        }
        args = [str(bin_dir / "postgres"), "-D", str(self.data_dir)]
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        return args

    def _spawn(self, bin_dir: Path, run_as: pwd.struct_passwd | None) -> None:
        with open(self.log_path, "ab") as log_file:
            if run_as is not None:
                os.chown(self.log_path, run_as.pw_uid, run_as.pw_gid)
            self._proc = subprocess.Popen(
                self._server_args(bin_dir),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self._child_kwargs(run_as),
            )
        LIVE.add(self)

    def _wait_ready(self, *, deadline: float) -> None:
        import psycopg

        last: Exception | None = None
        while self._proc is not None and self._proc.poll() is None:
            try:
                self._configure()
            except psycopg.OperationalError as exc:
                last = exc
            else:
                return
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(self._failure(f"not accepting connections: {last}")) from last
            time.sleep(0.02)
        code = self._proc.returncode if self._proc is not None else None
        self._proc = None
        raise RuntimeError(self._failure(f"postgres exited with code {code} while starting"))

    def _failure(self, what: str) -> str:
        return f"{self!r}: {what}\n--- tail of {self.log_path} ---\n{_log_tail(self.log_path)}"

    def _configure(self) -> None:
        """Connect as the superuser (proving readiness); set the password if there is one."""
        from psycopg import sql

        with self._admin() as conn:
            if self._password is not None:
                stmt = sql.SQL("ALTER ROLE {} PASSWORD {}")
                conn.execute(stmt.format(sql.Identifier(self.user), sql.Literal(self._password)))

    @contextmanager
    def _admin(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        import psycopg

        if self._tmp is None:
            raise RuntimeError(f"{self!r} was never started")
        with psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=self.user,
            dbname=self.database,
            autocommit=True,
            connect_timeout=5,
        ) as conn:
            yield conn

