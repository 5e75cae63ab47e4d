"""Zero-round-trip liveness: is an idle connection's socket still quiet?

An idle database connection has nothing to read. If its socket polls readable, the peer
closed it (EOF), reset it (RST), or sent something unsolicited, which on PostgreSQL is
usually the FATAL error a terminated backend writes before it closes. The probe costs
one ``poll`` system call and no network traffic (urllib3 ``wait_for_read``, httpcore
``has_expired``); only when readable does it peek at the bytes so the dialect can tell a
goodbye from a benign message (a NOTIFY on a LISTENing session).
"""

from __future__ import annotations

import enum
import os
import select
import socket

_PEEK_BYTES = 16
_READ_EVENTS = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP


class Liveness(enum.Enum):
    QUIET = "quiet"  # nothing to read: alive as far as the socket knows
    CLOSED = "closed"  # EOF, RST or a socket error: dead
    DATA = "data"  # unsolicited bytes: the dialect decides (see ``SocketProbe.peek``)


class SocketProbe:
    """Checks one connection's socket without disturbing the driver that owns it.

    ``fd`` belongs to the driver; the probe never closes it, so it is always told the
    descriptor rather than duplicating it (a duplicate would keep the TCP connection
    open after the driver closes its own descriptor).
    """

    __slots__ = ("_fd", "_inode", "_poll")

    def __init__(self, fd: int):
        self._fd = fd
        self._inode = os.fstat(fd).st_ino  # the socket's own: its number may be reused
        self._poll = select.poll()
        self._poll.register(fd, _READ_EVENTS)

    @property
    def fd(self) -> int:
        return self._fd

    def same_socket(self) -> bool:
        """Whether ``fd`` is still the socket this probe was made for (the driver may have
        closed it, and the number gone to another file since)."""
        try:
            return os.fstat(self._fd).st_ino == self._inode
        except OSError:
            return False

    def quiet(self) -> bool:
        """True when there is nothing to read: the common case, one system call."""
        return not self._readable()

    def check(self) -> Liveness:
        """QUIET when the socket has nothing to say; otherwise peek and classify."""
        if not self._readable():
            return Liveness.QUIET
        return self.peek()[0]

    def _readable(self) -> bool:
        try:
            return bool(self._poll.poll(0))
        except RuntimeError:
            # "concurrent poll() invocation": a poll object serves one thread at a time, and
            # the maintenance's idle sweep and a checkout may check one connection at once.
            once = select.poll()
            once.register(self._fd, _READ_EVENTS)
            return bool(once.poll(0))

    def sever(self) -> None:
        """Shut the socket down under the driver, waking any call blocked on it.

        For a connection the pool has given up on (a reset stuck on a dead path): the
        driver's next read fails at once, and the pool discards the connection.
        """
        try:
            sock = socket.socket(fileno=self._fd)
        except OSError:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            sock.detach()

    def peek(self) -> tuple[Liveness, bytes]:
        """Look at (without consuming) what is waiting on the socket."""
        try:
            sock = socket.socket(fileno=self._fd)
        except OSError:
            return Liveness.CLOSED, b""  # the descriptor is gone (POLLNVAL)
        try:
            data = sock.recv(_PEEK_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return Liveness.QUIET, b""  # POLLIN raced with nothing: alive
        except OSError:
            return Liveness.CLOSED, b""
        finally:
            sock.detach()
        return (Liveness.DATA, data) if data else (Liveness.CLOSED, b"")
