"""The retry engine: one decision core, three front ends.

``Runner`` holds what does not change between calls (policy, classifier, hooks, budget,
clock); ``Runner.start()`` makes a ``RetryState`` for one call, which turns each failure
into a wait or a "give up" and runs the hooks. It never sleeps and never raises the
error: the front end does both, so an error that is not retried leaves exactly as it
came (same object, no chaining). The front ends are :func:`retry` (a decorator, for
functions and coroutine functions), :func:`attempts` (an iterator of context managers),
their async forms in ``_async_engine`` and ``pool.transaction``.

A call that succeeds the first time costs one clock read and, with a budget, one
deposit; nothing else is built until something fails.
"""

from __future__ import annotations

import functools
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, ParamSpec, TypeVar, cast, overload

from .. import events
from ..vocab import Classification, Fault
from ._budget import RetryBudget
from ._classify import classify as default_classify
from ._policy import DEFAULT, Retry

__all__ = ["Attempt", "RetryDetails", "RetryState", "Runner", "attempts", "retry"]

log = logging.getLogger("tether.retry")

P = ParamSpec("P")
T = TypeVar("T")
Classify = Callable[[BaseException], Classification]
OnRetry = Callable[["RetryDetails"], object]
_rng: Final = random.Random()


@dataclass(frozen=True, slots=True)
class RetryDetails:
    """What a hook is told before a retry: run ``attempt`` failed, next in ``delay_s``."""

    attempt: int  # the run that failed, 1-based
    fault: Fault
    reason: str
    delay_s: float  # the wait before the next run
    elapsed_s: float  # since the call began, the failed run included
    error: BaseException
    name: str = ""  # what is being retried (a function's qualified name)


class Runner:
    """The parts of retrying that stay the same across calls; share one per function or pool."""

    __slots__ = ("budget", "classify", "clock", "name", "on_retry", "owner", "policy", "rng")

    def __init__(
        self,
        policy: Retry | int | bool | None = None,
        *,
        classify: Classify | None = None,
        on_retry: OnRetry | None = None,
        budget: RetryBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        name: str = "",
    ) -> None:
        self.policy = Retry.from_value(policy, name="policy")
        self.classify = default_classify if classify is None else classify
        self.on_retry = on_retry
        self.budget = budget
        self.clock = clock
        self.rng = _rng if rng is None else rng
        self.name = name
        self.owner: Any = None  # the pool whose unit of work this is: it counts the retries

    def start(self) -> RetryState:
        """Begin one call (one request to the budget)."""
        now = self.clock()
        if self.budget is not None:
            self.budget.deposit(now)
        return RetryState(self, now)

    def __repr__(self) -> str:
        return f"<Runner {self.name or '?'} {self.policy!r}>"


class RetryState:
    """One call's progress: which run this is, and the decision after each failure."""

    __slots__ = ("policy", "runner", "started_at")

    def __init__(self, runner: Runner, started_at: float) -> None:
        self.runner = runner
        self.started_at = started_at
        self.policy = runner.policy  # replaced by policy.after(...) at each retry

    @property
    def attempt(self) -> int:
        """The number of the run in progress, 1-based."""
        return len(self.policy.history) + 1

    def remaining_s(self) -> float | None:
        """Seconds left before the policy's deadline, or None when it has none."""
        deadline_s = self.policy.deadline_s
        if deadline_s is None:
            return None
        return max(deadline_s - (self.runner.clock() - self.started_at), 0.0)

    def failed(
        self, error: BaseException, classification: Classification | None = None
    ) -> RetryDetails | None:
        """Decide after run ``attempt`` raised ``error``: details of the retry, or None.

        On a retry the hooks have run and the caller waits ``details.delay_s`` before the
        next run; on None the caller re-raises ``error`` as it is. ``classification``
        overrides the runner's classifier (``pool.transaction`` resolves COMMIT itself).
        """
        runner = self.runner
        verdict = runner.classify(error) if classification is None else classification
        now = runner.clock()
        elapsed = now - self.started_at
        delay = self.policy.delay_before_retry(verdict, elapsed_s=elapsed, rng=runner.rng)
        if delay is None:
            return None
        if runner.budget is not None and not runner.budget.try_spend(now):
            log.debug("not retrying %s: the retry budget is spent (%r)", runner.name, runner.budget)
            return None
        details = RetryDetails(
            self.attempt, verdict.fault, verdict.reason, delay, elapsed, error, runner.name
        )
        self.policy = self.policy.after(verdict.fault, delay_s=delay)
        owner = runner.owner
        event = events.Retried(pool="" if owner is None else owner.name, unit=details.name,
                               attempt=details.attempt, fault=details.fault.name.lower(),
                               delay_s=delay, error=type(error).__name__)
        log.warning(
            "retrying %s in %.3f s: attempt %d of %d failed with a %s fault (%s): %s: %s",
            runner.name, delay, details.attempt, self.policy.attempts, verdict.fault.value,
            verdict.reason, type(error).__name__, error, extra=event.extra(),
        )
        if owner is None:  # the retry.attempt event; a pool counts its units' retries too
            events.emit(event)
        else:
            owner._report(event)
        if runner.on_retry is not None:
            runner.on_retry(details)
        return details


# -- the decorator ---------------------------------------------------------------------


@overload
def retry(policy: Callable[P, T], /) -> Callable[P, T]: ...


@overload
def retry(
    policy: Retry | int | bool | None = None,
    *,
    classify: Classify | None = None,
    on_retry: OnRetry | None = None,
    budget: RetryBudget | None = None,
    sleep: Callable[[float], object] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[Callable[P, T]], Callable[P, T]]: ...


def retry(
    policy: Retry | int | bool | Callable[..., Any] | None = None,
    *,
    classify: Classify | None = None,
    on_retry: OnRetry | None = None,
    budget: RetryBudget | None = None,
    sleep: Callable[[float], object] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Any:
    """Run the decorated function again when it fails with a retryable fault.

    ``@retry`` alone uses the default policy; ``@retry(Retry.fixed(...))`` or
    ``@retry(3)`` choose one. An error that is not retried, or the last one when the
    attempts or the deadline run out, propagates unchanged.

    A coroutine function stays one: it waits with ``await asyncio.sleep(delay)``, and a
    cancellation (of a run or of the wait) is never retried. ``sleep`` replaces the wait
    (``time.sleep`` for a function; an async function for a coroutine function).
    """
    if callable(policy) and not isinstance(policy, Retry):
        return _decorate(policy, Retry.from_value(None), classify, on_retry, budget, sleep, clock)
    chosen = Retry.from_value(policy, name="policy")

    def decorator(fn: Callable[P, T]) -> Callable[P, T]:
        return _decorate(fn, chosen, classify, on_retry, budget, sleep, clock)

    return decorator


def _decorate(
    fn: Callable[P, T],
    policy: Retry,
    classify: Classify | None,
    on_retry: OnRetry | None,
    budget: RetryBudget | None,
    sleep: Callable[[float], object] | None,
    clock: Callable[[], float],
) -> Callable[P, T]:
    name = getattr(fn, "__qualname__", None) or repr(fn)
    if is_async_callable(fn):
        from ._async_engine import retrying_coroutine_function  # which imports this module

        wrapped = retrying_coroutine_function(
            cast("Callable[..., Awaitable[Any]]", fn), policy, classify=classify, on_retry=on_retry,
            budget=budget, sleep=sleep, clock=clock, name=name,
        )
        return cast("Callable[P, T]", wrapped)
    if sleep is None:
        sleep = time.sleep
    elif is_async_callable(sleep):
        raise TypeError(f"sleep must be a plain function (time.sleep or alike) to retry {name}, "
                        f"not the async {sleep!r}")
    from ._wrap import retrying  # which imports this module

    runner = Runner(policy, classify=classify, on_retry=on_retry, budget=budget, clock=clock, name=name)
    return retrying(fn, runner, sleep)


def is_async_callable(obj: object) -> bool:
    """Whether calling ``obj`` returns a coroutine: an async function, a partial of one,
    or an object whose ``__call__`` is one (Starlette's ``is_async_callable``)."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    return inspect.iscoroutinefunction(obj) or (
        callable(obj) and inspect.iscoroutinefunction(type(obj).__call__)
    )


# -- the iterator ----------------------------------------------------------------------


def attempts(
    policy: Retry | int | bool | None = None,
    *,
    classify: Classify | None = None,
    on_retry: OnRetry | None = None,
    budget: RetryBudget | None = None,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    name: str = "block",
) -> Iterator[Attempt]:
    """Retry a block: ``for attempt in attempts(): with attempt: ...``.

    The ``with`` swallows a retryable error and the loop runs the block again after the
    wait. An error that is not retried leaves the ``with`` unchanged (same object, nothing
    chained); so does the last error, when the attempts or the deadline run out. A block
    that completes ends the loop. In a coroutine, use :func:`async_attempts`.
    """
    # A generator, and the first Attempt built without __init__: on the success path the
    # whole loop costs well under a microsecond. The Runner is built at the first failure.
    # Why the async form is a second function (async_attempts) and not an __aiter__ on
    # what this returns: a generator cannot have one, and every iterable-and-async-iterable
    # object measured (timeit, Python 3.11, 2 cores) cost more than the 1 us target for
    # the sync loop: 787 ns as a generator; 1050 ns as an object whose __iter__ is this
    # generator, 1080 ns with an __init__, 1390 ns with a hand-written __next__.
    if policy is None:
        policy = DEFAULT
    elif not isinstance(policy, Retry):
        policy = Retry.from_value(policy, name="policy")
    started_at = clock()
    if budget is not None:
        budget.deposit(started_at)
    attempt = _new(Attempt)  # the class's defaults describe a first run
    attempt._setup = (policy, classify, on_retry, budget, clock, name, started_at)
    yield attempt
    while (details := attempt._retry) is not None:
        sleep(details.delay_s)
        attempt = Attempt(attempt.number + 1, details, attempt._state, attempt._setup)
        yield attempt


_new = object.__new__


class Attempt:
    """One run of the block: a context manager that swallows an error worth retrying."""

    # Class-level defaults rather than __slots__: the first run's object is made with two
    # stores and no __init__ call.
    number: int = 1  # 1-based
    retry_details: RetryDetails | None = None  # why this run happens; None for the first
    _state: RetryState | None = None  # built at the call's first failure
    _retry: RetryDetails | None = None  # set when this run failed and will be retried
    _setup: _Setup

    def __init__(
        self, number: int, retry_details: RetryDetails | None, state: RetryState | None, setup: _Setup
    ) -> None:
        self.number = number
        self.retry_details = retry_details
        self._state = state
        self._setup = setup

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False  # success, or KeyboardInterrupt and the like: never retried
        if self._state is None:
            policy, classify, on_retry, budget, clock, name, started_at = self._setup
            runner = Runner(
                policy, classify=classify, on_retry=on_retry, budget=budget, clock=clock, name=name
            )
            self._state = RetryState(runner, started_at)
        self._retry = self._state.failed(exc)
        return self._retry is not None

    def __repr__(self) -> str:
        return f"<Attempt {self.number}>"


# What the first failure needs to build the Runner: policy, classify, on_retry, budget,
# clock, name, and when the call started.
_Setup = tuple[
    Retry, "Classify | None", "OnRetry | None", "RetryBudget | None", Callable[[], float], str, float
]
