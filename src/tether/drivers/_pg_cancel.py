"""PostgreSQL's cancel request, bounded in time, from any thread.

PostgreSQL cancels a running statement when it gets a CancelRequest (the backend's pid
and secret key) on a new connection. Through a path that stopped forwarding, that
connection hangs too, so every attempt here has a deadline: libpq's blocking
``PQcancel`` has none, so psycopg uses libpq 17's non-blocking ``PQcancelCreate`` where
the bundled libpq has it (as ``Connection.cancel_safe`` does, which ``AsyncConnection``
only offers as a coroutine on its own loop); asyncpg's own cancel runs on its loop, so
tether sends the 16-byte request itself.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from typing import Any

_CANCEL_CODE = 80877102  # 1234 << 16 | 5678 (the protocol's CancelRequest)


def cancel_libpq(pgconn: Any, timeout_s: float) -> bool:
    """Send the cancel for ``pgconn`` (psycopg's ``pq.PGconn``); True once sent and closed."""
    from psycopg import pq  # here: asyncpg's users may not have psycopg

    if pq.version() < 170000:
        pgconn.get_cancel().cancel()  # older libpq: blocking, unbounded (the watchdog severs)
        return True
    cancel = pgconn.cancel_conn()
    try:
        cancel.start()
        deadline = time.monotonic() + timeout_s
        while True:
            status = cancel.poll()
            if status == pq.PollingStatus.OK:
                return True
            if status == pq.PollingStatus.FAILED:
                return False
            reading = status == pq.PollingStatus.READING
            left = deadline - time.monotonic()
            if left <= 0 or not _ready(cancel.socket, reading, left):
                return False
    finally:
        cancel.finish()


def cancel_request(address: Any, pid: int, secret: int, timeout_s: float) -> bool:
    """Send a CancelRequest to the server at ``address`` (a (host, port) or a Unix socket
    path); True once the server closed the connection, as it does after reading it."""
    if isinstance(address, str):
        family = socket.AF_UNIX
    else:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    deadline = time.monotonic() + timeout_s
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(address if isinstance(address, str) else tuple(address[:2]))
            sock.sendall(struct.pack("!iiii", 16, _CANCEL_CODE, pid, secret))
            while time.monotonic() < deadline:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                if not sock.recv(64):
                    return True
        except OSError:
            return False
    return False


def _ready(fd: int, reading: bool, timeout_s: float) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN if reading else select.POLLOUT)
    return bool(poller.poll(timeout_s * 1000))
