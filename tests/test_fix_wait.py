"""The tests' waiting helper (``fix_wait``): it returns as soon as the state holds, with the
predicate's value, and otherwise fails naming what it waited for and what it last saw."""

from __future__ import annotations

import asyncio
import re
import threading
import time

import pytest

from fix_wait import async_wait_until, wait_until


class Countdown:
    """Falsy for the first ``n`` calls, then the string ``"ready"``."""

    def __init__(self, n: int):
        self.n = n
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return "ready" if self.calls > self.n else ""


def test_a_state_already_reached_returns_at_once_with_the_predicates_value() -> None:
    started = time.monotonic()
    assert wait_until(lambda: ["row"], what="a row") == ["row"]
    assert time.monotonic() - started < 0.05


def test_polls_start_fast_and_back_off() -> None:
    ready = Countdown(5)
    started = time.monotonic()
    assert wait_until(ready, interval=0.05, what="the countdown") == "ready"
    # 1 + 2 + 4 + 8 + 16 ms of pauses: far below five pauses of the 50 ms cap
    assert ready.calls == 6 and time.monotonic() - started < 0.2


def test_a_state_reached_by_another_thread_is_seen_soon_after() -> None:
    done = threading.Event()
    timer = threading.Timer(0.05, done.set)
    started = time.monotonic()
    timer.start()
    assert wait_until(done.is_set, interval=0.01, what="the timer")
    assert 0.04 < time.monotonic() - started < 1.0
    timer.join()


def test_a_timeout_names_what_the_timeout_and_the_last_value() -> None:
    seen = iter(range(1000))
    started = time.monotonic()
    with pytest.raises(AssertionError) as caught:
        wait_until(lambda: next(seen) > 10_000, timeout=0.1, what="idle == 1")
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert message.startswith("timed out after 0.1 s waiting for idle == 1; last value: False")
    assert 0.1 <= elapsed < 0.5


def test_the_last_value_is_shown_as_its_repr() -> None:
    with pytest.raises(AssertionError, match=re.escape("last value: []")):
        wait_until(list, timeout=0.02, what="rows")


def test_the_predicate_is_asked_once_more_at_the_deadline() -> None:
    calls: list[float] = []

    def slow_to_hold() -> bool:
        calls.append(time.monotonic())
        return False

    started = time.monotonic()
    with pytest.raises(AssertionError):
        wait_until(slow_to_hold, timeout=0.2, interval=1.0, what="never")
    assert calls[-1] - started >= 0.2  # the pause was cut to the deadline, then one more look


def test_an_error_in_the_predicate_is_not_swallowed() -> None:
    with pytest.raises(ZeroDivisionError):
        wait_until(lambda: 1 / 0, what="a division")


@pytest.mark.parametrize(("setting", "value"), [("timeout", 0.0), ("interval", -1.0)])
def test_settings_are_checked_by_name(setting: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"^{setting} must be positive"):
        wait_until(lambda: True, what="x", **{setting: value})


# -- the async twin ------------------------------------------------------------------------------


def test_async_returns_the_value_of_a_plain_predicate() -> None:
    ready = Countdown(3)
    assert asyncio.run(async_wait_until(ready, what="the countdown")) == "ready"
    assert ready.calls == 4


def test_async_awaits_an_async_predicate() -> None:
    ready = Countdown(2)

    async def check() -> str:
        await asyncio.sleep(0)
        return ready()

    assert asyncio.run(async_wait_until(check, what="the countdown")) == "ready"
    assert ready.calls == 3


def test_async_lets_the_awaited_task_run() -> None:
    async def main() -> list[int]:
        box: list[int] = []

        async def later() -> None:
            await asyncio.sleep(0.02)
            box.append(1)

        task = asyncio.create_task(later())
        found = await async_wait_until(lambda: box, what="the task's result")
        await task
        return found

    assert asyncio.run(main()) == [1]


def test_async_timeout_names_what_the_timeout_and_the_last_value() -> None:
    async def none() -> None:
        return None

    started = time.monotonic()
    with pytest.raises(AssertionError) as caught:
        asyncio.run(async_wait_until(none, timeout=0.1, what="busy == 0"))
    assert str(caught.value) == "timed out after 0.1 s waiting for busy == 0; last value: None"
    assert 0.1 <= time.monotonic() - started < 0.5
