"""What the threaded and the asyncio pools share: settings, state, errors and messages.

No I/O and no waiting here: ``_pool_async`` (and the ``_pool`` generated from it) add
those. ``_lock`` guards ``PoolState``; on the event loop it is never contended (nothing
awaits while holding it), and an uncontended ``threading.Lock`` costs less than a no-op
context manager written in Python.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .. import events, metrics
from .._fork import restart_in_child
from .._retry import ConnectFailure
from .._retry._budget import RetryBudget
from ..dialects import Dialect, dialect_for
from ..dsn import ConnectionSpec, parse
from ..errors import ConnectError, PoolClosed, PoolError, PoolTimeout, bind
from ._config import PoolConfig, check_arguments, config_for
from ._outage import reconnect_budget as default_reconnect_budget
from ._state import PoolState

if TYPE_CHECKING:
    from ..session import Lease

log = logging.getLogger("tether.pool")


class PoolCore:
    spec: ConnectionSpec  # the parsed connection string (its ``repr`` leaves the password out)
    name: str  # in logs, errors, metrics and ``repr``
    config: PoolConfig  # the settings in force, resolved once
    retry_budget: RetryBudget  # shared by the pool's units of work, against retry storms
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
        reconnect_budget: RetryBudget | None,
        opens: bool | None,
        settings: dict[str, Any],
    ) -> None:
        """Check the arguments, resolve the settings and build the state; ``load(dialect,
        name)`` finds the driver."""
        check_arguments({"dsn": dsn, "name": name, "driver": driver, "autocommit": autocommit,
                         "retry_budget": retry_budget, "reconnect_budget": reconnect_budget,
                         "open": opens, **settings})
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
        # Paces an outage's probes (``_outage``): its own, so units of work do not spend it.
        self._reconnect_budget = reconnect_budget or default_reconnect_budget()
        self._state = PoolState(self.config, budget=self._reconnect_budget, started_at=time.monotonic())
        self._subscribers = events.Subscribers()  # this pool's (``subscribe``)
        restart_in_child(self)  # ``_after_fork``
        # Idle resiliency: ConnectRetryCount reconnects for a session that broke while
        # idle (SqlClient: the first at once, later ones after the interval); 0 turns it off.
        retry = self.config.connect_retry
        attempts = retry.count if retry.policy is None else retry.policy.attempts
        self._recovery_retry = dataclasses.replace(retry, count=max(retry.count - 1, 0), immediate=0)
        # An outage's probe makes one attempt: the probe schedule is its retry.
        self._probe_retry = dataclasses.replace(retry, count=0, policy=None)
        self._resilient = attempts > 0 and self._dialect.replays
        self._exact_status = self._driver.exact_tx_status
        self._reads_ahead = self._driver.reads_ahead
        self._reclaimed: deque[Lease] = deque()  # borrows dropped unclosed, from __del__
        errors = self._driver.module
        self._timeout_error = bind(PoolTimeout, errors.OperationalError)
        self._connect_error = bind(ConnectError, errors.OperationalError)
        self._closed_error = bind(PoolClosed, errors.InterfaceError)
        self._misuse_error = bind(PoolError, errors.InterfaceError)

    @property
    def dialect(self) -> Dialect:
        """The database family of the pool's connections (its SQL, errors and reset)."""
        return self._dialect

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called: no borrowing any more."""
        return self._state.closed

    # -- errors --------------------------------------------------------------------------------

    def _after_fork(self) -> None:
        """In a forked child: start afresh (the front end's, ``_pool_async``)."""
        raise NotImplementedError

    def _wait_timeout(self, timeout: float) -> PoolTimeout:
        """The error for a waiter that gave up (the caller holds ``_lock``)."""
        state = self._state
        idle, busy, waiting = len(state.idle), state.busy, len(state.waiters)
        error = state.last_connect_error
        attempts = state.outage.attempts if state.outage is not None else 0
        since = f" (the server has refused {attempts} connect attempts)" if attempts else ""
        exc = self._timeout_error(
            f"no connection from pool {self.name!r} within {timeout:.2f} s "
            f"({idle} idle, {busy} busy, {waiting} waiting)"
            + (f"; last connect error{since}: {error}" if error else ""),
            pool=self.name,
            waited=timeout,
            idle=idle,
            busy=busy,
            waiting=waiting,
            last_connect_error=error,
            connect_attempts=attempts,
        )
        exc.__cause__ = error
        return exc

    def _open_error(self, failure: ConnectFailure) -> BaseException:
        """The error for an open that failed: the connect error, or "closed" when the
        pool's close cancelled it."""
        if self._state.closed:
            return self._closed_error(f"pool {self.name!r} is closed", pool=self.name)
        return connect_error(self._driver, self.spec, failure, pool=self.name)

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

    # -- observing -----------------------------------------------------------------------------

    def subscribe(self, fn: Callable[[events.Event], object]) -> Callable[[], None]:
        """Call ``fn(event)`` for each event of this pool (``tether.events``); returns the
        function that unsubscribes it. ``fn`` runs outside the pool's lock and must be cheap."""
        return self._subscribers.add(fn)

    def _announce(self, level: int, event: events.Event, message: str, *args: object) -> None:
        """Log ``message`` with the event's fields as ``extra=``, then tell the subscribers."""
        events.announce(log, level, event, self._subscribers, message, *args)

    def _report(self, event: events.Event) -> None:
        """An event from outside the pool's own code (the retry engine): count, then tell."""
        self._tally(event)
        events.emit(event, self._subscribers)

    def _tally(self, event: events.Event) -> None:
        """Count what happened outside the pool's own code: retries, lost COMMIT replies."""
        with self._lock:
            counters = self._state.counters
            if isinstance(event, events.Retried):
                counters.retries[event.fault] = counters.retries.get(event.fault, 0) + 1
            elif isinstance(event, events.CommitResolved):
                if event.outcome == "unknown":
                    counters.commit_outcome_unknown += 1
                else:
                    counters.commit_outcome_resolved += 1

    def stats(self) -> metrics.PoolStats:
        """A snapshot of the pool's sizes and counters (SqlClient's names in ``as_counters()``)."""
        with self._lock:
            return metrics.snapshot(self.name, self._state, time.monotonic())

    def __repr__(self) -> str:
        s = self._state
        return (
            f"<tether.{type(self).__name__} {self.name!r} {self.spec.redacted()} "
            f"[{len(s.idle)} idle, {s.busy} busy, {len(s.waiters)} waiting | gen {s.generation}]>"
        )


class Port:
    """What a pool offers the sessions it lends connections to (``session.Owner``): its
    name for messages, and five calls, bound once so a return costs no extra frame."""

    __slots__ = ("adopt", "give_back", "lost", "name", "reclaim", "reopen", "target")

    def __init__(self, name: str | None, target: str, *, give_back: Any, reclaim: Any, reopen: Any,
                 adopt: Any, lost: Any):
        self.name = name
        self.target = target
        self.give_back = give_back
        self.reclaim = reclaim
        self.reopen = reopen
        self.adopt = adopt
        self.lost = lost


def connect_error(
    driver: Any, spec: ConnectionSpec, failure: ConnectFailure, *, pool: str | None = None
) -> ConnectError:
    """The error for a failed open: host, port, attempts and cause, never the password."""
    where = f" (pool {pool!r})" if pool else ""
    cause = scrub(str(failure.cause), spec)
    error = bind(ConnectError, driver.module.OperationalError)(
        f"could not connect to {spec.host}:{spec.port}{where} after {failure.attempts} "
        f"attempt(s) in {failure.elapsed_s:.2f} s: {type(failure.cause).__name__}: {cause}",
        host=spec.host,
        port=spec.port,
        attempts=failure.attempts,
    )
    error.__cause__ = failure.cause
    assert isinstance(error, ConnectError)
    return error


def scrub(text: str, spec: ConnectionSpec) -> str:
    """A driver's message may echo its connection string: hide the password wherever it
    stands as a value of its own (``password=…;``, ``PWD={…}``, ``user:…@``, quoted), also
    percent-encoded. Inside a longer word it is left alone: a password ``p`` leaks nothing
    through ``port``, and the message stays readable (no ``***ort``)."""
    if spec.password is None or not (secret := spec.password.reveal()):
        return text
    forms = {secret, quote(secret, safe=""), secret.replace("}", "}}")}
    alternatives = "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))
    return re.sub(rf"(?<!\w)(?:{alternatives})(?!\w)", "***", text)
