"""What the embedded servers (PostgreSQL, MariaDB, PgBouncer) share: running a program to
its end, handing a directory to the user a server runs as, stopping a server process, and
the context-manager shape."""

from __future__ import annotations

import atexit
import logging
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

log = logging.getLogger("tether.testing")

KILL_WAIT_S = 5.0


def as_user(run_as: pwd.struct_passwd | None) -> dict[str, Any]:
    """``subprocess`` arguments that drop to ``run_as`` (root runs servers as another user)."""
    return {} if run_as is None else {"user": run_as.pw_uid, "group": run_as.pw_gid, "extra_groups": []}


def chown_tree(root: str | os.PathLike[str], run_as: pwd.struct_passwd | None) -> None:
    """Give ``root`` and everything under it to ``run_as`` (nothing to do when not root)."""
    if run_as is None:
        return
    for dirpath, _, filenames in os.walk(root):
        os.chown(dirpath, run_as.pw_uid, run_as.pw_gid)
        for name in filenames:
            os.chown(os.path.join(dirpath, name), run_as.pw_uid, run_as.pw_gid)


def run_to_end(args: list[str], *, deadline: float, **kwargs: Any) -> None:
    """Run a setup program (initdb, mariadb-install-db) within ``deadline``; its output in
    the error if it fails."""
    name = args[0].rsplit("/", 1)[-1]
    timeout = max(deadline - time.monotonic(), 0.0)
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{name} did not finish within {timeout:.1f} s") from exc
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise RuntimeError(f"{name} failed with code {result.returncode}:\n{output}")


def stop_process(proc: subprocess.Popen[Any], sig: int, *, timeout: float, name: str) -> None:
    """Ask ``proc`` to stop with ``sig``; SIGKILL if it takes longer than ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s pid %d ignored signal %d; killing it", name, proc.pid, sig)
            proc.kill()
            proc.wait(timeout=KILL_WAIT_S)


class ServerContext:
    """``with Server() as server:`` starts it, and closes it whatever happened, a failed
    start included (nothing is left running or on disk); and the state both servers show."""

    host: str
    port: int
    _proc: subprocess.Popen[bytes] | None
    _password: str | None
    _tmp: Path | None  # the directory this instance made (data, config, sockets, logs)

    def url(self) -> str:
        raise NotImplementedError

    @property
    def dsn(self) -> str:
        """The URL to connect with: ``url()``, password included when one is set."""
        return self.url()

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``: what a WAN link's ``upstream=`` takes."""
        return (self.host, self.port)

    @property
    def password(self) -> str | None:
        return self._password

    @property
    def pid(self) -> int | None:
        """The server process's PID while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def restart(self) -> None:
        """Stop, then start again on the same port."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop, then remove the temporary directory this instance made."""
        self.stop()
        tmp, self._tmp = self._tmp, None
        LIVE.discard(self)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    def __enter__(self) -> Any:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


LIVE: set[ServerContext] = set()  # servers with a directory on disk, for the exit hook


@atexit.register
def _close_all() -> None:
    """Stop the servers and remove the directories that their users did not close."""
    for server in list(LIVE):
        try:
            server.close()
        except Exception:
            log.exception("could not close %r at exit", server)
