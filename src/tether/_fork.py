"""After ``fork()``, the child never touches a connection its parent opened.

A forked child shares its parent's sockets. A pooled connection used by both sends the
two processes' statements down one session, and each reads the other's rows; even
closing it in the child would send the parent's session a goodbye (PostgreSQL's
Terminate, a TLS close_notify). Gunicorn's ``--preload``, Celery and ``multiprocessing``
all fork. So, in the child, right after the fork (``os.register_at_fork``):

- every connection tether opened is abandoned: its descriptor is pointed at /dev/null,
  so whatever the driver writes later goes nowhere and closing it closes only the
  child's descriptor; the driver's object is kept, so no finalizer of an async driver
  reaches for the parent's event loop; its session raises ``SessionLost`` if used;
- every pool starts afresh (a new lock, no connections, its threads or tasks started
  again at first use), as do the locks a parent's thread may have held mid-fork.

SQLAlchemy documents the same for its pool (``engine.dispose(close=False)`` in the
child); here it needs no call. A connection whose descriptor tether does not know (a
native driver that opened several sockets at once) is only kept, never closed.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any, Protocol

from .errors import SessionLost, bind

if TYPE_CHECKING:
    from .session import Lease


class Restartable(Protocol):
    def _after_fork(self) -> None:
        """Called in the child, before anything else runs there: start afresh, no I/O."""


_leases: weakref.WeakSet[Lease] = weakref.WeakSet()
_restartables: weakref.WeakSet[Any] = weakref.WeakSet()
_locks: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_abandoned: list[Any] = []  # the parent's driver connections, kept so nothing finalizes them


def track(lease: Lease) -> None:
    """Abandon ``lease``'s connection in a forked child."""
    _leases.add(lease)


def restart_in_child(obj: Restartable) -> None:
    """Call ``obj._after_fork()`` in a forked child."""
    _restartables.add(obj)


def renew_lock(holder: Any, name: str = "_lock") -> None:
    """Give ``holder`` (an object or a module) a new ``threading.Lock`` named ``name`` in a
    forked child: a thread of the parent may have held the old one, for ever there."""
    _locks[holder] = name


def _in_child() -> None:
    for holder, name in list(_locks.items()):
        setattr(holder, name, threading.Lock())
    parent = os.getppid()
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        for lease in list(_leases):
            _abandon(lease, devnull, parent)
    finally:
        os.close(devnull)
    _leases.clear()
    for obj in list(_restartables):
        obj._after_fork()


def _abandon(lease: Lease, devnull: int, parent: int) -> None:
    raw = lease.raw
    probe = lease.probe
    if lease.driver.is_closed(raw) or (probe is not None and not probe.same_socket()):
        return  # closed already: its descriptor's number may be another file's by now
    if probe is not None:
        with contextlib.suppress(OSError):
            os.dup2(devnull, probe.fd)
    _abandoned.append(raw)
    error = bind(SessionLost, lease.driver.module.OperationalError)(
        f"this connection was opened by process {parent} before it forked; it stays theirs "
        "(borrow a new one here: the pool opens its own connections in this process)",
        reasons=("inherited across fork()",),
    )
    lease.lost = error
    lease.token = None  # the pool that lent it starts afresh and no longer knows it


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_in_child)
