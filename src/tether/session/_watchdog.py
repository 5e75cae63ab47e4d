"""Command timeouts: a statement that outlives its deadline is cancelled, then severed.

SqlClient bounds every command (``CommandTimeout``, 30 s by default). Without a bound, a
statement sent down a path that accepts bytes but forwards nothing (a stuck gateway, a
middlebox) waits for ever: the kernel sees its bytes acknowledged, so no keepalive or
``TCP_USER_TIMEOUT`` fires. One thread per process watches the statements in flight
(sync and asyncio alike: what it does is thread-safe). When one passes its deadline,
it asks the driver to cancel it the driver's way (a PostgreSQL cancel request, TDS
attention, MySQL's ``KILL QUERY``), in a thread of its own; if the statement is still
running ``GRACE_S`` later, or the driver cannot cancel from another thread, it severs
the socket (``SocketProbe.sever``), which wakes the blocked driver call with an error.
The proxy then raises ``CommandTimeout`` saying which of the two happened.

Cheap on the statement path: ``arm`` is a clock read and a few attribute writes, and
``disarm`` one. A lease sits in the watchdog's heap about once, however many statements
it runs: the entry is looked at when it falls due and moved to the lease's current
deadline, or dropped when nothing runs.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any

from .._fork import restart_in_child
from ..errors import CommandTimeout, bind

if TYPE_CHECKING:
    from ._lease import Lease

log = logging.getLogger("tether.session")

GRACE_S = 0.5  # how long a cancel may take before the socket is severed
# How long the next statement waits for a cancel still in flight, and, where the cancel works
# on the connection's own handles (``cancel_holds_connection``: SQLCancel), how long a
# timed-out statement's caller does, who may free them next (closing a discarded pyodbc
# connection under SQLCancel crashed the process once in CI). A cancel returns within
# milliseconds once its statement has ended; the bound guards against one that never does.
SETTLE_S = 5.0


def arm(lease: Lease, timeout_s: float, cursor: Any = None) -> int:
    """Start the clock on a statement about to run on ``lease``; its number (0: no limit)."""
    if lease.cancelling is not None:
        settle_cancel(lease)
    if not timeout_s:
        return 0
    number = lease.statement = lease.statement + 1
    deadline = lease.deadline = time.monotonic() + timeout_s
    if deadline < lease.watch_at:  # else the heap's entry for this lease falls due first
        WATCHDOG.watch(lease, deadline)
    lease.running = cursor
    return number


def settle_cancel(lease: Lease) -> None:
    """Wait for a cancel still inside the driver (at most ``SETTLE_S``): before the next
    statement, so that a cancel sent as its statement ended lands while nothing runs
    (PostgreSQL and MySQL then ignore it), never on the statement about to start; and, for a
    cancel that uses the connection's own handles, before a timed-out statement's error
    reaches its caller, who may free them. Rare: only right after a command timeout."""
    cancelling = lease.cancelling
    if cancelling is not None and not cancelling.wait(SETTLE_S):
        log.warning("command timeout of %r: its cancel is still in the driver after %g s", lease, SETTLE_S)


def disarm(lease: Lease) -> None:
    """The statement is over. The cursor is let go now, while the path is known to work:
    a driver's cursor may talk to the server when it is freed (FreeTDS cancels results
    left unread), and that must never happen outside a deadline."""
    lease.deadline = 0.0
    lease.running = None


class Bounded:
    """``with Bounded(lease, timeout_s, cursor):`` a driver call that may wait on the server,
    under the command timeout; an error it ends with becomes ``CommandTimeout`` if the
    watchdog stopped it. ``timed`` in the proxy is the usual way in (the same steps, without
    this object: it is on every statement's path)."""

    __slots__ = ("lease", "number", "timeout_s")

    def __init__(self, lease: Lease, timeout_s: float, cursor: Any = None) -> None:
        self.lease = lease
        self.timeout_s = timeout_s
        self.number = arm(lease, timeout_s, cursor)

    def __enter__(self) -> Bounded:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        disarm(self.lease)
        if exc is not None:
            error = stopped(self.lease, self.number, self.timeout_s, exc)
            if error is not None:
                raise error from exc


def stopped(lease: Lease, number: int, timeout_s: float, exc: BaseException) -> CommandTimeout | None:
    """After statement ``number`` raised ``exc``: its ``CommandTimeout`` if the watchdog
    stopped it (once a cancel that holds the connection's handles has let go), else None."""
    if not number or not isinstance(exc, Exception):
        return None
    error = timeout_error(lease, number, timeout_s)
    if error is not None and lease.driver.cancel_holds_connection:
        settle_cancel(lease)
    return error


def check_done(lease: Lease, number: int, timeout_s: float) -> None:
    """After statement ``number`` returned: raise if it was cancelled all the same (PyMySQL's
    ``SLEEP()`` and ODBC's attention answer a cancel with an ordinary ending)."""
    if number and lease.expired is not None and not lease.driver.cancel_raises:
        error = timeout_error(lease, number, timeout_s)
        if error is not None:
            if lease.driver.cancel_holds_connection:
                settle_cancel(lease)
            raise error


def timeout_error(lease: Lease, number: int, timeout_s: float) -> CommandTimeout | None:
    """The error for statement ``number`` if the watchdog acted on it, else None."""
    expired = lease.expired
    if not number or expired is None or expired[0] != number:
        return None
    severed = expired[1] == "severed"
    if severed:
        grace = GRACE_S if lease.grace is None else lease.grace
        outcome = (f"the cancel got no answer within {grace:g} s, so its connection was severed "
                   "(it is discarded; whether the statement ran is unknown)")  # fmt: skip
    elif expired[1] == "cancelled":
        outcome = "the server cancelled it (the connection stays usable; an open transaction is aborted)"
    else:
        outcome = f"{lease.driver.name} cannot cancel a statement, so its connection was severed"
        severed = True
    error = bind(CommandTimeout, lease.driver.module.OperationalError)(
        f"the statement ran past its command timeout of {timeout_s:g} s; {outcome}",
        timeout_s=timeout_s,
        severed=severed,
    )
    assert isinstance(error, CommandTimeout)
    return error


class Watchdog:
    """The thread that watches deadlines; ``WATCHDOG`` is the process's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due = threading.Condition(self._lock)
        # (when, order, kind, lease): kind 0 looks at the lease's deadline; a statement's
        # number severs it if that statement still runs (a cancel's grace ran out).
        self._heap: list[tuple[float, int, int, Lease]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        restart_in_child(self)

    def watch(self, lease: Lease, when: float) -> None:
        """Look at ``lease`` at ``when`` (its earliest deadline)."""
        with self._lock:
            if when < lease.watch_at:
                lease.watch_at = when
                self._push(when, 0, lease)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tether-watchdog", daemon=True)
                self._thread.start()

    def _push(self, when: float, kind: int, lease: Lease) -> None:
        heapq.heappush(self._heap, (when, next(self._order), kind, lease))
        if self._heap[0][3] is lease:
            self._due.notify()

    def _run(self) -> None:
        while True:
            lease, statement, action = self._next_due()
            try:
                if action == "cancel":
                    self._cancel(lease, statement)
                else:
                    self._sever(lease, statement, "severed")
            except Exception:  # never let one lease stop the watch over the others
                log.exception("command timeout of %r: could not stop the statement", lease)

    def _next_due(self) -> tuple[Lease, int, str]:
        with self._lock:
            while True:
                now = time.monotonic()
                if not self._heap:
                    self._due.wait()
                    continue
                when, _, kind, lease = self._heap[0]
                if when > now:
                    self._due.wait(when - now)
                    continue
                heapq.heappop(self._heap)
                if kind:  # a grace ran out: sever if that statement still runs
                    if lease.statement == kind and lease.deadline:
                        return lease, kind, "sever"
                    continue
                if lease.watch_at != when:
                    continue  # an older entry: the lease has an earlier one
                lease.watch_at = math.inf
                deadline = lease.deadline
                if not deadline:
                    continue  # nothing runs; the next ``arm`` watches it again
                if deadline > now:
                    lease.watch_at = deadline
                    self._push(deadline, 0, lease)
                    continue
                statement = lease.statement  # expired: cancel it, and sever after the grace
                grace = GRACE_S if lease.grace is None else lease.grace
                self._push(now + grace, statement, lease)
                return lease, statement, "cancel"

    def _cancel(self, lease: Lease, statement: int) -> None:
        driver = lease.driver
        if not driver.cancels:
            self._sever(lease, statement, "uncancellable")
            return
        lease.expired = (statement, "cancelled")
        raw, cursor = lease.raw, lease.running
        done = lease.cancelling = threading.Event()

        def send() -> None:
            try:
                if lease.statement != statement or not lease.deadline:
                    return  # it ended while this thread started: a cancel now would hit the next one
                driver.cancel(raw, cursor, GRACE_S)
            except Exception as exc:  # the grace's sever still bounds the statement
                log.debug("cancel of %r failed: %s", lease, exc)
            finally:
                if lease.cancelling is done:
                    lease.cancelling = None
                done.set()

        threading.Thread(target=send, name="tether-cancel", daemon=True).start()

    def _sever(self, lease: Lease, statement: int, why: str) -> None:
        if lease.statement != statement or not lease.deadline:
            return  # it finished meanwhile
        lease.expired = (statement, why)
        probe = lease.probe
        if probe is not None and not probe.same_socket():
            return  # closed meanwhile (its number may be another file's now)
        if probe is None:
            log.warning("command timeout of %r: its socket is unknown, so it cannot be severed", lease)
            return
        reason = "the driver cannot cancel" if why == "uncancellable" else "no answer to the cancel"
        log.warning("command timeout of %r: severing its connection (%s)", lease, reason)
        probe.sever()

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._due = threading.Condition(self._lock)
        self._heap = []
        self._thread = None


WATCHDOG = Watchdog()
