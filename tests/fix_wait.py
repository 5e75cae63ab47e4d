"""Waiting for a state, not for time: poll a predicate until it holds, or fail saying what.

A test that must let something happen in the background (a sweep, a background reset, a
server letting a session go) waits for the state it needs with ``wait_until`` (or
``async_wait_until`` inside an event loop). Polling starts at 1 ms and doubles up to
``interval``, so a fast event is seen fast and a slow one costs few polls. On timeout the
``AssertionError`` names what was awaited, the timeout and the last value seen.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar, overload

T = TypeVar("T")

_FIRST_PAUSE = 0.001


def _pauses(interval: float) -> Iterator[float]:
    """1 ms, 2 ms, 4 ms... then ``interval`` for ever."""
    pause = min(_FIRST_PAUSE, interval)
    while True:
        yield pause
        pause = min(pause * 2, interval)


def _check(timeout: float, interval: float) -> None:
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    if interval <= 0:
        raise ValueError(f"interval must be positive, got {interval!r}")


def _timed_out(what: str, timeout: float, last: object) -> AssertionError:
    return AssertionError(f"timed out after {timeout:g} s waiting for {what}; last value: {last!r}")


def wait_until(predicate: Callable[[], T], *, timeout: float = 5.0, interval: float = 0.01, what: str) -> T:
    """Call ``predicate`` until it returns something truthy, and return that.

    ``interval`` is the longest pause between two calls (the first is 1 ms); the last call
    is made at the deadline, so a state reached just in time is still seen.
    """
    _check(timeout, interval)
    deadline = time.monotonic() + timeout
    for pause in _pauses(interval):
        value = predicate()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise _timed_out(what, timeout, value)
        time.sleep(min(pause, left))
    raise AssertionError("unreachable: the pauses never end")  # pragma: no cover


@overload
async def async_wait_until(
    predicate: Callable[[], Awaitable[T]], *, timeout: float = ..., interval: float = ..., what: str
) -> T: ...


@overload
async def async_wait_until(
    predicate: Callable[[], T], *, timeout: float = ..., interval: float = ..., what: str
) -> T: ...


async def async_wait_until(
    predicate: Callable[[], Any], *, timeout: float = 5.0, interval: float = 0.01, what: str
) -> Any:
    """``wait_until`` for an event loop: ``predicate`` may be a plain or an async function,
    and the pauses are ``asyncio.sleep``, so the tasks being waited for keep running."""
    _check(timeout, interval)
    deadline = time.monotonic() + timeout
    for pause in _pauses(interval):
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise _timed_out(what, timeout, value)
        await asyncio.sleep(min(pause, left))
    raise AssertionError("unreachable: the pauses never end")  # pragma: no cover
