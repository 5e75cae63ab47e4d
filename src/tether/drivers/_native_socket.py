"""Finding the socket of a driver that keeps it in native code (mssql-python, pyodbc, pymssql).

The driver's socket is a descriptor of this process, so it can be found: it is the TCP
socket that appeared in ``/proc/self/fd`` while the driver connected. That is proof only
when exactly one such socket appeared and is still open; when several did (other threads
connected at the same time), the server is asked which client port the session uses
(``sys.dm_exec_connections``) and the one with that local port is taken. When neither
settles it (no ``/proc``, no candidate, the server cannot say), the answer is None and the
pool falls back to its ping window: a wrong descriptor would be worse than none, since
the pool polls it to decide liveness and severs it when a reset is stuck.

What tether keeps is a duplicate of the driver's descriptor, not its number: the number
is the driver's to close and the kernel's to reuse for an unrelated socket, while the
duplicate keeps pointing at this connection's socket for as long as tether holds it.
Socket options and ``shutdown`` act on the socket itself, so keepalive and ``sever``
work through the duplicate. The duplicate keeps the TCP connection open after the driver
closes its own descriptor, so it is closed together with the connection (``release``),
and by a finalizer if the connection object goes away unclosed.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import stat
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("tether.drivers")

_FD_DIR = "/proc/self/fd"
_LOCAL_PORT_SQL = "SELECT client_tcp_port FROM sys.dm_exec_connections WHERE session_id = @@SPID"


def open_fds() -> dict[int, str] | None:
    """The process's descriptors now, each with what it refers to (``socket:[inode]``),
    or None where the platform does not list them. The target tells a descriptor number
    closed and reused meanwhile (by another thread) from the one seen before."""
    try:
        names = os.listdir(_FD_DIR)
    except OSError:
        return None
    found: dict[int, str] = {}
    for name in names:
        try:
            found[int(name)] = os.readlink(f"{_FD_DIR}/{name}")
        except (OSError, ValueError):
            continue  # closed since the listing (the listing's own descriptor, for one)
    return found


def _tcp_identity(fd: int) -> tuple[int, int] | None:
    """(inode, local port) when ``fd`` is a connected TCP socket, else None."""
    try:
        info = os.fstat(fd)
        if not stat.S_ISSOCK(info.st_mode):
            return None
        sock = socket.socket(fileno=fd)
    except OSError:
        return None
    try:
        if sock.type != socket.SOCK_STREAM or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return None
        sock.getpeername()  # raises when not connected
        return info.st_ino, sock.getsockname()[1]
    except OSError:
        return None
    finally:
        sock.detach()


def find_socket(before: dict[int, str] | None, local_port: Callable[[], int | None]) -> socket.socket | None:
    """A duplicate of the one TCP socket that appeared since ``before``, or None.

    ``local_port()`` asks the server for the session's client port; it is called only
    when several sockets appeared, and may return None when the server cannot say.
    """
    after = open_fds()
    if before is None or after is None:
        return None
    new = sorted(fd for fd, what in after.items() if what.startswith("socket:") and before.get(fd) != what)
    candidates = {fd: ident for fd in new if (ident := _tcp_identity(fd)) is not None}
    if not candidates:
        return None
    if len(candidates) > 1:
        port = _ask(local_port)
        candidates = {fd: ident for fd, ident in candidates.items() if ident[1] == port}
        if len(candidates) != 1:
            log.debug("could not tell this connection's socket from %d others", len(candidates))
            return None
    [(fd, (inode, _))] = candidates.items()
    return _duplicate(fd, inode)


def _ask(local_port: Callable[[], int | None]) -> int | None:
    try:
        return local_port()
    except Exception as exc:  # the server may not know sys.dm_exec_connections
        log.debug("the server did not tell the session's client port: %s", exc)
        return None


def _duplicate(fd: int, inode: int) -> socket.socket | None:
    try:
        copy = socket.socket(fileno=os.dup(fd))
    except OSError:
        return None
    try:
        same = os.fstat(copy.fileno()).st_ino == inode  # not closed and reused meanwhile
    except OSError:
        same = False
    if not same:
        copy.close()
        return None
    return copy


def peer_closed(sock: socket.socket) -> bool:
    """The peer closed or reset the connection (EOF or an error pending), seen without I/O
    on the wire: one ``poll``, and a peek only when something is there."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    if not poller.poll(0):
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


_TCP_INFO_DATA_SEGS_OUT = 156  # struct tcp_info's tcpi_data_segs_out (Linux 4.6+), a u32


def sent_segments(sock: socket.socket) -> int | None:
    """How many segments carrying data this socket has sent (Linux), without I/O.

    Every request a driver sends is data; keepalive probes and pure ACKs are not. So an
    unchanged count means the driver sent nothing, whichever of its cursors was used.
    """
    option = getattr(socket, "TCP_INFO", None)
    if option is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, option, 256)
    except OSError:
        return None
    if len(info) < _TCP_INFO_DATA_SEGS_OUT + 4:
        return None
    return int.from_bytes(info[_TCP_INFO_DATA_SEGS_OUT : _TCP_INFO_DATA_SEGS_OUT + 4], "little")


def local_port_query(run: Callable[[str], Any]) -> Callable[[], int | None]:
    """``local_port`` for ``find_socket`` from a function that runs SQL and returns a row."""

    def ask() -> int | None:
        row = run(_LOCAL_PORT_SQL)
        value = row[0] if row else None
        return int(value) if value is not None else None

    return ask


@dataclass(slots=True, eq=False)
class Native:
    """What tether knows of one native connection beyond the driver's object."""

    flavour: str  # see _mssql_options: msodbcsql, freetds, mssql_python, pymssql
    login_database: str | None = None
    login_settings: str | None = None  # SQL restoring the login's SET options (SQL-only drivers)
    sock: socket.socket | None = None  # our duplicate of the driver's socket
    clean_mark: int | None = None  # sent_segments() when the session was last known clean

    def mark_clean(self) -> None:
        """Nothing ran since now (connect, commit, rollback, tether's own statements)."""
        self.clean_mark = sent_segments(self.sock) if self.sock is not None else None

    def ran_since_clean(self) -> bool | None:
        """Whether the client sent anything since ``mark_clean``; None: cannot tell."""
        if self.sock is None or self.clean_mark is None:
            return None
        now = sent_segments(self.sock)
        return None if now is None else now != self.clean_mark


class Natives:
    """The ``Native`` record of each of one driver's connections, released with them.

    Keyed by ``id(raw)``: the native drivers' connection objects take no attributes.
    Where ``raw`` takes weak references, its death closes the duplicate socket (a
    connection dropped unclosed); pyodbc's do not, so the entry holds pyodbc's connection
    strongly until ``release``, which also keeps its id from being reused meanwhile.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[int, tuple[Callable[[], Any], Native]] = {}

    def keep(self, raw: Any, native: Native) -> None:
        key = id(raw)
        ref: Callable[[], Any]
        try:
            ref = weakref.ref(raw, lambda _dead: self._drop(key))
        except TypeError:
            ref = _Strong(raw)
        with self._lock:
            self._held[key] = (ref, native)

    def get(self, raw: Any) -> Native | None:
        entry = self._held.get(id(raw))
        return entry[1] if entry is not None and entry[0]() is raw else None

    def fd(self, raw: Any) -> int | None:
        native = self.get(raw)
        return native.sock.fileno() if native is not None and native.sock is not None else None

    def release(self, raw: Any) -> None:
        """Forget ``raw`` and close the duplicate, after the driver closed its own."""
        self._drop(id(raw))

    def _drop(self, key: int) -> None:
        with self._lock:
            entry = self._held.pop(key, None)
        if entry is not None and entry[1].sock is not None:
            entry[1].sock.close()

    def __len__(self) -> int:
        return len(self._held)


class _Strong:
    __slots__ = ("_raw",)

    def __init__(self, raw: Any):
        self._raw = raw

    def __call__(self) -> Any:
        return self._raw
