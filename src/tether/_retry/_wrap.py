# Generated from _wrap_async.py by tools/async_to_sync.py: edit that file instead.
"""The loop ``@tether.retry`` wraps a function in: run it, and after a failure worth
retrying, wait and run it again. Written for coroutine functions; ``_wrap.py``, for plain
ones, is generated from it.

The first run builds nothing: one clock read and, with a budget, one deposit. The
``RetryState`` that decides is made at the first failure.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from ._engine import RetryState, Runner

P = ParamSpec("P")
R = TypeVar("R")


def retrying(
    fn: Callable[P, R], runner: Runner, sleep: Callable[[float], object]
) -> Callable[P, R]:
    """``fn`` run again under ``runner``'s policy, waiting ``sleep(delay)`` in between."""
    clock, budget = runner.clock, runner.budget

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        started_at = clock()
        if budget is not None:
            budget.deposit(started_at)
        try:
            return fn(*args, **kwargs)
        except Exception as error:
            state = RetryState(runner, started_at)  # built only once something failed
            details = state.failed(error)
            if details is None:
                raise
        while True:
            sleep(details.delay_s)  # a cancellation here leaves as it came
            try:
                return fn(*args, **kwargs)
            except Exception as error:
                details = state.failed(error)
                if details is None:
                    raise

    return wrapper
