"""What the threaded and the asyncio pools share: settings, state, errors and messages.

No I/O and no waiting here: the front ends add those. ``_lock`` is a real lock in the
threaded pool and a no-op in the async one, whose state is touched from its loop only.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from .. import metrics
from ..dialects import Dialect, dialect_for
from ..dsn import ConnectionSpec, parse
from ..errors import ConnectError, ConnectionReturned, PoolClosed, PoolError, PoolTimeout, bind
from ..retry._budget import RetryBudget
from ._config import PoolConfig, config_for
from ._state import PoolState, Slot

if TYPE_CHECKING:
    from ..session._tracking import Tracking

log = logging.getLogger("tether.pool")


class PoolCore:
    spec: ConnectionSpec
    name: str
    config: PoolConfig
    retry_budget: RetryBudget
    _lock: AbstractContextManager[Any]
    _state: PoolState

    def _setup(
        self,
        dsn: str | ConnectionSpec,
        *,
        name: str,
        driver: str | None,
        load: Any,
        autocommit: bool,
        retry_budget: RetryBudget | None,
        settings: dict[str, Any],
    ) -> None:
        """Resolve the settings and build the state; ``load(dialect, name)`` finds the driver."""
        spec = dsn if isinstance(dsn, ConnectionSpec) else parse(dsn, driver=driver)
        self.spec = spec
        self.name = name
        self.config = config_for(spec, **settings)
        self._driver = load(spec.dialect, spec.driver)
        self._dialect = dialect_for(spec)
        self._autocommit = autocommit
        # Shared by every unit of work on this pool, so a recovering server is not stormed.
        self.retry_budget = retry_budget or RetryBudget()
        self._lazy_reset = self.config.reset == "auto"
        self._ping_after = self.config.validate_after_idle
        self._blocks = self.config.blocking_period == "always" or (
            self.config.blocking_period == "auto" and not spec.is_azure
        )
        self._state = PoolState(self.config)
        # Idle resiliency: ConnectRetryCount reconnects for a session that broke while
        # idle (SqlClient: the first at once, later ones after the interval); 0 turns it off.
        retry = self.config.connect_retry
        self.recovery_attempts = retry.count if retry.policy is None else retry.policy.attempts
        self._recovery_retry = dataclasses.replace(retry, count=max(retry.count - 1, 0), immediate=0)
        self._resilient = self.recovery_attempts > 0 and hasattr(self._dialect, "session_effects")
        self._exact_status = getattr(self._driver, "exact_tx_status", True)
        self._reclaimed: deque[Any] = deque()  # proxies dropped unclosed, from __del__
        errors = self._driver.module
        self._timeout_error = bind(PoolTimeout, errors.OperationalError)
        self._connect_error = bind(ConnectError, errors.OperationalError)
        self._returned_error = bind(ConnectionReturned, errors.InterfaceError)
        self._closed_error = bind(PoolClosed, errors.InterfaceError)
        self._misuse_error = bind(PoolError, errors.InterfaceError)

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    @property
    def closed(self) -> bool:
        return self._state.closed

    def _swapped(self, conn: Tracking, new: Slot, *, elapsed_s: float, replayed: str) -> Any:
        """A recovered session moves to ``new``'s connection in the same slot (the pool's
        accounting does not change); returns the old connection, for closing."""
        slot = conn._slot
        assert slot is not None
        old = slot.raw
        slot.raw, slot.probe, slot.created_at = new.raw, new.probe, new.created_at
        with self._lock:
            counters = self._state.counters
            counters.recovered += 1
            counters.hard_connects += 1
            counters.hard_disconnects += 1
        log.info("pool %r: %r broke while idle; session restored on a new connection in %.1f ms "
                 "(replayed: %s)", self.name, slot, elapsed_s * 1000, replayed)
        return old

    # -- errors --------------------------------------------------------------------------------

    def _wait_timeout(self, timeout: float) -> PoolTimeout:
        """The error for a waiter that gave up (the caller holds ``_lock``)."""
        state = self._state
        idle, busy, waiting = len(state.idle), state.busy, len(state.waiters)
        error = state.last_connect_error
        exc = self._timeout_error(
            f"no connection from pool {self.name!r} within {timeout:.2f} s "
            f"({idle} idle, {busy} busy, {waiting} waiting)"
            + (f"; last connect error: {error}" if error else ""),
            pool=self.name,
            waited=timeout,
            idle=idle,
            busy=busy,
            waiting=waiting,
            last_connect_error=error,
        )
        exc.__cause__ = error
        return exc

    def _failed_wait(self, error: BaseException) -> BaseException:
        """The error for a waiter the state failed: in a blocking period, say so."""
        if isinstance(error, PoolClosed):
            return error
        until = self._state.blocked_until
        remaining = until - time.monotonic()
        if remaining <= 0:
            return error
        err = self._connect_error(
            f"{error} (connect attempts paused for {remaining:.1f} s: blocking period)",
            host=self.spec.host,
            port=self.spec.port,
            attempts=getattr(error, "attempts", 0),
            blocking_until=until,
        )
        err.__cause__ = error
        return err

    # -- the proxies' Owner protocol, the parts without I/O ------------------------------------

    def reclaim(self, conn: Tracking) -> None:
        # Called from __del__, at any point of any thread: no locks, just a queue.
        self._reclaimed.append(conn)

    def returned_error(self, conn: Tracking) -> Exception:
        return self._returned_error(
            f"this connection was returned to pool {self.name!r}; "
            "borrow another with pool.connection()",
            pool=self.name,
        )

    def describe(self, conn: Tracking) -> str:
        slot = conn.__dict__.get("_slot")
        where = "returned" if slot is None else f"#{slot.number}"
        return f"{where} from pool {self.name!r} to {self.spec.redacted()}"

    # -- observing -----------------------------------------------------------------------------

    def stats(self) -> metrics.PoolStats:
        with self._lock:
            return metrics.snapshot(self.name, self._state, time.monotonic())

    def __repr__(self) -> str:
        s = self._state
        return (
            f"<tether.{type(self).__name__} {self.name!r} {self.spec.redacted()} "
            f"[{len(s.idle)} idle, {s.busy} busy, {len(s.waiters)} waiting | gen {s.generation}]>"
        )
