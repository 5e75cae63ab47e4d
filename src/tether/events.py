"""Typed events of a pool's life, for the logs, the metrics and whoever subscribes.

Each event is a frozen dataclass with a ``kind`` (``"connection.discarded"``, ...) and
plain fields: numbers and short strings, never a password, a connection string or an
exception object. Subscribe for every pool of the process (``tether.events.subscribe``)
or for one (``pool.subscribe``); both return a function that unsubscribes::

    stop = tether.events.subscribe(lambda event: print(event.kind, event.pool))

Callbacks run on the thread that saw the event, outside the pool's lock, and must be
cheap: an exception in one is logged and swallowed, never breaking the pool. Nothing is
emitted on the checkout and return hot path; only what breaks, recovers or lingers is.

The pool logs each event too, with its fields as ``extra=`` (``record.event``,
``record.pool``, ``record.reason``, ...), so a JSON formatter gets them as structure.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar

__all__ = [
    "CommitResolved",
    "ConnectFailed",
    "ConnectionDiscarded",
    "ConnectionOpened",
    "ConnectionReclaimed",
    "Event",
    "LeakEnded",
    "LeakSuspected",
    "PoolBlocking",
    "PoolReconnected",
    "PoolTimedOut",
    "PoolsFragmented",
    "ResetFailed",
    "Retried",
    "SessionLost",
    "SessionRecovered",
    "Subscriber",
    "emit",
    "subscribe",
]

log = logging.getLogger("tether.events")


@dataclass(frozen=True, slots=True)
class Event:
    """What every event has: the pool's name ("" outside a pool)."""

    kind: ClassVar[str] = "event"
    pool: str

    def extra(self) -> dict[str, Any]:
        """The fields for a log record's ``extra=`` (``event`` is the kind)."""
        values: dict[str, Any] = {"event": self.kind}
        for f in fields(self):
            values[f.name] = getattr(self, f.name)
        return values


@dataclass(frozen=True, slots=True)
class ConnectionOpened(Event):
    kind: ClassVar[str] = "connection.opened"
    connection: int  # the connection's number, as in ``<connection #7 gen 0>``
    elapsed_s: float  # the open, connect retries included


@dataclass(frozen=True, slots=True)
class ConnectFailed(Event):
    kind: ClassVar[str] = "connect.failed"
    host: str
    port: int
    attempts: int
    elapsed_s: float
    error: str  # the error's type and message, the password scrubbed
    final: bool  # a fault that cannot heal (a wrong password): the waiters fail now


@dataclass(frozen=True, slots=True)
class ConnectionDiscarded(Event):
    """A connection was closed because it could not be trusted any more."""

    kind: ClassVar[str] = "connection.discarded"
    connection: int
    reason: str  # one of REASONS


REASONS = {
    "failed_checkout_check": "its socket, or a ping, said it was dead when it was about to be lent",
    "interrupted": "the checkout was interrupted while checking it",
    "broken_on_return": "it came back broken, or with a statement still running",
    "reset_failed": "the reset after its borrow failed",
    "dead_while_idle": "the maintenance sweep found it closed while idle",
}


@dataclass(frozen=True, slots=True)
class SessionRecovered(Event):
    kind: ClassVar[str] = "session.recovered"
    connection: int
    elapsed_s: float
    replayed: str  # what was replayed, counted by family ("2 set, 1 prepare")


@dataclass(frozen=True, slots=True)
class SessionLost(Event):
    kind: ClassVar[str] = "session.lost"
    connection: int
    reason: str


@dataclass(frozen=True, slots=True)
class ResetFailed(Event):
    kind: ClassVar[str] = "reset.failed"
    connection: int
    error: str


@dataclass(frozen=True, slots=True)
class PoolBlocking(Event):
    """SqlClient's blocking period began: checkouts fail fast for ``seconds``."""

    kind: ClassVar[str] = "pool.blocking"
    seconds: float


@dataclass(frozen=True, slots=True)
class PoolReconnected(Event):
    """An outage ended: a connection opened after ``attempts`` failed ones."""

    kind: ClassVar[str] = "pool.reconnected"
    attempts: int
    outage_s: float


@dataclass(frozen=True, slots=True)
class PoolTimedOut(Event):
    kind: ClassVar[str] = "pool.timeout"
    waited_s: float
    idle: int
    busy: int
    waiting: int


@dataclass(frozen=True, slots=True)
class LeakSuspected(Event):
    """A connection has been borrowed longer than ``leak_detection_threshold``."""

    kind: ClassVar[str] = "leak.suspected"
    connection: int
    held_s: float
    borrowed_at: str  # the borrow site's stack, innermost last


@dataclass(frozen=True, slots=True)
class LeakEnded(Event):
    """A connection once suspected of leaking came back."""

    kind: ClassVar[str] = "leak.ended"
    connection: int
    held_s: float


@dataclass(frozen=True, slots=True)
class ConnectionReclaimed(Event):
    """A borrowed connection was garbage-collected without being given back."""

    kind: ClassVar[str] = "connection.reclaimed"
    connection: int
    borrowed_at: str  # the borrow site, when leak detection is on; "" otherwise


@dataclass(frozen=True, slots=True)
class Retried(Event):
    """A unit of work failed and will run again after ``delay_s``."""

    kind: ClassVar[str] = "retry.attempt"
    unit: str  # what is retried (a function's qualified name)
    attempt: int  # the run that failed, 1-based
    fault: str  # the fault class: connect, in_doubt, transient
    delay_s: float
    error: str  # the error's type only: its message may carry data


@dataclass(frozen=True, slots=True)
class CommitResolved(Event):
    """A COMMIT's reply was lost: ``outcome`` is committed, aborted, or unknown."""

    kind: ClassVar[str] = "commit.resolved"
    outcome: str


@dataclass(frozen=True, slots=True)
class PoolsFragmented(Event):
    """More pools of this process reach one server than the fragmentation limit."""

    kind: ClassVar[str] = "pool.fragmented"
    server: str  # host:port/database
    pools: int
    differing: tuple[str, ...]  # the connection-string keys whose values differ (names only)


Subscriber = Callable[[Event], object]


class Subscribers:
    """A copy-on-write list of callbacks: dispatch reads a tuple, without a lock."""

    __slots__ = ("_lock", "callbacks")

    def __init__(self) -> None:
        self.callbacks: tuple[Subscriber, ...] = ()
        self._lock = threading.Lock()

    def add(self, fn: Subscriber) -> Callable[[], None]:
        if not callable(fn):
            raise TypeError(f"subscribe() needs a callable, not {type(fn).__name__}")
        with self._lock:
            self.callbacks = (*self.callbacks, fn)

        def unsubscribe() -> None:
            with self._lock:
                kept = list(self.callbacks)
                if fn in kept:
                    kept.remove(fn)
                self.callbacks = tuple(kept)

        return unsubscribe


_everywhere = Subscribers()


def subscribe(fn: Subscriber) -> Callable[[], None]:
    """Call ``fn(event)`` for every event of every pool of this process; returns the
    function that unsubscribes it."""
    return _everywhere.add(fn)


def emit(event: Event, local: Subscribers | None = None) -> None:
    """Tell the process-wide subscribers, then ``local`` ones (a pool's)."""
    callbacks = _everywhere.callbacks
    if local is not None and local.callbacks:
        callbacks = callbacks + local.callbacks
    for fn in callbacks:
        try:
            fn(event)
        except Exception:
            log.exception("an event subscriber failed on %s", event.kind)


def announce(logger: logging.Logger, level: int, event: Event, local: Subscribers | None,
             message: str, *args: object) -> None:
    """Log ``message`` with the event's fields as ``extra=``, then emit the event."""
    if logger.isEnabledFor(level):
        logger.log(level, message, *args, extra=event.extra())
    emit(event, local)
