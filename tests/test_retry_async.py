"""The async forms of the retry engine: ``@retry`` on a coroutine function, ``async_attempts``.

Plain functions that call ``asyncio.run``; a fake clock that only moves when the engine
waits, and a fake async wait that advances it. No real sleeping anywhere.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from fix_retry import FIXED, Connect, FakeTime, Fatal, InDoubt, Transient, classify
from tether._retry._async_engine import async_attempts
from tether._retry._budget import RetryBudget
from tether._retry._engine import RetryDetails, Runner, retry
from tether._retry._policy import Retry
from tether.vocab import Classification, Fault


class Clock(FakeTime):
    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)  # a real suspension point, as asyncio.sleep has




def failing(
    *errors: BaseException, result: str = "ok", clock: Clock | None = None, run_s: float = 0.0
) -> tuple[Callable[[], Coroutine[Any, Any, str]], list[int]]:
    """A coroutine function that raises ``errors`` in turn, then returns ``result``."""
    calls: list[int] = []

    async def work() -> str:
        calls.append(1)
        await asyncio.sleep(0)
        if clock is not None:
            clock.now += run_s
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return result

    return work, calls


def wrap(
    work: Callable[[], Coroutine[Any, Any, str]], clock: Clock, policy: Retry = FIXED, **options: Any
) -> Callable[[], Coroutine[Any, Any, str]]:
    """``work`` under ``@retry(policy)``, waiting on the fake clock."""
    return retry(policy, classify=classify, sleep=clock.sleep, clock=clock, **options)(work)


# -- the decorator on a coroutine function ------------------------------------------------------


@pytest.mark.parametrize("error", [Transient, Connect])
def test_retries_connect_and_transient(error: type[Exception]) -> None:
    clock = Clock()
    work, calls = failing(error("1"), error("2"), clock=clock)
    assert asyncio.run(wrap(work, clock)()) == "ok"
    assert len(calls) == 3 and clock.sleeps == [1.0, 1.0]


@pytest.mark.parametrize("error", [Fatal("syntax"), InDoubt("commit reply lost")])
def test_never_retries_fatal_or_in_doubt_and_raises_it_unchanged(error: Exception) -> None:
    clock = Clock()
    work, calls = failing(error)
    with pytest.raises(type(error)) as caught:
        asyncio.run(wrap(work, clock)())
    assert caught.value is error
    assert error.__cause__ is None and error.__context__ is None
    assert len(calls) == 1 and clock.sleeps == []


def test_in_doubt_is_retried_when_the_work_is_idempotent() -> None:
    clock = Clock()
    work, calls = failing(InDoubt("reply lost"))
    policy = Retry.fixed(attempts=2, delay_s=0.5, jitter=None, idempotent=True)
    assert asyncio.run(wrap(work, clock, policy)()) == "ok"
    assert len(calls) == 2 and clock.sleeps == [0.5]


def test_the_last_error_is_reraised_unchanged_when_attempts_run_out() -> None:
    clock = Clock()
    errors = [Transient(f"deadlock {n}") for n in range(1, 5)]
    work, calls = failing(*errors)
    with pytest.raises(Transient) as caught:
        asyncio.run(wrap(work, clock)())
    assert caught.value is errors[-1]
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert len(calls) == 4 and clock.sleeps == [1.0, 1.0, 1.0]


def test_a_later_non_retryable_error_stops_at_once() -> None:
    clock = Clock()
    fatal = Fatal("constraint")
    work, calls = failing(Transient("1"), fatal)
    with pytest.raises(Fatal) as caught:
        asyncio.run(wrap(work, clock)())
    assert caught.value is fatal and len(calls) == 2 and clock.sleeps == [1.0]


def test_hooks_get_a_frozen_payload() -> None:
    clock = Clock()
    seen: list[RetryDetails] = []
    first, second = Transient("deadlock victim"), Connect("refused")
    work, _ = failing(first, second, clock=clock, run_s=0.25)
    asyncio.run(wrap(work, clock, on_retry=seen.append)())
    assert [(d.attempt, d.fault, d.reason, d.delay_s) for d in seen] == [
        (1, Fault.TRANSIENT, "test Transient", 1.0),
        (2, Fault.CONNECT, "test Connect", 1.0),
    ]
    assert seen[0].error is first and seen[1].error is second
    assert seen[0].elapsed_s == pytest.approx(0.25) and seen[1].elapsed_s == pytest.approx(1.5)
    assert seen[0].name.endswith("failing.<locals>.work")
    with pytest.raises(AttributeError):
        seen[0].delay_s = 0.0  # type: ignore[misc]


def test_every_retry_is_logged_at_warning(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    work, _ = failing(Transient("serialization failure"), Connect("refused"))
    caplog.set_level(logging.DEBUG, logger="tether.retry")
    asyncio.run(wrap(work, clock)())
    records = [r for r in caplog.records if r.name == "tether.retry"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.WARNING]
    first = records[0].getMessage()
    assert "failing.<locals>.work in 1.000 s: attempt 1 of 4" in first
    assert "transient fault (test Transient): Transient: serialization failure" in first
    assert "attempt 2 of 4 failed with a connect fault" in records[1].getMessage()


def test_deadline_stops_retrying() -> None:
    clock = Clock()
    work, calls = failing(*[Transient(str(n)) for n in range(10)], clock=clock, run_s=1.5)
    policy = Retry.fixed(attempts=10, delay_s=1.0, jitter=None, deadline_s=6.0)
    with pytest.raises(Transient):
        asyncio.run(wrap(work, clock, policy)())
    # runs end at 1.5, 4.0 and 6.5 s: after the third the deadline has passed
    assert len(calls) == 3 and clock.now - 1000.0 == pytest.approx(6.5)


def test_budget_exhaustion_stops_retrying_and_each_call_deposits() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.0, min_retries_per_s=1.0)  # one retry, then none this second
    policy = Retry.fixed(attempts=5, delay_s=0.0, jitter=None)
    runs = []
    for _ in range(2):
        work, calls = failing(Transient("a"), Transient("b"))
        runs.append(calls)
        with pytest.raises(Transient):
            asyncio.run(wrap(work, clock, policy, budget=budget)())
    assert [len(calls) for calls in runs] == [2, 1]

    deposits = RetryBudget(ratio=0.5, min_retries_per_s=0.0)
    ok, _ = failing()
    wrapped = wrap(ok, clock, budget=deposits)

    async def twice() -> None:
        await wrapped()
        await wrapped()

    asyncio.run(twice())
    assert deposits.available(clock.now) == 1.0


def test_concurrent_calls_retry_independently() -> None:
    clock = Clock()
    one, calls_one = failing(Transient("1"), result="one")
    two, calls_two = failing(Connect("1"), Connect("2"), result="two")

    async def both() -> list[str]:
        return list(await asyncio.gather(wrap(one, clock)(), wrap(two, clock)()))

    assert asyncio.run(both()) == ["one", "two"]
    assert (len(calls_one), len(calls_two)) == (2, 3) and sorted(clock.sleeps) == [1.0, 1.0, 1.0]


def test_the_default_wait_is_asyncio_sleep() -> None:
    work, calls = failing(Transient("1"), Connect("2"))
    zero = Retry.fixed(attempts=3, delay_s=0.0, jitter=None)  # no real sleeping
    wrapped = retry(zero, classify=classify)(work)
    started = time.monotonic()
    assert asyncio.run(wrapped()) == "ok"
    assert len(calls) == 3 and time.monotonic() - started < 5.0


# -- cancellation -----------------------------------------------------------------------------------


class BlockingSleep:
    """An async wait that blocks until cancelled, and says when it has begun."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.started = asyncio.Event()  # bound to a loop at its first wait (Python 3.10+)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.started.set()
        await asyncio.Event().wait()  # forever


async def cancel_when(started: asyncio.Event, run: Callable[[], Awaitable[object]]) -> None:
    """Run ``run()`` in a task, cancel it once ``started`` is set; it must end cancelled."""
    task = asyncio.ensure_future(run())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


def test_cancellation_during_the_wait_propagates_and_is_not_retried() -> None:
    blocking = BlockingSleep()
    seen: list[RetryDetails] = []
    work, calls = failing(Transient("1"), Transient("2"))
    wrapped = retry(FIXED, classify=classify, sleep=blocking, on_retry=seen.append)(work)

    asyncio.run(cancel_when(blocking.started, wrapped))
    assert len(calls) == 1 and blocking.delays == [1.0] and len(seen) == 1


def test_cancellation_during_a_run_propagates_and_is_not_retried() -> None:
    clock = Clock()
    calls: list[int] = []
    started = asyncio.Event()

    async def stuck() -> str:
        calls.append(1)
        started.set()
        await asyncio.Event().wait()
        return "never"

    asyncio.run(cancel_when(started, wrap(stuck, clock)))
    assert calls == [1] and clock.sleeps == []


def test_a_cancelled_error_from_the_work_is_never_retried() -> None:
    """The work awaited a future someone else cancelled: not a fault, whatever the classifier."""
    clock = Clock()
    cancelled = asyncio.CancelledError()
    work, calls = failing(cancelled)
    retry_everything = retry(FIXED, classify=lambda exc: Classification(Fault.CONNECT, "all"),
                             sleep=clock.sleep, clock=clock)(work)
    with pytest.raises(asyncio.CancelledError) as caught:
        asyncio.run(retry_everything())
    assert caught.value is cancelled and len(calls) == 1 and clock.sleeps == []

    again, calls = failing(asyncio.CancelledError())

    async def block() -> None:
        async for attempt in async_attempts(FIXED, classify=lambda exc: Classification(Fault.CONNECT, "all"),
                                            sleep=clock.sleep, clock=clock):
            with attempt:
                await again()

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(block())
    assert len(calls) == 1 and clock.sleeps == []


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.cancelling() is Python 3.11+")
def test_an_error_raised_while_the_task_is_cancelled_is_not_retried() -> None:
    """A driver that turns a cancellation into its own error: that error leaves unchanged."""
    clock = Clock()
    reset = ConnectionResetError("socket closed under the query")  # a CONNECT fault
    calls: list[int] = []

    async def query() -> str:
        calls.append(1)
        if len(calls) > 1:
            return "run again"  # what a retry would do; it must not happen
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise reset from None
        return "never"

    async def main() -> None:
        task = asyncio.ensure_future(wrap(query, clock)())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(ConnectionResetError) as caught:
            await task
        assert caught.value is reset

    asyncio.run(main())
    assert calls == [1] and clock.sleeps == []


# -- what the decorator keeps and refuses ----------------------------------------------------------


def test_decorated_coroutine_function_keeps_its_signature() -> None:
    @retry(3, classify=classify)
    async def transfer(src: int, dst: int, *, amount: float = 1.0) -> float:
        """Move money."""
        return amount

    assert inspect.iscoroutinefunction(transfer)
    assert transfer.__name__ == "transfer" and transfer.__doc__ == "Move money."
    assert str(inspect.signature(transfer)) == "(src: 'int', dst: 'int', *, amount: 'float' = 1.0) -> 'float'"
    assert asyncio.run(transfer(1, 2, amount=5.0)) == 5.0


def test_bare_decorator_on_a_coroutine_function() -> None:
    @retry
    async def double(x: int) -> int:
        if x < 0:
            raise Fatal("unknown to tether: FATAL")
        return x * 2

    assert inspect.iscoroutinefunction(double)
    assert asyncio.run(double(21)) == 42
    with pytest.raises(Fatal):
        asyncio.run(double(-1))


def test_a_partial_of_a_coroutine_function_is_wrapped_as_one() -> None:
    async def add(a: int, b: int) -> int:
        return a + b

    wrapped = retry(2, classify=classify)(functools.partial(add, 1))
    assert inspect.iscoroutinefunction(wrapped) and asyncio.run(wrapped(2)) == 3


def test_the_wait_must_match_what_is_wrapped() -> None:
    async def coro() -> None:
        pass

    with pytest.raises(TypeError, match=r"^sleep must be an async function .* to retry .*coro"):
        retry(FIXED, sleep=time.sleep)(coro)
    with pytest.raises(TypeError, match=r"^sleep must be a plain function"):
        retry(FIXED, sleep=asyncio.sleep)(lambda: None)
    with pytest.raises(TypeError, match=r"^sleep must be an async function"):
        async_attempts(FIXED, sleep=time.sleep)  # type: ignore[arg-type]


# -- the async attempts iterator ---------------------------------------------------------------------


def test_iterator_runs_once_when_the_block_succeeds() -> None:
    async def main() -> list[tuple[int, RetryDetails | None]]:
        seen = []
        async for attempt in async_attempts(FIXED, classify=classify):
            with attempt:
                seen.append((attempt.number, attempt.retry_details))
        return seen

    assert asyncio.run(main()) == [(1, None)]


def test_iterator_retries_waits_and_tells_each_attempt_why() -> None:
    clock = Clock()
    work, _ = failing(Transient("1"), Connect("2"), clock=clock, run_s=0.5)
    numbers, reasons, results, woke_at = [], [], [], []

    async def main() -> None:
        async for attempt in async_attempts(FIXED, classify=classify, sleep=clock.sleep, clock=clock):
            numbers.append(attempt.number)
            reasons.append(attempt.retry_details and attempt.retry_details.fault)
            woke_at.append(clock.now - 1000.0)
            with attempt:
                results.append(await work())

    asyncio.run(main())
    assert numbers == [1, 2, 3] and reasons == [None, Fault.TRANSIENT, Fault.CONNECT]
    assert results == ["ok"] and clock.sleeps == [1.0, 1.0] and woke_at == [0.0, 1.5, 3.0]


def test_iterator_return_inside_the_block() -> None:
    clock = Clock()
    work, calls = failing(Transient("1"))

    async def run() -> str:
        async for attempt in async_attempts(FIXED, classify=classify, sleep=clock.sleep, clock=clock):
            with attempt:
                return await work()
        raise AssertionError("unreachable")

    assert asyncio.run(run()) == "ok" and len(calls) == 2


@pytest.mark.parametrize("error", [Fatal("permission denied"), InDoubt("reply lost")])
def test_iterator_lets_a_non_retryable_error_out_unchanged(error: Exception) -> None:
    clock = Clock()
    runs = []

    async def main() -> None:
        async for attempt in async_attempts(FIXED, classify=classify, sleep=clock.sleep, clock=clock):
            with attempt:
                runs.append(attempt.number)
                raise error

    with pytest.raises(type(error)) as caught:
        asyncio.run(main())
    assert caught.value is error and error.__context__ is None and error.__cause__ is None
    assert runs == [1] and clock.sleeps == []


def test_iterator_reraises_the_last_error_when_attempts_run_out() -> None:
    clock = Clock()
    errors = [Transient(str(n)) for n in range(4)]

    async def main() -> None:
        async for attempt in async_attempts(FIXED, classify=classify, sleep=clock.sleep, clock=clock):
            with attempt:
                raise errors[attempt.number - 1]

    with pytest.raises(Transient) as caught:
        asyncio.run(main())
    assert caught.value is errors[3] and caught.value.__context__ is None
    assert clock.sleeps == [1.0, 1.0, 1.0]


def test_iterator_respects_the_deadline_and_the_budget() -> None:
    clock = Clock()

    async def count_runs(policy: Retry, budget: RetryBudget | None = None) -> int:
        runs = 0
        with pytest.raises(Transient):
            async for attempt in async_attempts(
                policy, classify=classify, budget=budget, sleep=clock.sleep, clock=clock
            ):
                with attempt:
                    runs += 1
                    raise Transient("again")
        return runs

    deadline = Retry.fixed(attempts=60, delay_s=1.0, jitter=None, deadline_s=3.5)
    assert asyncio.run(count_runs(deadline)) == 4  # runs at 0, 1, 2, 3 s; a 4th wait reaches 4
    spent = RetryBudget(ratio=0.0, min_retries_per_s=0.0)
    assert asyncio.run(count_runs(FIXED, spent)) == 1


def test_iterator_hooks_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    seen: list[RetryDetails] = []
    caplog.set_level(logging.WARNING, logger="tether.retry")

    async def main() -> None:
        async for attempt in async_attempts(
            FIXED, classify=classify, on_retry=seen.append, sleep=clock.sleep, clock=clock, name="load rows"
        ):
            with attempt:
                if attempt.number == 1:
                    raise Transient("serialization failure")

    asyncio.run(main())
    assert [(d.attempt, d.fault, d.delay_s, d.name) for d in seen] == [(1, Fault.TRANSIENT, 1.0, "load rows")]
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "retrying load rows in 1.000 s" in caplog.records[0].getMessage()


def test_iterator_cancellation_during_the_wait_propagates() -> None:
    blocking = BlockingSleep()
    runs = []

    async def block() -> None:
        async for attempt in async_attempts(FIXED, classify=classify, sleep=blocking):
            with attempt:
                runs.append(attempt.number)
                raise Transient("deadlock")

    asyncio.run(cancel_when(blocking.started, block))
    assert runs == [1] and blocking.delays == [1.0]


def test_iterator_cancellation_in_the_block_is_not_swallowed() -> None:
    runs = []
    started = asyncio.Event()

    async def block() -> None:
        async for attempt in async_attempts(FIXED, classify=classify):
            with attempt:
                runs.append(attempt.number)
                started.set()
                await asyncio.Event().wait()

    asyncio.run(cancel_when(started, block))
    assert runs == [1]


def test_iterator_default_wait_is_asyncio_sleep() -> None:
    zero = Retry.fixed(attempts=3, delay_s=0.0, jitter=None)

    async def main() -> list[int]:
        runs = []
        async for attempt in async_attempts(zero, classify=classify):
            with attempt:
                runs.append(attempt.number)
                if attempt.number < 3:
                    raise Connect("refused")
        return runs

    assert asyncio.run(main()) == [1, 2, 3]


# -- the core, driven by hand from a coroutine (as pool.transaction will) ----------------------------


def test_runner_and_state_decide_for_an_async_loop() -> None:
    clock = Clock()
    runner = Runner(FIXED, classify=classify, clock=clock, name="transfer")
    work, calls = failing(Transient("1"), Connect("2"))

    async def transaction() -> str:
        state = runner.start()
        while True:
            try:
                return await work()
            except Exception as error:
                details = state.failed(error)
                if details is None:
                    raise
            await clock.sleep(details.delay_s)

    assert asyncio.run(transaction()) == "ok"
    assert len(calls) == 3 and clock.sleeps == [1.0, 1.0] and runner.policy.history == ()
