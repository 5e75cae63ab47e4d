"""An embedded MariaDB server on 127.0.0.1, for tether's tests.

It runs the system's ``mariadb-install-db`` and ``mariadbd`` (Debian: the packages
``mariadb-server-core`` and ``mariadb-client-core``, or all of ``mariadb-server``) on a
temporary data directory and a free TCP port of 127.0.0.1, with its own unix socket, so
several can run at once and nothing touches a system MariaDB.

Under root, both programs run as the ``nobody`` user (or a ``tether-pg`` system user created
where there is no ``nobody``), which then owns the temporary directory: the server never
runs as root. Administration (``execute``) connects over the unix socket as ``root`` without
a password and needs PyMySQL; TCP clients log in as ``root`` with ``password`` when one is
set. ``tls=(certfile, keyfile)`` turns TLS on (``ssl-cert``, ``ssl-key``).
"""

from __future__ import annotations

import importlib
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ._postgres import HOST, _ensure_traversable, _log_tail, _run_as_user, free_port
from ._process import LIVE, ServerContext, as_user, chown_tree, run_to_end, stop_process

__all__ = ["EmbeddedMariaDB", "mariadb_programs"]

log = logging.getLogger(__name__)

# Program -> the Debian package that has it (mariadb-install-db runs my_print_defaults).
_PROGRAMS = {"mariadbd": "mariadb-server-core", "mariadb-install-db": "mariadb-server-core",
             "my_print_defaults": "mariadb-client-core"}
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/usr/bin"])
_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0


def mariadb_programs() -> dict[str, Path]:
    """``mariadbd``, ``mariadb-install-db`` and ``my_print_defaults`` by name.

    Raises ``FileNotFoundError`` naming the missing program and its package.
    """
    found: dict[str, Path] = {}
    for name, package in _PROGRAMS.items():
        path = shutil.which(name, path=_SEARCH_PATH)
        if path is None:
            raise FileNotFoundError(f"{name} is not installed (Debian/Ubuntu: apt-get install {package}, "
                                    "or mariadb-server for all of MariaDB)")
        found[name] = Path(path)
    return found


def _sql_text(value: str) -> str:
    """A SQL string literal for MariaDB (backslashes and quotes escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class EmbeddedMariaDB(ServerContext):
    """A MariaDB server listening on 127.0.0.1, started and stopped by this object.

    ``with EmbeddedMariaDB(password="...") as db:`` starts it and, on exit, stops it and
    removes its temporary directory. The server has a database named ``tether``; log in as
    ``root`` over TCP (``db.url()``). Servers still running at interpreter exit are stopped
    by an ``atexit`` hook.
    """

    user = "root"
    database = "tether"
    host = HOST

    def __init__(
        self,
        *,
        port: int | None = None,
        password: str | None = None,
        tls: tuple[str | os.PathLike[str], str | os.PathLike[str]] | None = None,
        start_timeout: float = _START_TIMEOUT_S,
        stop_timeout: float = _STOP_TIMEOUT_S,
    ) -> None:
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"port must be in 1..65535, got {port!r}")
        if password is not None and not password:
            raise ValueError("password must be non-empty, or None for no password")
        if start_timeout <= 0 or stop_timeout <= 0:
            raise ValueError("start_timeout and stop_timeout must be positive seconds")
        self.port = port if port is not None else free_port()
        self._password = password
        self._tls = None if tls is None else (Path(tls[0]), Path(tls[1]))
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._tmp: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- addresses and state ------------------------------------------------------------

    def url(self, *, password: bool = True, database: str | None = None) -> str:
        """``mysql://`` URL for TCP on 127.0.0.1; with the password if set and asked."""
        auth = self.user
        if password and self._password is not None:
            auth += ":" + quote(self._password, safe="")
        return f"mysql://{auth}@{self.host}:{self.port}/{database or self.database}"

    @property
    def tls(self) -> bool:
        return self._tls is not None

    @property
    def data_dir(self) -> Path:
        return self._tmp_dir() / "data"

    @property
    def socket_path(self) -> Path:
        return self._tmp_dir() / "mariadb.sock"

    @property
    def log_path(self) -> Path:
        return self._tmp_dir() / "mariadb.err"

    def __repr__(self) -> str:
        state = f"running pid={self.pid}" if self.running else "stopped"
        return f"<EmbeddedMariaDB {self.host}:{self.port} [{state}{', tls' if self.tls else ''}]>"

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Initialise the data directory if needed, start, wait until it takes connections.

        Raises ``FileNotFoundError`` when MariaDB is not installed, ``RuntimeError`` with the
        tail of the server log if it exits or is not ready within ``start_timeout``.
        """
        if self.running:
            return
        began = time.monotonic()
        deadline = began + self._start_timeout
        programs = mariadb_programs()
        run_as = _run_as_user()
        self._prepare(run_as)
        if not (self.data_dir / "mysql").is_dir():
            self._install(programs["mariadb-install-db"], run_as, deadline=deadline)
        self._spawn(programs["mariadbd"], run_as)
        self._wait_ready(deadline=deadline)
        log.debug("%r started in %.2f s", self, time.monotonic() - began)

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), SIGKILL if that takes too long. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        stop_process(proc, signal.SIGTERM, timeout=self._stop_timeout, name="mariadbd")
        log.debug("mariadbd pid %d on port %d stopped", proc.pid, self.port)


    def __enter__(self) -> EmbeddedMariaDB:
        server: EmbeddedMariaDB = super().__enter__()
        return server

    # -- administration -----------------------------------------------------------------

    def execute(self, statement: str) -> list[tuple[Any, ...]]:
        """Run one statement as root over the unix socket (autocommit); its rows."""
        pymysql = importlib.import_module("pymysql")  # untyped
        conn = pymysql.connect(unix_socket=str(self.socket_path), user="root", connect_timeout=5,
                               autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
                return list(cur.fetchall())
        finally:
            conn.close()

    # -- internals ----------------------------------------------------------------------

    def _tmp_dir(self) -> Path:
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="tether-mariadb-"))
            LIVE.add(self)
        return self._tmp

    def _prepare(self, run_as: pwd.struct_passwd | None) -> None:
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        if self._tls is not None:
            for source, name in zip(self._tls, ("server.crt", "server.key"), strict=True):
                target = self._tmp_dir() / name
                shutil.copyfile(source, target)
                target.chmod(0o600)
        if run_as is None:
            return
        chown_tree(self._tmp_dir(), run_as)
        _ensure_traversable(self._tmp_dir(), uid=run_as.pw_uid)

    def _child_kwargs(self, run_as: pwd.struct_passwd | None) -> dict[str, Any]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MYSQL", "MARIADB"))}
        env["LC_ALL"] = "C"
        return {"env": env, "cwd": self._tmp_dir(), **as_user(run_as)}

    def _install(self, program: Path, run_as: pwd.struct_passwd | None, *, deadline: float) -> None:
        args = [str(program), "--no-defaults", f"--datadir={self.data_dir}", "--skip-test-db",
                "--skip-name-resolve", "--auth-root-authentication-method=normal"]
        run_to_end(args, deadline=deadline, **self._child_kwargs(run_as))

    def _server_args(self, program: Path) -> list[str]:
        args = [
            str(program), "--no-defaults", f"--datadir={self.data_dir}", f"--port={self.port}",
            f"--bind-address={self.host}", f"--socket={self.socket_path}",
            f"--pid-file={self._tmp_dir() / 'mariadb.pid'}", f"--log-error={self.log_path}",
            "--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=16M",
            "--innodb-flush-log-at-trx-commit=0", "--max-connections=100",
        ]
        if self._tls is not None:
            tmp = self._tmp_dir()
            args += [f"--ssl-cert={tmp / 'server.crt'}", f"--ssl-key={tmp / 'server.key'}"]
        return args

    def _spawn(self, program: Path, run_as: pwd.struct_passwd | None) -> None:
        self._proc = subprocess.Popen(
            self._server_args(program),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            **self._child_kwargs(run_as),
        )
        LIVE.add(self)

    def _wait_ready(self, *, deadline: float) -> None:
        pymysql = importlib.import_module("pymysql")  # untyped
        last: Exception | None = None
        while self._proc is not None and self._proc.poll() is None:
            try:
                self._probe_socket()  # PyMySQL leaks its socket when the connect itself fails
                self._configure()
            except (OSError, pymysql.err.OperationalError) as exc:
                last = exc
            else:
                return
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(self._failure(f"not accepting connections: {last}")) from last
            time.sleep(0.05)
        code = self._proc.returncode if self._proc is not None else None
        self._proc = None
        raise RuntimeError(self._failure(f"mariadbd exited with code {code} while starting"))

    def _probe_socket(self) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            probe.connect(str(self.socket_path))

    def _failure(self, what: str) -> str:
        return f"{self!r}: {what}\n--- tail of {self.log_path} ---\n{_log_tail(self.log_path)}"

    def _configure(self) -> None:
        """Create the database; give root over TCP the password, if there is one."""
        self.execute(f"CREATE DATABASE IF NOT EXISTS `{self.database}`")
        if self._password is not None:
            for host in ("127.0.0.1", "::1"):
                self.execute(f"ALTER USER 'root'@'{host}' IDENTIFIED BY {_sql_text(self._password)}")

