"""The pool for threads: a lock around ``PoolState``, and the I/O its plans ask for."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from .. import metrics
from ..drivers import load_driver
from ..dsn import ConnectionSpec
from ..net import Keepalive, Liveness, SocketProbe
from ..retry import ConnectFailure, connect_with_retry
from ..retry._budget import RetryBudget
from ..retry._engine import RetryDetails, Runner
from ..retry._policy import Retry
from ..session import Connection
from ..session._log import SessionLog
from ..session._tracking import write_setting
from ..sql import TxStatus
from ._borrow import Borrow, Waiter, asyncio_loop_running
from ._core import PoolCore
from ._opening import connect_error, open_slot
from ._state import Plan, Slot
from ._transaction import run_transaction, transactional
from ._workers import Workers

log = logging.getLogger("tether.pool")
_names = itertools.count(1)
P = ParamSpec("P")
T = TypeVar("T")


class Pool(PoolCore):
    """A pool of database connections that only hands out connections that work.

    ``dsn`` is a URL or an ADO connection string (see ``tether.dsn``); settings given
    here win over those in the string, which win over the defaults.
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
        connect_retry_count: int | None = None,
        connect_retry_interval: float | None = None,
        login_timeout: float | None = None,
        connect_retry: Retry | None = None,
        blocking_period: str | None = None,
        blocking_after: int = 2,
        keepalive: Keepalive | None = None,
        reset: str = "auto",
        autocommit: bool = False,
        maintenance_interval: float = 1.0,
        retry_budget: RetryBudget | None = None,
        open: bool = True,
    ):
        self._setup(
            dsn,
            name=name or f"pool-{next(_names)}",
            driver=driver,
            load=load_driver,
            autocommit=autocommit,
            retry_budget=retry_budget,
            settings={
                "min_size": min_size,
                "max_size": max_size,
                "timeout": timeout,
                "max_lifetime": max_lifetime,
                "max_idle": max_idle,
                "validate_after_idle": validate_after_idle,
                "ping_timeout": ping_timeout,
                "reset_timeout": reset_timeout,
                "connect_retry_count": connect_retry_count,
                "connect_retry_interval": connect_retry_interval,
                "login_timeout": login_timeout,
                "connect_retry": connect_retry,
                "blocking_period": blocking_period,
                "blocking_after": blocking_after,
                "keepalive": keepalive,
                "reset": reset,
                "maintenance_interval": maintenance_interval,
            },
        )
        self._lock = threading.Lock()
        self._resets_due: dict[int, tuple[float, Slot]] = {}
        self._stop = threading.Event()
        self._workers = Workers(self.name, max_threads=max(2, self.config.max_size))
        self._maintenance: threading.Thread | None = None
        if open:
            self.open()

    # -- life cycle --------------------------------------------------------------------------

    def open(self) -> None:
        """Start the maintenance thread, which opens ``min_size`` connections."""
        if self._maintenance is not None:
            return
        metrics.register(self)
        self._maintenance = threading.Thread(
            target=self._maintain_loop, name=f"tether-{self.name}-maintenance", daemon=True
        )
        self._maintenance.start()

    def wait(self, timeout: float = 30.0) -> None:
        """Block until ``min_size`` connections are open; raise the connect error if not."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                ready = len(self._state.idle) + self._state.busy >= self.config.min_size
                error = self._state.last_connect_error
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
            time.sleep(0.01)  # start-up only: poll rather than add a condition to every event

    def close(self, timeout: float = 5.0) -> None:
        """Close idle connections now and busy ones when they come back."""
        with self._lock:
            plan = self._state.close(self._closed_error(f"pool {self.name!r} is closed", pool=self.name))
        self._stop.set()
        self._carry_out(plan)
        thread = self._maintenance
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        metrics.unregister(self)

    def __enter__(self) -> Pool:
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

    def getconn(self, timeout: float | None = None) -> Connection:
        """Borrow a connection; give it back with ``conn.close()`` or ``putconn``."""
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
            probe = slot.probe
            try:
                if (
                    probe is not None
                    and probe.quiet()
                    and (self._ping_after is None or now - slot.idle_since <= self._ping_after)
                ) or self._alive(slot, now):
                    session = SessionLog(self._exact_status) if self._resilient else None
                    return Connection(self, slot, self._dialect, self._driver, session)
            except BaseException:
                self._discard(slot)  # interrupted mid-ping: the session's state is unknown
                raise
            self._discard(slot)

    def putconn(self, conn: Connection) -> None:
        """Give back a connection from ``getconn``: any open transaction is rolled back."""
        self.give_back(conn, commit=False)

    def _wait(self, deadline: float, timeout: float) -> Slot:
        if asyncio_loop_running():
            raise self._misuse_error(
                f"pool {self.name!r} would block the event loop waiting for a connection: "
                "from a coroutine, use tether.AsyncPool",
                pool=self.name,
            )
        waiter = Waiter()
        with self._lock:
            plan = self._state.wait(waiter, time.monotonic())
        self._carry_out(plan)
        remaining = deadline - time.monotonic()
        try:
            served = waiter.lock.acquire(timeout=max(remaining, 0.0))
        except BaseException:  # KeyboardInterrupt, a signal handler's exception
            self._abandon(waiter)
            raise
        if not served:
            with self._lock:
                gave_up = self._state.give_up(waiter)
                error = self._wait_timeout(timeout) if gave_up else None
            if error is not None:
                raise error
        if waiter.error is not None:
            raise self._failed_wait(waiter.error)
        assert waiter.slot is not None
        return waiter.slot

    def _abandon(self, waiter: Waiter) -> None:
        """The waiting thread was interrupted: leave the queue, or give back what came."""
        with self._lock:
            self._state.give_up(waiter)
            slot = waiter.slot
            plan = self._state.checkin(slot, time.monotonic()) if slot is not None else None
        self._carry_out(plan)

    def _alive(self, slot: Slot, now: float) -> bool:
        """The zero-round-trip check; a ping only where the socket cannot tell."""
        probe = slot.probe
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
        if self._driver.ping(slot.raw, self._dialect.ping_sql, timeout_s=timeout):
            return True
        log.warning("discarding %r of pool %r: no answer to a ping within %.1f s", slot, self.name, timeout)
        return False

    def _discard(self, slot: Slot) -> None:
        log.debug("discarding dead %r of pool %r", slot, self.name)
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
        attempts, or False. Retries draw on the pool's retry budget.
        """
        runner = Runner(
            retry,
            on_retry=on_retry,
            budget=self.retry_budget,
            name=getattr(fn, "__qualname__", "transaction"),
        )
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

    # -- giving back (the proxy's Owner protocol) --------------------------------------------

    def give_back(self, conn: Connection, *, commit: bool) -> None:
        attrs = conn.__dict__  # conn.detach(), inlined on the hot path
        slot: Slot | None = attrs["_slot"]
        if slot is None:
            return
        attrs["_slot"] = attrs["_raw"] = None
        raw = slot.raw
        status = self._driver.tx_status(raw)
        error: BaseException | None = None
        if commit and status is TxStatus.IN_TRANSACTION:
            try:
                raw.commit()  # the caller must learn the outcome: never in the background
            except BaseException as exc:
                error = exc
            status = self._driver.tx_status(raw)
        if status is TxStatus.BROKEN or status is TxStatus.ACTIVE:
            self._discard(slot)
        elif status is TxStatus.IDLE and not conn.changes and not conn.saved and self._lazy_reset:
            with self._lock:
                plan = self._state.checkin(slot, time.monotonic())
            if plan is not None:
                self._carry_out(plan)
        else:
            with self._lock:
                self._state.begin_reset()
            self._workers.submit(self._reset, slot, status, conn.changes, conn.saved)
        if error is not None:
            raise error

    def _reset(self, slot: Slot, status: TxStatus, changes: tuple[str, ...], saved: Any) -> None:
        """Off the caller's path: roll back, restore client settings, reset the session.

        A reset over a path that stopped forwarding would block for ever (or until
        TCP_USER_TIMEOUT on a real network); the maintenance thread severs the socket of
        a reset that outlives ``reset_timeout``, which ends it with an error.
        """
        raw = slot.raw
        if slot.probe is not None:
            with self._lock:
                self._resets_due[slot.number] = (time.monotonic() + self.config.reset_timeout, slot)
        try:
            if status is not TxStatus.IDLE:
                raw.rollback()
            for attr, value in (saved or {}).items():
                write_setting(raw, attr, value)  # PyMySQL: autocommit is a method
            ok = True
            if changes or self.config.reset == "always":
                log.debug("resetting %r of pool %r after: %s", slot, self.name, ", ".join(changes))
                ok = self._driver.reset(raw, changes)
            ok = ok and self._driver.tx_status(raw) is TxStatus.IDLE
        except Exception as exc:
            log.warning("discarding %r of pool %r: reset failed: %s", slot, self.name, exc)
            ok = False
        now = time.monotonic()
        with self._lock:
            self._resets_due.pop(slot.number, None)
            self._state.end_reset()
            plan = self._state.checkin(slot, now) if ok else self._state.discard(slot, now)
        if plan is not None:
            self._carry_out(plan)

    # -- idle resiliency (the proxy's Owner protocol) ---------------------------------------

    def reopen(self, conn: Connection) -> Slot:
        """A new connection for a session that broke while idle, under connect retry."""
        result = connect_with_retry(self._connect_once, self._recovery_retry)
        if isinstance(result, ConnectFailure):
            raise connect_error(self._driver, self.spec, result, pool=self.name)
        return result

    def swap(self, conn: Connection, new: Slot, *, elapsed_s: float, replayed: str) -> None:
        self._driver.close(self._swapped(conn, new, elapsed_s=elapsed_s, replayed=replayed))

    def drop(self, new: Slot) -> None:
        self._driver.close(new.raw)

    def lost(self, conn: Connection) -> None:
        slot = conn._slot
        if slot is not None:
            self._driver.close(slot.raw)  # the pool discards it when it comes back
        with self._lock:
            self._state.counters.sessions_lost += 1
        log.warning("pool %r: %s", self.name, conn._lost)

    # -- opening and closing -----------------------------------------------------------------

    def _carry_out(self, plan: Plan | None) -> None:
        if plan is None:
            return
        for slot in plan.close:
            self._driver.close(slot.raw)
        for waiter in plan.wake:
            assert isinstance(waiter, Waiter)
            waiter.lock.release()
        for _ in range(plan.open):
            threading.Thread(
                target=self._open_one, args=(plan.ticket,), name=f"tether-{self.name}-open", daemon=True
            ).start()

    def _open_one(self, ticket: int) -> None:
        generation = self._state.generation
        try:
            result = connect_with_retry(self._connect_once, self.config.connect_retry)
        except BaseException as exc:  # never leave the state counting an open that died
            result = ConnectFailure(attempts=1, elapsed_s=0.0, cause=exc)
        now = time.monotonic()
        if isinstance(result, ConnectFailure):
            error = connect_error(self._driver, self.spec, result, pool=self.name)
            log.warning("pool %r: %s", self.name, error)
            with self._lock:
                plan = self._state.open_failed(error, now, blocking=self._blocks, ticket=ticket)
        else:
            result.generation = generation
            with self._lock:
                result.expires_at = self._state.new_expiry(now)
                plan = self._state.opened(result, now)
        self._carry_out(plan)

    def _connect_once(self, timeout_s: float) -> Slot:
        return open_slot(
            self._driver,
            self.spec,
            timeout_s=timeout_s,
            keepalive=self.config.keepalive,
            autocommit=self._autocommit,
        )

    # -- maintenance -------------------------------------------------------------------------

    def _maintain_loop(self) -> None:
        while True:
            try:
                self._maintain_once()
            except Exception:
                log.exception("pool %r: maintenance failed", self.name)
            if self._stop.wait(self.config.maintenance_interval):
                return

    def _maintain_once(self) -> None:
        while self._reclaimed:
            conn = self._reclaimed.popleft()
            log.warning("pool %r: reclaiming a connection that was never closed", self.name)
            with self._lock:
                self._state.counters.reclaimed += 1
            self.give_back(conn, commit=False)
        now = time.monotonic()
        with self._lock:
            plan = self._state.maintain(now)
            idle = list(self._state.idle)
            overdue = [slot for due, slot in self._resets_due.values() if due <= now]
        self._carry_out(plan)
        for slot in overdue:
            log.warning("pool %r: the reset of %r is stuck; severing its socket", self.name, slot)
            assert slot.probe is not None
            slot.probe.sever()
        for slot in idle:  # the zero-round-trip sweep: replace dead idle ones early
            if slot.probe is not None and self._idle_dead(slot.probe):
                with self._lock:
                    plan = self._state.remove_idle(slot, now)
                self._carry_out(plan)

    def _idle_dead(self, probe: SocketProbe) -> bool:
        liveness = probe.check()
        if liveness is Liveness.DATA:
            return self._dialect.idle_bytes_mean_dead(probe.peek()[1])
        return liveness is Liveness.CLOSED
