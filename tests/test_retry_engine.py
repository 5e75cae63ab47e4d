"""The retry engine (decorator, attempts iterator, Runner) and the default classifier.

A fake clock that only moves when the engine sleeps; no real sleeping anywhere.
"""

from __future__ import annotations

import inspect
import logging
import sys
import types
from collections.abc import Callable

import pytest

from fix_retry import FIXED, Busy, Connect, FakeTime, Fatal, InDoubt, Interrupt, Transient, classify
from tether._retry._budget import RetryBudget
from tether._retry._classify import classify as default_classify
from tether._retry._engine import RetryDetails, Runner, attempts, retry
from tether._retry._policy import Retry
from tether.errors import CommitOutcomeUnknown, ConnectError, PoolClosed, PoolTimeout, SessionLost, bind
from tether.vocab import Classification, Fault
from tether.vocab._drivers import DRIVERS, DriverInfo


class Clock(FakeTime):
    def sleep(self, seconds: float) -> None:
        self.advance(seconds)




def failing(*errors: BaseException, result: str = "ok", clock: Clock | None = None,
            run_s: float = 0.0) -> tuple[Callable[[], str], list[int]]:
    """A function that raises ``errors`` in turn, then returns ``result``; counts calls."""
    calls: list[int] = []

    def work() -> str:
        calls.append(1)
        if clock is not None:
            clock.now += run_s
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return result

    return work, calls


# -- the decorator ------------------------------------------------------------------------


@pytest.mark.parametrize("error", [Transient, Connect])
def test_decorator_retries_connect_and_transient(error: type[Exception]) -> None:
    clock = Clock()
    work, calls = failing(error("1"), error("2"), clock=clock)
    wrapped = retry(FIXED, classify=classify, sleep=clock.sleep, clock=clock)(work)
    assert wrapped() == "ok"
    assert len(calls) == 3 and clock.sleeps == [1.0, 1.0]


@pytest.mark.parametrize("error", [Fatal("syntax"), InDoubt("commit reply lost")])
def test_decorator_never_retries_fatal_or_in_doubt_and_raises_it_unchanged(error: Exception) -> None:
    clock = Clock()
    work, calls = failing(error)
    wrapped = retry(FIXED, classify=classify, sleep=clock.sleep, clock=clock)(work)
    with pytest.raises(type(error)) as caught:
        wrapped()
    assert caught.value is error
    assert error.__cause__ is None and error.__context__ is None
    assert len(calls) == 1 and clock.sleeps == []


def test_in_doubt_is_retried_when_the_work_is_idempotent() -> None:
    clock = Clock()
    work, calls = failing(InDoubt("reply lost"))
    policy = Retry.fixed(attempts=2, delay_s=0.5, jitter=None, idempotent=True)
    assert retry(policy, classify=classify, sleep=clock.sleep, clock=clock)(work)() == "ok"
    assert len(calls) == 2


def test_the_last_error_is_reraised_unchanged_when_attempts_run_out() -> None:
    clock = Clock()
    errors = [Transient(f"deadlock {n}") for n in range(1, 5)]
    work, calls = failing(*errors)
    wrapped = retry(FIXED, classify=classify, sleep=clock.sleep, clock=clock)(work)
    with pytest.raises(Transient) as caught:
        wrapped()
    assert caught.value is errors[-1] and caught.value.__cause__ is None
    assert len(calls) == 4 and clock.sleeps == [1.0, 1.0, 1.0]


def test_a_later_non_retryable_error_stops_at_once() -> None:
    clock = Clock()
    fatal = Fatal("constraint")
    work, calls = failing(Transient("1"), fatal)
    with pytest.raises(Fatal) as caught:
        retry(FIXED, classify=classify, sleep=clock.sleep, clock=clock)(work)()
    assert caught.value is fatal and len(calls) == 2


def test_deadline_stops_retrying() -> None:
    clock = Clock()
    work, calls = failing(*[Transient(str(n)) for n in range(10)], clock=clock, run_s=1.5)
    policy = Retry.fixed(attempts=10, delay_s=1.0, jitter=None, deadline_s=6.0)
    with pytest.raises(Transient):
        retry(policy, classify=classify, sleep=clock.sleep, clock=clock)(work)()
    # runs end at 1.5, 4.0; after the second a 1 s wait would reach 5.0 < 6.0, so a third
    # run (ending at 6.5) happens; after it the deadline has passed.
    assert len(calls) == 3 and clock.now - 1000.0 == pytest.approx(6.5)


def test_retry_after_from_the_server_is_waited() -> None:
    clock = Clock()
    work, _ = failing(Busy("40501"))
    policy = Retry.exponential(attempts=3, delta_s=0.1, jitter=None)
    assert retry(policy, classify=classify, sleep=clock.sleep, clock=clock)(work)() == "ok"
    assert clock.sleeps == [10.0]


def test_budget_exhaustion_stops_retrying() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.0, min_retries_per_s=1.0)  # one retry, then none this second
    wrapped_calls: list[list[int]] = []
    for _ in range(2):
        work, calls = failing(Transient("a"), Transient("b"))
        wrapped_calls.append(calls)
        policy = Retry.fixed(attempts=5, delay_s=0.0, jitter=None)
        with pytest.raises(Transient):
            retry(policy, classify=classify, budget=budget, sleep=clock.sleep, clock=clock)(work)()
    assert [len(calls) for calls in wrapped_calls] == [2, 1]


def test_each_call_deposits_into_the_budget() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.5, min_retries_per_s=0.0)
    ok = retry(FIXED, classify=classify, budget=budget, sleep=clock.sleep, clock=clock)(lambda: 1)
    ok()
    ok()
    assert budget.available(clock.now) == 1.0


def test_hooks_get_a_frozen_payload() -> None:
    clock = Clock()
    seen: list[RetryDetails] = []
    first, second = Transient("deadlock victim"), Connect("refused")
    work, _ = failing(first, second, clock=clock, run_s=0.25)
    wrapped = retry(FIXED, classify=classify, on_retry=seen.append, sleep=clock.sleep, clock=clock)(work)
    wrapped()
    assert [(d.attempt, d.fault, d.reason, d.delay_s) for d in seen] == [
        (1, Fault.TRANSIENT, "test Transient", 1.0),
        (2, Fault.CONNECT, "test Connect", 1.0),
    ]
    assert seen[0].error is first and seen[1].error is second
    assert seen[0].elapsed_s == pytest.approx(0.25) and seen[1].elapsed_s == pytest.approx(1.5)
    assert seen[0].name.endswith("failing.<locals>.work")
    with pytest.raises(AttributeError):
        seen[0].delay_s = 0.0  # type: ignore[misc]


class Leaky(Exception):
    """An error whose args hold a secret its str() leaves out."""

    def __str__(self) -> str:
        return "login failed for user app"


def test_every_retry_is_logged_at_warning_without_the_args(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()

    def leaky_classify(exc: BaseException) -> Classification:
        return Classification(Fault.CONNECT, "connection refused")

    work, _ = failing(Leaky("password=hunter2"))
    caplog.set_level(logging.DEBUG, logger="tether.retry")
    retry(FIXED, classify=leaky_classify, sleep=clock.sleep, clock=clock)(work)()
    records = [r for r in caplog.records if r.name == "tether.retry"]
    assert [r.levelno for r in records] == [logging.WARNING]
    message = records[0].getMessage()
    assert "attempt 1 of 4" in message and "connect fault (connection refused)" in message
    assert "Leaky: login failed for user app" in message and "in 1.000 s" in message
    assert "hunter2" not in message
    assert records[0].args and isinstance(records[0].args, tuple)  # %-style, formatted lazily


def test_decorator_keeps_the_signature() -> None:
    @retry(3, classify=classify)
    def transfer(src: int, dst: int, *, amount: float = 1.0) -> float:
        """Move money."""
        return amount

    assert transfer.__name__ == "transfer" and transfer.__doc__ == "Move money."
    assert str(inspect.signature(transfer)) == str(inspect.signature(transfer.__wrapped__))  # type: ignore[attr-defined]
    assert transfer(1, 2, amount=5.0) == 5.0


def test_bare_decorator_uses_the_default_policy_and_classifier() -> None:
    calls: list[int] = []

    @retry
    def work(x: int) -> int:
        calls.append(x)
        if x < 0:
            raise Fatal("unknown to tether: FATAL")
        return x * 2

    assert work(21) == 42
    with pytest.raises(Fatal):
        work(-1)
    assert calls == [21, -1]


def test_decorator_rejects_what_it_cannot_wrap() -> None:
    async def coro() -> None:
        pass

    assert inspect.iscoroutinefunction(retry(coro))  # wrapped by the async engine
    with pytest.raises(TypeError, match=r"^policy must be"):
        retry("5")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match=r"^attempts must"):
        retry(61)


def test_base_exceptions_are_never_retried() -> None:
    clock = Clock()
    interrupt = Interrupt()
    work, calls = failing(interrupt)
    with pytest.raises(Interrupt) as caught:
        retry(FIXED, classify=classify, sleep=clock.sleep, clock=clock)(work)()
    assert caught.value is interrupt and len(calls) == 1


# -- the attempts iterator --------------------------------------------------------------------


def test_iterator_runs_once_when_the_block_succeeds() -> None:
    seen = []
    for attempt in attempts(FIXED, classify=classify):
        with attempt:
            seen.append((attempt.number, attempt.retry_details))
    assert seen == [(1, None)]


def test_iterator_retries_and_tells_each_attempt_why() -> None:
    clock = Clock()
    work, _ = failing(Transient("1"), Connect("2"))
    numbers, reasons, results = [], [], []
    for attempt in attempts(FIXED, classify=classify, sleep=clock.sleep, clock=clock):
        numbers.append(attempt.number)
        reasons.append(attempt.retry_details and attempt.retry_details.fault)
        with attempt:
            results.append(work())
    assert numbers == [1, 2, 3] and reasons == [None, Fault.TRANSIENT, Fault.CONNECT]
    assert results == ["ok"] and clock.sleeps == [1.0, 1.0]


def test_iterator_return_inside_the_block() -> None:
    def run() -> str:
        work, _ = failing(Transient("1"))
        clock = Clock()
        for attempt in attempts(FIXED, classify=classify, sleep=clock.sleep, clock=clock):
            with attempt:
                return work()
        raise AssertionError("unreachable")

    assert run() == "ok"


def test_iterator_lets_a_non_retryable_error_out_unchanged() -> None:
    clock = Clock()
    fatal = Fatal("permission denied")
    runs = 0
    with pytest.raises(Fatal) as caught:
        for attempt in attempts(FIXED, classify=classify, sleep=clock.sleep, clock=clock):
            with attempt:
                runs += 1
                raise fatal
    assert caught.value is fatal and fatal.__context__ is None and fatal.__cause__ is None
    assert runs == 1 and clock.sleeps == []


def test_iterator_reraises_the_last_error_when_attempts_run_out() -> None:
    clock = Clock()
    errors = [Transient(str(n)) for n in range(4)]
    with pytest.raises(Transient) as caught:
        for attempt in attempts(FIXED, classify=classify, sleep=clock.sleep, clock=clock):
            with attempt:
                raise errors[attempt.number - 1]
    assert caught.value is errors[3] and caught.value.__context__ is None
    assert len(clock.sleeps) == 3


def test_iterator_respects_the_deadline_and_the_budget() -> None:
    clock = Clock()
    policy = Retry.fixed(attempts=60, delay_s=1.0, jitter=None, deadline_s=3.5)
    runs = 0
    with pytest.raises(Transient):
        for attempt in attempts(policy, classify=classify, sleep=clock.sleep, clock=clock):
            with attempt:
                runs += 1
                raise Transient("again")
    assert runs == 4  # runs at 0, 1, 2, 3 s; one more wait would reach 4 >= 3.5

    budget = RetryBudget(ratio=0.0, min_retries_per_s=0.0)
    runs = 0
    with pytest.raises(Transient):
        for attempt in attempts(FIXED, classify=classify, budget=budget, sleep=clock.sleep, clock=clock):
            with attempt:
                runs += 1
                raise Transient("again")
    assert runs == 1


def test_iterator_hooks_and_logger_name(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    seen: list[RetryDetails] = []
    caplog.set_level(logging.WARNING, logger="tether.retry")
    for attempt in attempts(
        FIXED, classify=classify, on_retry=seen.append, sleep=clock.sleep, clock=clock, name="load rows"
    ):
        with attempt:
            if attempt.number == 1:
                raise Transient("serialization failure")
    assert [(d.attempt, d.name) for d in seen] == [(1, "load rows")]
    assert "retrying load rows in 1.000 s" in caplog.records[0].getMessage()


# -- the Runner that pool.transaction drives -------------------------------------------------------


def test_runner_state_for_one_call() -> None:
    clock = Clock()
    runner = Runner(Retry.fixed(attempts=3, delay_s=1.0, jitter=None, deadline_s=10.0),
                    classify=classify, clock=clock, name="transfer")
    state = runner.start()
    assert state.attempt == 1 and state.remaining_s() == 10.0
    clock.now += 2.0
    details = state.failed(Transient("x"))
    assert details is not None and details.delay_s == 1.0 and state.attempt == 2
    assert state.remaining_s() == 8.0
    # the caller's own verdict wins (a COMMIT resolved as aborted is safe to run again)
    details = state.failed(InDoubt("reply lost"), Classification(Fault.TRANSIENT, "txid_status: aborted"))
    assert details is not None and details.reason == "txid_status: aborted" and state.attempt == 3
    assert state.failed(Transient("x")) is None  # three runs done
    assert runner.policy.history == ()  # the shared policy is untouched
    assert Runner().start().remaining_s() is None


# -- the default classifier --------------------------------------------------------------------------


def test_tethers_own_errors_come_first() -> None:
    assert default_classify(ConnectError("no route")).fault is Fault.CONNECT
    assert default_classify(PoolTimeout("busy")).fault is Fault.CONNECT
    assert default_classify(CommitOutcomeUnknown("lost")).fault is Fault.FATAL
    assert default_classify(SessionLost("open transaction")).fault is Fault.FATAL
    assert default_classify(PoolClosed("closed")).fault is Fault.FATAL


def test_a_pool_timeout_bound_to_a_driver_class_is_still_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    driver_error = type("OperationalError", (Exception,), {"__module__": "psycopg"})
    bound = bind(PoolTimeout, driver_error)
    assert default_classify(bound("busy")).fault is Fault.CONNECT


def test_what_nobody_understands_is_fatal() -> None:
    assert default_classify(ValueError("x")).fault is Fault.FATAL
    # a bare socket error is understood: the request may have gone out (in doubt)
    assert default_classify(ConnectionResetError()).fault is Fault.IN_DOUBT
    assert "unclassified Transient" in default_classify(Transient()).reason


def driver_error(module: str) -> BaseException:
    cls: type[Exception] = type("OperationalError", (Exception,), {"__module__": module})
    return cls("boom")


@pytest.mark.parametrize(
    ("module", "dialect"),
    [
        ("psycopg.errors", "postgresql"),
        ("pymssql._pymssql", "sqlserver"),
        ("pyodbc", "sqlserver"),
        ("pytds.tds_base", "sqlserver"),
        ("mssql_python.exceptions", "sqlserver"),
        ("pymysql.err", "mysql"),
        ("MySQLdb._exceptions", "mysql"),
        ("mariadb", "mysql"),
    ],
)
def test_driver_errors_go_to_their_dialect(
    monkeypatch: pytest.MonkeyPatch, module: str, dialect: str
) -> None:
    fake = types.ModuleType(f"tether.dialects.{dialect}")
    fake.classify = lambda exc: Classification(Fault.TRANSIENT, f"{dialect} says so")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, f"tether.dialects.{dialect}", fake)
    assert default_classify(driver_error(module)) == Classification(Fault.TRANSIENT, f"{dialect} says so")


@pytest.mark.parametrize("info", DRIVERS, ids=lambda info: info.imports)
def test_every_registry_package_goes_to_its_dialect(
    monkeypatch: pytest.MonkeyPatch, info: DriverInfo
) -> None:
    # Pooled or not (MySQLdb, mariadb): the registry is the one list the classifier reads.
    fake = types.ModuleType(f"tether.dialects.{info.dialect}")
    fake.classify = lambda exc: Classification(Fault.TRANSIENT, f"{info.dialect} says so")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, f"tether.dialects.{info.dialect}", fake)
    for module in (info.imports, f"{info.imports}.errors"):
        assert default_classify(driver_error(module)).reason == f"{info.dialect} says so"


def test_packages_outside_the_registry_are_not_dispatched() -> None:
    assert default_classify(driver_error("psycopg2.errors")).reason.startswith("unclassified")


def test_a_missing_dialect_classifier_is_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tether.dialects.mysql", None)  # import fails
    verdict = default_classify(driver_error("pymysql.err"))
    assert verdict.fault is Fault.FATAL and "no mysql classifier" in verdict.reason
    no_classify = types.ModuleType("tether.dialects.sqlserver")
    monkeypatch.setitem(sys.modules, "tether.dialects.sqlserver", no_classify)
    assert default_classify(driver_error("pyodbc")).fault is Fault.FATAL


def test_a_connect_error_whose_cause_is_final_is_not_retried() -> None:
    pymysql = pytest.importorskip("pymysql", reason="PyMySQL is not installed")
    from tether._retry._classify import classify as default_classify
    from tether.errors import ConnectError
    from tether.vocab import Fault as F

    refused = ConnectError("could not connect", host="db", port=3306, attempts=1)
    refused.__cause__ = pymysql.err.OperationalError(2003, "Can't connect to MySQL server")
    denied = ConnectError("could not connect", host="db", port=3306, attempts=1)
    denied.__cause__ = pymysql.err.OperationalError(1045, "Access denied for user 'app'")
    assert default_classify(refused).fault is F.CONNECT
    assert default_classify(denied).fault is F.FATAL
    assert default_classify(ConnectionResetError(104, "reset")).fault is F.IN_DOUBT
