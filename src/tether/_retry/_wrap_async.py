"""The loop ``@tether.retry`` wraps a function in: run it, and after a failure worth
retrying, wait and run it again. Written for coroutine functions; ``_wrap.py``, for plain
ones, is generated from it.

The first run builds nothing: one clock read and, with a budget, one deposit. The
``RetryState`` that decides is made at the first failure.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from ._engine import RetryState, Runner

P = ParamSpec("P")
R = TypeVar("R")


def retrying_async(
    fn: Callable[P, Awaitable[R]], runner: Runner, sleep: Callable[[float], Awaitable[object]]
) -> Callable[P, Coroutine[Any, Any, R]]:
    """``fn`` run again under ``runner``'s policy, waiting ``sleep(delay)`` in between."""
    clock, budget = runner.clock, runner.budget

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        started_at = clock()
        if budget is not None:
            budget.deposit(started_at)
        try:
            return await fn(*args, **kwargs)
        except Exception as error:
            state = RetryState(runner, started_at)  # built only once something failed
            details = state.failed(error)
            if details is None:
                raise
        while True:
            await sleep(details.delay_s)  # a cancellation here leaves as it came
            try:
                return await fn(*args, **kwargs)
            except Exception as error:
                details = state.failed(error)
                if details is None:
                    raise

    return wrapper
