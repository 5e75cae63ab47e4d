# Generated from _pool_async.py by tools/async_to_sync.py: edit that file instead.
"""The pool for asyncio, and the source of the pool for threads (``_pool.py``, generated).

Every decision (whom to serve, what to open, expire or close) is ``PoolState``'s; this
front end carries the plans out, touching sockets only outside the lock. Work that makes
round trips (opening, resetting, closing) runs in the background (``Tasks``: tasks the
pool's ``close()`` waits for; worker threads in ``Pool``). Cancellation never leaves a
connection in two hands or in none: a waiter cancelled after being served gives the
connection back, a commit on return is shielded, and the rest of a return does not
``await`` at all.

The sessions it lends get a ``Port`` (``session.Owner``): give back, reclaim, reopen,
adopt, lost. Nothing else of the pool is theirs, and the pool never touches a proxy: it
deals with the ``Lease`` behind it.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from .. import events, metrics
from .._acompat import (
    OPENS_AT_ONCE,
    Blocking,
    Event,
    Tasks,
    Waiter,
    anywhere,
    blocking_refused,
    no_loop,
    shield,
    sleep,
)
from .._retry import ConnectFailure
from .._retry._async_engine import cancel_aware
from .._retry._budget import RetryBudget
from .._retry._classify import classify
from .._retry._engine import RetryDetails, Runner
from .._retry._policy import Retry
from ..drivers import load_driver
from ..dsn import ConnectionSpec
from ..errors import PoolError
from ..net import Keepalive, Liveness
from ..session import Connection, Lease, lease_of
from ..session._log import SessionLog
from ..session._proxy import timed
from ..vocab import Fault, TxStatus
from ._core import PoolCore, Port, connect_error, scrub
from ._hooks import Hook, Hooks, finish_hook, hook_name, split
from ._leaks import LeakWatch
from ._opening import connect_with_retry, open_lease
from ._outage import MAX_DELAY_S, MIN_DELAY_S
from ._state import Plan, PoolState, Slot
from ._transaction import run_transaction, transactional

log = logging.getLogger("tether.pool")
_names = itertools.count(1)
T = TypeVar("T")
P = ParamSpec("P")


class Pool(PoolCore, Blocking):
    """A pool of database connections that only hands out connections that work.

    ``dsn`` is a URL or an ADO connection string (see ``tether.dsn``); settings given
    here win over those in the string, which win over the defaults. ``with
    Pool(dsn) as pool:`` starts and closes it; ``postgresql://`` uses psycopg's
    ``Connection``, and a URL's ``+driver`` picks another driver.
    """

    def __init__(
        self,
        dsn: str | ConnectionSpec,
        *,
        name: str | None = None,
        driver: str | None = None,
        min_size: int | None = None,
        max_size: int | None = None,
        timeout: float = 30.0,
        max_lifetime: float | None = None,
        max_idle: float = 600.0,
        validate_after_idle: float | None = 30.0,
        ping_timeout: float = 5.0,
        reset_timeout: float = 10.0,
        command_timeout: float | None = None,
        connect_retry_count: int | None = None,
        connect_retry_interval: float | None = None,
        login_timeout: float | None = None,
        connect_retry: Retry | None = None,
        blocking_period: str | None = None,
        blocking_after: int = 2,
        reconnect_min_delay: float = MIN_DELAY_S,
        reconnect_max_delay: float = MAX_DELAY_S,
        keepalive: Keepalive | None = None,
        reset: str | Hook = "auto",
        configure: Hook | None = None,
        check: Hook | None = None,
        kwargs: dict[str, Any] | None = None,
        autocommit: bool = False,
        maintenance_interval: float = 1.0,
        leak_detection_threshold: float | None = None,
        retry_budget: RetryBudget | None = None,
        reconnect_budget: RetryBudget | None = None,
        open: bool | None = None,
    ):
        """``open``: start the pool now, or at its first use; None starts a threaded pool
        now and an asyncio one at its first use (it may be made before its loop runs)."""
        self._setup(
            dsn,
            name=name or f"pool-{next(_names)}",
            driver=driver,
            load=load_driver,
            autocommit=autocommit,
            retry_budget=retry_budget,
            reconnect_budget=reconnect_budget,
            opens=open,
            settings={
                "min_size": min_size,
                "max_size": max_size,
                "timeout": timeout,
                "max_lifetime": max_lifetime,
                "max_idle": max_idle,
                "validate_after_idle": validate_after_idle,
                "ping_timeout": ping_timeout,
                "reset_timeout": reset_timeout,
                "command_timeout": command_timeout,
                "connect_retry_count": connect_retry_count,
                "connect_retry_interval": connect_retry_interval,
                "login_timeout": login_timeout,
                "connect_retry": connect_retry,
                "blocking_period": blocking_period,
                "blocking_after": blocking_after,
                "reconnect_min_delay": reconnect_min_delay,
                "reconnect_max_delay": reconnect_max_delay,
                "keepalive": keepalive,
                "reset": reset,
                "configure": configure,
                "check": check,
                "kwargs": kwargs,
                "maintenance_interval": maintenance_interval,
                "leak_detection_threshold": leak_detection_threshold,
            },
        )
        self.spec, extra = split(self.spec, kwargs)
        self._hooks = Hooks(configure=configure, reset=None if isinstance(reset, str) else reset,
                            check=check, kwargs=extra)
        self._check = check
        self._lazy_reset = self._lazy_reset and self._hooks.reset is None  # a reset hook runs every time
        self._lock = threading.Lock()
        self._tasks = Tasks(self.name, max_threads=max(2, self.config.max_size))
        self._stop = Event()
        self._loop: Any = None
        self._started = False
        self._resets_due: dict[int, tuple[float, Slot]] = {}  # resets to sever when overdue
        self._leaks = LeakWatch() if self.config.leak_detection_threshold is not None else None
        self._port = Port(self.name, self.spec.redacted(), give_back=self._give_back,
                          reclaim=self._reclaimed.append, reopen=self._reopen, adopt=self._adopt,
                          lost=self._lost)
        if OPENS_AT_ONCE if open is None else open:
            self._start()

    # -- life cycle --------------------------------------------------------------------------

    @anywhere
    def open(self) -> None:
        """Start the maintenance, which opens ``min_size`` connections."""
        self._start()

    def _start(self) -> None:
        loop = no_loop()
        with self._lock:
            started, self._started = self._started, True
            if not started:
                self._loop = loop
        if not started:
            metrics.register(self)
            self._tasks.daemon(self._maintain_loop)
        elif self._loop is not loop:
            raise PoolError(f"pool {self.name!r} belongs to another event loop", pool=self.name)

    def _after_fork(self) -> None:
        """In a forked child, before anything runs there (``_fork``): the parent's
        connections were abandoned; this pool starts afresh, its threads or tasks started
        again at first use. No I/O here."""
        closed = self._state.closed
        self._lock = threading.Lock()
        self._state = PoolState(self.config, budget=self._reconnect_budget, started_at=time.monotonic())
        self._state.closed = closed
        self._tasks = Tasks(self.name, max_threads=max(2, self.config.max_size))
        self._stop = Event()
        self._loop = None
        self._started = closed
        self._resets_due.clear()
        self._reclaimed.clear()
        if self._leaks is not None:
            self._leaks.clear()

    @anywhere
    def wait(self, timeout: float = 30.0) -> None:
        """Wait until ``min_size`` connections are open; raise the connect error if not."""
        self._start()
        deadline = time.monotonic() + timeout
        state = self._state
        while True:
            with self._lock:
                ready = len(state.idle) + state.busy >= self.config.min_size
                error = state.last_connect_error
            if ready:
                return
            if time.monotonic() >= deadline:
                raise self._timeout_error(
                    f"pool {self.name!r} did not reach min_size={self.config.min_size} "
                    f"within {timeout:.1f} s",
                    pool=self.name,
                    waited=timeout,
                    last_connect_error=error,
                ) from error
            sleep(0.01)  # start-up only: poll rather than add an event to every open

    @anywhere
    def close(self, timeout: float = 5.0) -> None:
        """Close idle connections now and busy ones when they come back.

        Shielded: a caller cancelled meanwhile does not stop the pool from closing.
        """
        shield(self._close, timeout)

    def _close(self, timeout: float) -> None:
        with self._lock:
            plan = self._state.close(self._closed_error(f"pool {self.name!r} is closed", pool=self.name))
        self._stop.set()
        self._carry_out(plan)
        self._tasks.finish(timeout)  # resets, closes and opens finishing; the maintenance
        metrics.unregister(self)

    def __enter__(self) -> Pool:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def clear(self) -> None:
        """Retire every connection: idle ones now, busy ones when returned (ClearPool)."""
        with self._lock:
            plan = self._state.clear()
        self._carry_out(plan)

    # -- borrowing ---------------------------------------------------------------------------

    def connection(self, timeout: float | None = None) -> Borrow:
        """``with pool.connection() as conn:``; commits on success, rolls back on error."""
        return Borrow(self, timeout)

    @anywhere
    def getconn(self, timeout: float | None = None) -> Connection:
        """Borrow a connection; give it back with ``conn.close()`` or ``putconn``."""
        return self._getconn(timeout)

    @anywhere
    def putconn(self, conn: Connection) -> None:
        """Give back a connection from ``getconn``: any open transaction is rolled back.

        A connection this pool did not lend is refused (``PoolError``), and nothing changes."""
        lease = lease_of(conn) if isinstance(conn, Connection) else None
        if lease is None:
            raise self._misuse_error(f"pool {self.name!r} takes back only the connections it lent, "
                                     f"not a {type(conn).__name__}", pool=self.name)  # fmt: skip
        if lease.owner is not self._port:
            owner = "no pool" if lease.owner.name is None else f"pool {lease.owner.name!r}"
            raise self._misuse_error(f"pool {self.name!r} did not lend this connection: it came from "
                                     f"{owner}, to {lease.owner.target}", pool=self.name)  # fmt: skip
        conn.close()

    def _getconn(self, timeout: float | None) -> Connection:
        if not self._started:
            self._start()
        timeout = self.config.timeout if timeout is None else timeout
        deadline = None
        state = self._state
        while True:
            now = time.monotonic()
            with self._lock:
                if state.closed:
                    raise self._closed_error(f"pool {self.name!r} is closed", pool=self.name)
                slot, plan = state.checkout(now)
            if plan is not None:
                self._carry_out(plan)
            if slot is None:
                deadline = deadline or now + timeout
                slot = self._wait(deadline, timeout)
            # The zero-round-trip check, inlined: this is the hot path.
            lease = slot.lease
            probe = lease.probe
            try:
                alive = (
                    probe is not None
                    and not (self._reads_ahead and self._driver.is_closed(lease.raw))
                    and probe.quiet()
                    and (self._ping_after is None or now - slot.idle_since <= self._ping_after)
                ) or self._alive(slot, now)
                check = self._check  # the opt-in checkout hook
                if alive and (check is None or self._hook("check", check, lease.raw) is None):
                    conn = Connection(lease, SessionLog(self._exact_status) if self._resilient else None)
                    if self._leaks is not None:
                        self._leaks.lent(slot, lease.epoch, now)
                    return conn
            except BaseException:
                self._discard(slot, "interrupted")  # mid-ping: the session's state is unknown
                raise
            self._discard(slot, "failed_checkout_check")

    def _wait(self, deadline: float, timeout: float) -> Slot:
        refused = blocking_refused()
        if refused is not None:
            raise self._misuse_error(f"pool {self.name!r} {refused}", pool=self.name)
        waiter = Waiter()
        started = time.monotonic()
        with self._lock:
            plan = self._state.wait(waiter, started)
        self._carry_out(plan)
        try:
            waiter.wait(deadline - time.monotonic())
        except BaseException:  # cancelled, or a signal handler's exception
            self._abandon(waiter)
            raise
        if waiter.slot is None and waiter.error is None:
            with self._lock:
                gave_up = self._state.give_up(waiter)  # False: served just now, take it
                error = self._wait_timeout(timeout) if gave_up else None
            if error is not None:
                self._announce(logging.DEBUG, events.PoolTimedOut(self.name, timeout, error.idle, error.busy,
                               error.waiting), "pool %r: %s", self.name, error)  # fmt: skip
                raise error
        if waiter.error is not None:
            raise self._failed_wait(waiter.error)
        slot: Slot | None = waiter.slot
        assert slot is not None
        with self._lock:
            self._state.waited(time.monotonic() - started)
        return slot

    def _abandon(self, waiter: Waiter) -> None:
        """The waiting caller was interrupted: leave the queue, or give back what came."""
        with self._lock:
            self._state.give_up(waiter)
            slot = waiter.slot
            plan = self._state.checkin(slot, time.monotonic()) if slot is not None else None
        self._carry_out(plan)

    def _alive(self, slot: Slot, now: float) -> bool:
        """The zero-round-trip check; a ping only where the socket cannot tell."""
        lease = slot.lease
        if self._driver.is_closed(lease.raw):
            return False
        probe = lease.probe
        if probe is not None:
            liveness = probe.check()
            if liveness is Liveness.CLOSED:
                return False
            if liveness is Liveness.DATA:
                if self._dialect.idle_bytes_mean_dead(probe.peek()[1]):
                    return False
                return self._ping(slot)
        limit = self.config.validate_after_idle
        if limit is not None and now - slot.idle_since > limit:
            return self._ping(slot)
        return True

    def _ping(self, slot: Slot) -> bool:
        with self._lock:
            self._state.counters.pings += 1
        timeout = self.config.ping_timeout
        if self._driver.ping(slot.lease.raw, self._dialect.ping_sql, timeout_s=timeout):
            return True
        log.warning("discarding %r of pool %r: no answer to a ping within %.1f s", slot, self.name, timeout)
        return False

    def _discard(self, slot: Slot, reason: str) -> None:
        self._announce(logging.DEBUG, events.ConnectionDiscarded(self.name, slot.number, reason),
                       "discarding %r of pool %r: %s", slot, self.name, events.REASONS[reason])
        with self._lock:
            plan = self._state.discard(slot, time.monotonic())
        self._carry_out(plan)

    # -- units of work -----------------------------------------------------------------------

    def transaction(
        self,
        fn: Callable[[Connection], T],
        *,
        retry: Retry | int | bool | None = None,
        on_retry: Callable[[RetryDetails], object] | None = None,
        timeout: float | None = None,
    ) -> T:
        """Run ``fn(conn)`` in one transaction, committed when it returns.

        The whole function runs again on CONNECT and TRANSIENT faults, and after a
        broken connection anywhere before COMMIT; a COMMIT whose reply was lost is
        resolved, never re-sent (``tether.CommitOutcomeUnknown`` when it cannot be).
        ``retry`` is a ``tether.Retry`` (default: exponential, 7 attempts), an int of
        attempts, or False. Retries draw on the pool's retry budget. Cancelling the
        calling task cancels the unit: it is never retried, and an error raised while the
        task is being cancelled is final.
        """
        runner = Runner(
            retry,
            classify=cancel_aware(None),
            on_retry=on_retry,
            budget=self.retry_budget,
            name=getattr(fn, "__qualname__", "transaction"),
        )
        runner.owner = self  # counts the retries, and tells the subscribers
        return run_transaction(self, fn, runner, timeout=timeout)

    def transactional(
        self,
        retry: Retry | int | bool | None = None,
        *,
        on_retry: Callable[[RetryDetails], object] | None = None,
        timeout: float | None = None,
    ) -> Callable[[Callable[Concatenate[Connection, P], T]], Callable[P, T]]:
        """``@pool.transactional(...)``: the decorated ``fn(conn, ...)`` runs as a
        ``transaction``; callers leave ``conn`` out."""
        return transactional(self, retry=retry, on_retry=on_retry, timeout=timeout)

    # -- giving back (the Port) -----------------------------------------------------------------

    def _give_back(self, lease: Lease, *, commit: bool) -> None:
        slot: Slot | None = lease.token
        if slot is None:  # lent before this process forked: abandoned (``_fork``)
            return
        # self._status(lease), inlined: the hot path
        status = TxStatus.BROKEN if lease.lost is not None else self._driver.tx_status(lease.raw)
        if status is TxStatus.IDLE and not lease.changes and not lease.saved and self._lazy_reset:
            with self._lock:  # the hot path: clean, idle, nothing to put back
                plan = self._state.checkin(slot, time.monotonic())
            if plan is not None:
                self._carry_out(plan)
        elif commit and status is TxStatus.IN_TRANSACTION and not lease.quiet:
            # The caller must learn the outcome, but a cancelled caller must not leave
            # COMMIT half-done: it runs in its own task, which also finishes the return.
            error = self._tasks.shielded(self._commit_and_return, slot)
            if error is not None:
                raise error
        else:
            # Quiet (the server said it wrote nothing): its COMMIT cannot fail but with the
            # connection, so it goes to the background reset, as a rollback does.
            self._take_back(slot, status, commit=commit and lease.quiet)

    def _commit_and_return(self, slot: Slot) -> BaseException | None:
        error: BaseException | None = None
        try:
            lease = slot.lease
            timed(lease, lease.command_timeout, None, self._driver.commit, lease.raw)
        except BaseException as exc:  # CancelledError too (only the pool's close does that)
            error = exc
        self._take_back(slot, self._status(slot.lease))
        if error is not None and not isinstance(error, Exception):
            raise error
        return error

    def _status(self, lease: Lease) -> TxStatus:
        return TxStatus.BROKEN if lease.lost is not None else self._driver.tx_status(lease.raw)

    def _take_back(self, slot: Slot, status: TxStatus, *, commit: bool = False) -> None:
        """The rest of a return, without an await: nothing can interrupt it. ``commit``: end
        the open transaction with COMMIT (one that wrote nothing) rather than ROLLBACK."""
        lease = slot.lease
        changes, saved = lease.changes, lease.saved
        if status is TxStatus.BROKEN or status is TxStatus.ACTIVE:  # a lost session: never reused
            self._discard(slot, "broken_on_return")
        elif status is TxStatus.IDLE and not changes and not saved and self._lazy_reset:
            with self._lock:
                plan = self._state.checkin(slot, time.monotonic())
            if plan is not None:
                self._carry_out(plan)
        else:
            with self._lock:
                self._state.begin_reset()
            self._tasks.spawn(self._reset, slot, status, changes, saved, commit)

    def _reset(self, slot: Slot, status: TxStatus, changes: tuple[str, ...],
                     saved: dict[str, Any] | None, commit: bool = False) -> None:
        """Off the caller's path: end the transaction (roll back, or commit one that wrote
        nothing, so its NOTIFYs still go out), restore client settings, reset the session.

        A reset over a path that stopped forwarding would wait for ever (cancelling the
        driver's call would wait again, for a cancel request over the same path); the
        maintenance severs the socket of a reset that outlives ``reset_timeout``, which
        ends it with an error.
        """
        lease, driver = slot.lease, self._driver
        raw = lease.raw
        if lease.probe is not None:
            with self._lock:
                self._resets_due[slot.number] = (time.monotonic() + self.config.reset_timeout, slot)
        ok = False
        try:
            if commit and status is TxStatus.IN_TRANSACTION:
                driver.commit(raw)
            elif status is not TxStatus.IDLE:
                driver.rollback(raw)
            if saved:
                driver.restore(raw, saved)  # PyMySQL: autocommit is a method
            ok = True
            if changes or self.config.reset == "always":
                log.debug("resetting %r of pool %r after: %s", slot, self.name, ", ".join(changes))
                ok = driver.reset(raw, changes)
                # The session reset undid what configure set on the server: set it again.
                configure = self._hooks.configure
                ok = ok and (configure is None or self._hook("configure", configure, raw) is None)
            ok = ok and driver.tx_status(raw) is TxStatus.IDLE
            if ok and self._hooks.reset is not None:
                ok = self._hook("reset", self._hooks.reset, raw) is None
        except Exception as exc:
            self._announce(logging.WARNING, events.ResetFailed(self.name, slot.number, type(exc).__name__),
                           "discarding %r of pool %r: reset failed: %s", slot, self.name, exc)
            ok = False
        finally:
            now = time.monotonic()
            with self._lock:
                self._resets_due.pop(slot.number, None)
                self._state.end_reset()
                plan = self._state.checkin(slot, now) if ok else self._state.discard(slot, now)
            if not ok:
                discarded = events.ConnectionDiscarded(self.name, slot.number, "reset_failed")
                self._announce(logging.DEBUG, discarded, "discarded %r of pool %r: its reset failed",
                               slot, self.name)
            self._carry_out(plan)

    # -- idle resiliency (the Port) ------------------------------------------------------------

    def _reopen(self) -> Lease:
        """A new connection for a session that broke while idle, under connect retry."""
        result = connect_with_retry(self._connect_once, self._recovery_retry)
        if isinstance(result, ConnectFailure):
            raise connect_error(self._driver, self.spec, result, pool=self.name)
        return result

    def _adopt(self, lease: Lease, new: Lease, *, elapsed_s: float, replayed: str) -> None:
        """The session was rebuilt on ``new``'s connection: it takes the old one's place,
        in the same slot (the pool's accounting does not change)."""
        slot: Slot = lease.token
        old = lease.raw
        lease.raw, lease.probe = new.raw, new.probe
        slot.created_at = time.monotonic()
        with self._lock:
            counters = self._state.counters
            counters.recovered += 1
            counters.hard_connects += 1
            counters.hard_disconnects += 1
        self._announce(logging.INFO, events.SessionRecovered(self.name, slot.number, elapsed_s, replayed),
                       "pool %r: %r broke while idle; session restored on a new connection in %.1f ms "
                       "(replayed: %s)", self.name, slot, elapsed_s * 1000, replayed)
        self._tasks.soon(self._driver.close, old)

    def _lost(self, lease: Lease) -> None:
        # The session closed the dead connection; the pool discards it when it comes back.
        with self._lock:
            self._state.counters.sessions_lost += 1
        number = lease.token.number if lease.token is not None else lease.number
        self._announce(logging.WARNING, events.SessionLost(self.name, number, str(lease.lost)),
                       "pool %r: %s", self.name, lease.lost)

    # -- opening and closing -----------------------------------------------------------------

    def _carry_out(self, plan: Plan | None) -> None:
        if plan is None:
            return
        for slot in plan.close:
            self._tasks.soon(self._driver.close, slot.lease.raw)
        for waiter in plan.wake:
            waiter.wake()
        for _ in range(plan.open):
            self._tasks.spawn(self._open_one, plan.ticket, plan.delay)

    def _open_one(self, ticket: int, delay: float) -> None:
        """One open: a connection for the pool, or a failure the state learns from. During
        an outage it is the probe, which waits ``delay`` first (``close()`` cuts that short)."""
        state = self._state
        generation = state.generation
        try:
            if delay and self._stop.wait_for(delay):
                closed = self._closed_error(f"pool {self.name!r} is closed", pool=self.name)
                result: Lease | ConnectFailure = ConnectFailure(attempts=0, elapsed_s=0.0, cause=closed)
            else:  # during an outage one attempt: the probe schedule is the retry
                with self._lock:
                    recovering = state.recovering(time.monotonic())
                policy = self._probe_retry if recovering else self.config.connect_retry
                began = time.monotonic()
                result = connect_with_retry(self._connect_once, policy)
        except BaseException as exc:  # cancelled by close() (or a bug): the open did not happen
            self._open_failed(ConnectFailure(attempts=1, elapsed_s=0.0, cause=exc), ticket)
            raise
        if isinstance(result, ConnectFailure):
            self._open_failed(result, ticket)
            return
        now = time.monotonic()
        with self._lock:
            slot = Slot(lease=result, created_at=now, expires_at=state.new_expiry(now),
                        generation=generation, number=result.number)
            result.token = slot
            ended = state.outage
            plan = state.opened(slot, now)
            state.created(now - began)
        self._announce(logging.DEBUG, events.ConnectionOpened(self.name, slot.number, now - began),
                       "pool %r: opened %r in %.1f ms", self.name, slot, (now - began) * 1000)
        if ended is not None:
            self._announce(logging.INFO, events.PoolReconnected(self.name, ended.attempts, now - ended.since),
                           "pool %r: connected again after %d failed connect attempts in %.2f s",
                           self.name, ended.attempts, now - ended.since)
        self._carry_out(plan)

    def _open_failed(self, failure: ConnectFailure, ticket: int) -> None:
        """Tell the state; a fault that can heal keeps the waiters waiting (an outage),
        one that cannot (a wrong password, a name that does not resolve) fails them."""
        cause = failure.cause
        final = not isinstance(cause, Exception) or classify(cause).fault is Fault.FATAL
        state = self._state
        with self._lock:
            error = self._open_error(failure)
            closed, first = state.closed, state.outage is None
            periods = state.counters.blocking_periods
            plan = state.open_failed(error, time.monotonic(), attempts=failure.attempts,
                                     final=final or closed, blocking=self._blocks, ticket=ticket)
            blocked = state.counters.blocking_periods != periods
            block_s = state.blocked_until - time.monotonic()
        if not closed:  # an outage is told once, then when it ends; each probe at DEBUG
            spec = self.spec
            failed = events.ConnectFailed(self.name, spec.host or "", spec.port or 0, failure.attempts,
                                          failure.elapsed_s, str(error), final)
            self._announce(logging.WARNING if final or first else logging.DEBUG, failed,
                           "pool %r: %s", self.name, error)
        if blocked:
            self._announce(logging.WARNING, events.PoolBlocking(self.name, block_s),
                           "pool %r: blocking period: checkouts fail at once for %.1f s", self.name, block_s)
        self._carry_out(plan)

    def _connect_once(self, timeout_s: float) -> Lease:
        """One open, configured: for the pool, and for idle resiliency before its replay."""
        hooks = self._hooks
        lease = open_lease(
            self._driver,
            self.spec,
            timeout_s=timeout_s,
            keepalive=self.config.keepalive,
            autocommit=self._autocommit,
            owner=self._port,
            dialect=self._dialect,
            command_timeout=self.config.command_timeout,
            extra=hooks.kwargs or None,
        )
        if hooks.configure is not None:
            error = self._hook("configure", hooks.configure, lease.raw)
            if error is not None:  # never lent half-configured; the open failed (connect retry)
                self._driver.close(lease.raw)
                raise error
        return lease

    def _hook(self, name: str, hook: Hook, raw: Any) -> Exception | None:
        """Run one hook on the driver's connection; its error (logged, counted) when it
        raised or left a transaction open: the caller discards the connection."""
        try:
            finish_hook(hook(raw))
            status = self._driver.tx_status(raw)
            if status is not TxStatus.IDLE:
                raise self._misuse_error(f"the {name} hook left the connection {status.name}", pool=self.name)
        except Exception as exc:
            with self._lock:
                self._state.counters.hook_failures += 1
            log.warning("pool %r: %s hook %s failed, discarding the connection: %s: %s", self.name, name,
                        hook_name(hook), type(exc).__name__, scrub(str(exc), self.spec))
            return exc
        return None

    # -- maintenance -------------------------------------------------------------------------

    def _maintain_loop(self) -> None:
        while True:
            try:
                self._maintain_once()
            except Exception:
                log.exception("pool %r: maintenance failed", self.name)
            if self._stop.wait_for(self.config.maintenance_interval):
                return

    def _maintain_once(self) -> None:
        while self._reclaimed:
            lease = self._reclaimed.popleft()
            if lease.token is None:  # abandoned after a fork
                continue
            site = self._leaks.site(lease.token) if self._leaks is not None else ""
            self._announce(logging.WARNING, events.ConnectionReclaimed(self.name, lease.token.number, site),
                           "pool %r: reclaiming a connection that was never closed%s", self.name,
                           f"; it was borrowed at:\n{site}" if site else "")
            with self._lock:
                self._state.counters.reclaimed += 1
            self._take_back(lease.token, self._status(lease))
        now = time.monotonic()
        with self._lock:
            plan = self._state.maintain(now)
            idle = list(self._state.idle)
            overdue = [slot for due, slot in self._resets_due.values() if due <= now]
        self._carry_out(plan)
        if self._leaks is not None:
            self._sweep_leaks(now)
        for slot in overdue:
            probe = slot.lease.probe
            if probe is not None and not self._driver.is_closed(slot.lease.raw):
                log.warning("pool %r: the reset of %r is stuck; severing its socket", self.name, slot)
                probe.sever()
        for slot in idle:  # the zero-round-trip sweep: replace dead idle ones early
            if self._idle_dead(slot):
                with self._lock:
                    plan = self._state.remove_idle(slot, now)
                if plan:
                    self._announce(logging.DEBUG, events.ConnectionDiscarded(self.name, slot.number,
                                   "dead_while_idle"), "discarding %r of pool %r: %s", slot, self.name,
                                   events.REASONS["dead_while_idle"])  # fmt: skip
                self._carry_out(plan)

    def _sweep_leaks(self, now: float) -> None:
        """Borrows held past ``leak_detection_threshold``: a WARNING each, once; an INFO
        when one comes back (seen at the next sweep)."""
        assert self._leaks is not None and self.config.leak_detection_threshold is not None
        suspected, ended = self._leaks.sweep(now, self.config.leak_detection_threshold)
        if suspected:
            with self._lock:
                self._state.counters.leaks_suspected += len(suspected)
        for borrow in suspected:
            held, site = now - borrow.since, borrow.site()
            self._announce(logging.WARNING, events.LeakSuspected(self.name, borrow.number, held, site),
                           "pool %r: %r has been borrowed for %.1f s (leak_detection_threshold): "
                           "borrowed at:\n%s", self.name, borrow.slot, held, site)
        for borrow in ended:
            held = now - borrow.since
            self._announce(logging.INFO, events.LeakEnded(self.name, borrow.number, held),
                           "pool %r: %r came back after at most %.1f s", self.name, borrow.slot, held)

    def _idle_dead(self, slot: Slot) -> bool:
        lease: Lease = slot.lease
        return self._driver.is_closed(lease.raw) or lease.idle_break()


class Borrow(Blocking):
    """``with pool.connection() as conn:``; a class rather than a generator: it is faster."""

    __slots__ = ("_conn", "_pool", "_timeout")

    def __init__(self, pool: Pool, timeout: float | None):
        self._pool = pool
        self._timeout = timeout
        self._conn: Connection | None = None

    def __enter__(self) -> Connection:
        conn = self._conn = self._pool._getconn(self._timeout)
        return conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        conn = self._conn
        if conn is not None:
            self._conn = None
            conn.__exit__(exc_type, exc, tb)
