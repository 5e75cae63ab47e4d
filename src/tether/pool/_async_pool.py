"""The pool for asyncio: the same ``PoolState`` as ``tether.Pool``, driven from one loop.

Every decision (whom to serve, what to open, expire or close) is ``PoolState``'s; this
front end only carries the plans out. All of it runs on the pool's event loop, so the
state needs no lock: a method that does not ``await`` is atomic. Work that makes round
trips (opening, closing, resetting) runs in tasks the pool tracks and ``close()`` waits
for. Cancellation never leaves a connection in two hands or in none: a waiter cancelled
after being served gives the connection back, a commit on return is shielded, and the
rest of a return does not ``await`` at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, cast

from .. import metrics
from ..drivers._async_load import load_async_driver
from ..dsn import ConnectionSpec
from ..errors import PoolError
from ..net import Keepalive, Liveness
from ..retry import ConnectFailure
from ..retry._async_engine import cancel_aware
from ..retry._budget import RetryBudget
from ..retry._engine import RetryDetails, Runner
from ..retry._policy import Retry
from ..session._async_proxy import AsyncConnection
from ..session._log import SessionLog
from ..sql import TxStatus
from ._async_borrow import _AsyncBorrow, _needs_loop, _Waiter, _wake
from ._async_opening import connect_with_retry_async, open_slot_async
from ._core import PoolCore
from ._opening import connect_error
from ._state import Plan, Slot
from ._transaction_async import async_run_transaction, async_transactional

if TYPE_CHECKING:
    from ..drivers import Driver

log = logging.getLogger("tether.pool")
_names = itertools.count(1)
T = TypeVar("T")
P = ParamSpec("P")


class AsyncPool(PoolCore):
    """A pool of asyncio database connections that only hands out connections that work.

    The options, counters and behaviour of ``tether.Pool``. Use it inside a running loop:
    ``async with AsyncPool(dsn) as pool:`` or ``await pool.open()`` (the first checkout
    opens it too). ``postgresql://`` uses psycopg's ``AsyncConnection``;
    ``postgresql+asyncpg://`` uses asyncpg.
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
    ):
        self._setup(
            dsn,
            name=name or f"async-pool-{next(_names)}",
            driver=driver,
            load=load_async_driver,
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
        self._lock = contextlib.nullcontext()  # state is touched from the loop only
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._maintenance: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None

    # -- life cycle --------------------------------------------------------------------------

    @_needs_loop
    async def open(self) -> None:
        """Start the maintenance task, which opens ``min_size`` connections."""
        self._start()

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            metrics.register(self)
            self._maintenance = loop.create_task(self._maintain_loop(), name=f"tether-{self.name}")
        elif self._loop is not loop:
            raise PoolError(f"pool {self.name!r} belongs to another event loop", pool=self.name)

    @_needs_loop
    async def wait(self, timeout: float = 30.0) -> None:
        """Wait until ``min_size`` connections are open; raise the connect error if not."""
        self._start()
        deadline = time.monotonic() + timeout
        state = self._state
        while len(state.idle) + state.busy < self.config.min_size:
            if time.monotonic() >= deadline:
                error = state.last_connect_error
                raise self._timeout_error(
                    f"pool {self.name!r} did not reach min_size={self.config.min_size} "
                    f"within {timeout:.1f} s",
                    pool=self.name,
                    waited=timeout,
                    last_connect_error=error,
                ) from error
            await asyncio.sleep(0.01)  # start-up only: poll rather than add an event to every open

    @_needs_loop
    async def close(self, timeout: float = 5.0) -> None:
        """Close idle connections now and busy ones when they come back.

        Shielded: a caller cancelled meanwhile does not stop the pool from closing.
        """
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close(timeout))
        await asyncio.shield(self._closing)

    async def _close(self, timeout: float) -> None:
        plan = self._state.close(self._closed_error(f"pool {self.name!r} is closed", pool=self.name))
        self._carry_out(plan)
        if self._maintenance is not None:
            self._maintenance.cancel()
        deadline = time.monotonic() + timeout
        while self._tasks and time.monotonic() < deadline:  # resets, closes and opens finishing
            await asyncio.wait(set(self._tasks), timeout=max(deadline - time.monotonic(), 0.0))
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=1.0)
        metrics.unregister(self)

    async def __aenter__(self) -> AsyncPool:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __enter__(self) -> AsyncPool:
        raise TypeError("AsyncPool is used with 'async with'; from threads use tether.Pool")

    def __exit__(self, *exc: object) -> None:  # pragma: no cover - __enter__ refuses
        pass

    def clear(self) -> None:
        """Retire every connection: idle ones now, busy ones when returned (ClearPool)."""
        self._carry_out(self._state.clear())

    # -- borrowing ---------------------------------------------------------------------------

    def connection(self, timeout: float | None = None) -> _AsyncBorrow:
        """``async with pool.connection() as conn:``; commits on success, rolls back on error."""
        return _AsyncBorrow(self, timeout)

    @_needs_loop
    async def getconn(self, timeout: float | None = None) -> AsyncConnection:
        """Borrow a connection; give it back with ``await conn.close()`` or ``putconn``."""
        return await self._getconn(timeout)

    @_needs_loop
    async def putconn(self, conn: AsyncConnection) -> None:
        """Give back a connection from ``getconn``: any open transaction is rolled back."""
        await self.give_back(conn, commit=False)

    async def _getconn(self, timeout: float | None) -> AsyncConnection:
        if self._maintenance is None:
            self._start()
        timeout = self.config.timeout if timeout is None else timeout
        deadline = None
        state = self._state
        is_closed = self._driver.is_closed
        while True:
            now = time.monotonic()
            if state.closed:
                raise self._closed_error(f"pool {self.name!r} is closed", pool=self.name)
            slot, plan = state.checkout(now)
            if plan is not None:
                self._carry_out(plan)
            if slot is None:
                deadline = deadline or now + timeout
                slot = await self._wait(deadline, timeout)
            # The zero-round-trip check, inlined: this is the hot path.
            probe = slot.probe
            try:
                if (
                    probe is not None
                    and not is_closed(slot.raw)
                    and probe.quiet()
                    and (self._ping_after is None or now - slot.idle_since <= self._ping_after)
                ) or await self._alive(slot, now):
                    session = SessionLog(self._exact_status) if self._resilient else None
                    return AsyncConnection(self, slot, self._dialect, self._driver, session)
            except BaseException:
                self._discard(slot)  # cancelled mid-ping: the session's state is unknown
                raise
            self._discard(slot)

    async def _wait(self, deadline: float, timeout: float) -> Slot:
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop.create_future())
        self._carry_out(self._state.wait(waiter, time.monotonic()))
        timer = loop.call_later(max(deadline - time.monotonic(), 0.0), _wake, waiter.future)
        try:
            await waiter.future
        except BaseException:  # cancelled: leave the queue, or give back what came
            self._abandon(waiter)
            raise
        finally:
            timer.cancel()
        if waiter.slot is None and waiter.error is None and self._state.give_up(waiter):
            raise self._wait_timeout(timeout)
        if waiter.error is not None:
            raise self._failed_wait(waiter.error)
        assert waiter.slot is not None
        return waiter.slot

    def _abandon(self, waiter: _Waiter) -> None:
        self._state.give_up(waiter)
        if waiter.slot is not None:  # served just before the cancellation landed
            self._carry_out(self._state.checkin(waiter.slot, time.monotonic()))

    async def _alive(self, slot: Slot, now: float) -> bool:
        """The zero-round-trip check; a ping only where the socket cannot tell."""
        if self._driver.is_closed(slot.raw):
            return False
        probe = slot.probe
        if probe is not None:
            liveness = probe.check()
            if liveness is Liveness.CLOSED:
                return False
            if liveness is Liveness.DATA:
                if self._dialect.idle_bytes_mean_dead(probe.peek()[1]):
                    return False
                return await self._ping(slot)
        limit = self.config.validate_after_idle
        if limit is not None and now - slot.idle_since > limit:
            return await self._ping(slot)
        return True

    async def _ping(self, slot: Slot) -> bool:
        self._state.counters.pings += 1
        timeout = self.config.ping_timeout
        if await self._driver.ping(slot.raw, self._dialect.ping_sql, timeout_s=timeout):
            return True
        log.warning("discarding %r of pool %r: no answer to a ping within %.1f s", slot, self.name, timeout)
        return False

    def _discard(self, slot: Slot) -> None:
        log.debug("discarding dead %r of pool %r", slot, self.name)
        self._carry_out(self._state.discard(slot, time.monotonic()))

    # -- units of work -----------------------------------------------------------------------

    async def transaction(
        self,
        fn: Callable[[AsyncConnection], Awaitable[T]],
        *,
        retry: Retry | int | bool | None = None,
        on_retry: Callable[[RetryDetails], object] | None = None,
        timeout: float | None = None,
    ) -> T:
        """``await pool.transaction(fn)``: as ``tether.Pool.transaction``, for ``async def fn``.

        Cancelling the calling task cancels the unit: it is never retried, and an error
        raised while the task is being cancelled is final.
        """
        runner = Runner(
            retry,
            classify=cancel_aware(None),
            on_retry=on_retry,
            budget=self.retry_budget,
            name=getattr(fn, "__qualname__", "transaction"),
        )
        return await async_run_transaction(self, fn, runner, timeout=timeout)

    def transactional(
        self,
        retry: Retry | int | bool | None = None,
        *,
        on_retry: Callable[[RetryDetails], object] | None = None,
        timeout: float | None = None,
    ) -> Callable[[Callable[Concatenate[AsyncConnection, P], Awaitable[T]]], Callable[P, Awaitable[T]]]:
        """``@pool.transactional(...)`` for ``async def fn(conn, ...)``; callers leave ``conn`` out."""
        return async_transactional(self, retry=retry, on_retry=on_retry, timeout=timeout)

    # -- giving back (the proxy's AsyncOwner protocol) ---------------------------------------

    async def give_back(self, conn: AsyncConnection, *, commit: bool) -> None:
        slot = conn.detach()
        if slot is None:
            return
        if conn._lost is not None:  # its session broke and was not rebuilt: never reused
            self._discard(slot)
            return
        status = self._driver.tx_status(slot.raw)
        if commit and status is TxStatus.IN_TRANSACTION:
            # The caller must learn the outcome, but a cancelled caller must not leave
            # COMMIT half-done: it runs in its own task, which also finishes the return.
            task = self._spawn(self._commit_and_return(slot, conn.changes, conn.saved))
            error = await asyncio.shield(task)
            if error is not None:
                raise error
            return
        self._return(slot, status, conn.changes, conn.saved)

    async def _commit_and_return(
        self, slot: Slot, changes: tuple[str, ...], saved: dict[str, Any] | None
    ) -> BaseException | None:
        error: BaseException | None = None
        try:
            await self._driver.commit(slot.raw)
        except BaseException as exc:  # CancelledError too (only the pool's close does that)
            error = exc
        self._return(slot, self._driver.tx_status(slot.raw), changes, saved)
        if error is not None and not isinstance(error, Exception):
            raise error
        return error

    def _return(
        self, slot: Slot, status: TxStatus, changes: tuple[str, ...], saved: dict[str, Any] | None
    ) -> None:
        """The rest of a return, without an await: nothing can interrupt it."""
        if status is TxStatus.BROKEN or status is TxStatus.ACTIVE:
            self._discard(slot)
        elif status is TxStatus.IDLE and not changes and not saved and self._lazy_reset:
            plan = self._state.checkin(slot, time.monotonic())
            if plan is not None:
                self._carry_out(plan)
        else:
            self._state.begin_reset()
            self._spawn(self._reset(slot, status, changes, saved))

    async def _reset(
        self, slot: Slot, status: TxStatus, changes: tuple[str, ...], saved: dict[str, Any] | None
    ) -> None:
        """Off the caller's path: roll back, restore client settings, reset the session.

        A reset over a path that stopped forwarding would wait for ever, and cancelling
        the driver's call would wait again (for a cancel request over the same path);
        severing the socket after ``reset_timeout`` ends it with an error instead.
        """
        raw, driver = slot.raw, self._driver
        guard = None
        if slot.probe is not None:
            loop = asyncio.get_running_loop()
            guard = loop.call_later(self.config.reset_timeout, self._sever, slot)
        ok = False
        try:
            if status is not TxStatus.IDLE:
                await driver.rollback(raw)
            if saved:
                await driver.restore(raw, saved)
            if changes or self.config.reset == "always":
                log.debug("resetting %r of pool %r after: %s", slot, self.name, ", ".join(changes))
                for sql in self._dialect.reset_sql:
                    await driver.execute(raw, sql)
                driver.forget_session(raw)
            ok = driver.tx_status(raw) is TxStatus.IDLE
        except Exception as exc:
            log.warning("discarding %r of pool %r: reset failed: %s", slot, self.name, exc)
        finally:
            if guard is not None:
                guard.cancel()
            self._state.end_reset()
            now = time.monotonic()
            self._carry_out(self._state.checkin(slot, now) if ok else self._state.discard(slot, now))

    def _sever(self, slot: Slot) -> None:
        if slot.probe is not None and not self._driver.is_closed(slot.raw):
            log.warning("pool %r: the reset of %r is stuck; severing its socket", self.name, slot)
            slot.probe.sever()

    # -- opening and closing -----------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("pool %r: background task failed", self.name, exc_info=task.exception())

    def _carry_out(self, plan: Plan | None) -> None:
        if plan is None:
            return
        for slot in plan.close:
            self._spawn(self._driver.close(slot.raw))
        for waiter in plan.wake:
            assert isinstance(waiter, _Waiter)
            _wake(waiter.future)
        for _ in range(plan.open):
            self._spawn(self._open_one(plan.ticket))

    async def _open_one(self, ticket: int) -> None:
        state = self._state
        generation = state.generation
        try:
            result = await connect_with_retry_async(self._connect_once, self.config.connect_retry)
        except BaseException:  # cancelled by close(): the open did not happen
            closed = self._closed_error(f"pool {self.name!r} is closed", pool=self.name)
            self._carry_out(state.open_failed(closed, time.monotonic(), blocking=False, ticket=ticket))
            raise
        now = time.monotonic()
        if isinstance(result, ConnectFailure):
            # connect_error reads only driver.module, which both driver protocols have.
            error = connect_error(cast("Driver", self._driver), self.spec, result, pool=self.name)
            log.warning("pool %r: %s", self.name, error)
            plan = state.open_failed(error, now, blocking=self._blocks, ticket=ticket)
        else:
            result.generation = generation
            result.expires_at = state.new_expiry(now)
            plan = state.opened(result, now)
        self._carry_out(plan)

    # -- idle resiliency (the proxy's AsyncOwner protocol) ----------------------------------

    async def reopen(self, conn: AsyncConnection) -> Slot:
        """A new connection for a session that broke while idle, under connect retry."""
        result = await connect_with_retry_async(self._connect_once, self._recovery_retry)
        if isinstance(result, ConnectFailure):
            raise connect_error(cast("Driver", self._driver), self.spec, result, pool=self.name)
        return result

    def swap(self, conn: AsyncConnection, new: Slot, *, elapsed_s: float, replayed: str) -> None:
        self._spawn(self._driver.close(self._swapped(conn, new, elapsed_s=elapsed_s, replayed=replayed)))

    async def drop(self, new: Slot) -> None:
        await self._driver.close(new.raw)

    def lost(self, conn: AsyncConnection) -> None:
        # The connection stays with the proxy until it comes back, then is discarded.
        self._state.counters.sessions_lost += 1
        log.warning("pool %r: %s", self.name, conn._lost)

    async def _connect_once(self, timeout_s: float) -> Slot:
        return await open_slot_async(
            self._driver,
            self.spec,
            timeout_s=timeout_s,
            keepalive=self.config.keepalive,
            autocommit=self._autocommit,
        )

    # -- maintenance -------------------------------------------------------------------------

    async def _maintain_loop(self) -> None:
        while True:
            try:
                self._maintain_once()
            except Exception:
                log.exception("pool %r: maintenance failed", self.name)
            await asyncio.sleep(self.config.maintenance_interval)

    def _maintain_once(self) -> None:
        state = self._state
        while self._reclaimed:
            conn = self._reclaimed.popleft()
            slot = conn.detach()
            if slot is not None:
                log.warning("pool %r: reclaiming a connection that was never closed", self.name)
                state.counters.reclaimed += 1
                self._return(slot, self._driver.tx_status(slot.raw), conn.changes, conn.saved)
        now = time.monotonic()
        self._carry_out(state.maintain(now))
        for slot in list(state.idle):  # the zero-round-trip sweep: replace dead idle ones early
            if self._idle_dead(slot):
                self._carry_out(state.remove_idle(slot, now))

    def _idle_dead(self, slot: Slot) -> bool:
        if self._driver.is_closed(slot.raw):
            return True
        probe = slot.probe
        if probe is None:
            return False
        liveness = probe.check()
        if liveness is Liveness.DATA:
            return self._dialect.idle_bytes_mean_dead(probe.peek()[1])
        return liveness is Liveness.CLOSED
