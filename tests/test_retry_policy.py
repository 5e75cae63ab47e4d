"""Retry policy arithmetic and the retry budget: pure, no clock, no sleeping."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import pytest

from tether._retry._budget import RetryBudget
from tether._retry._policy import DEFAULT, Retry
from tether.vocab import Classification, Fault

SEEDS = range(200)
TRANSIENT = Classification(Fault.TRANSIENT, "deadlock")


def delays(policy: Retry, *, seed: int = 0, n: int | None = None) -> list[float]:
    """The gaps a policy gives after runs 1..n, each fed the previous one."""
    rng = random.Random(seed)
    out: list[float] = []
    previous = 0.0
    for attempt in range(1, (n or policy.attempts - 1) + 1):
        previous = policy.next_delay(attempt, previous, rng)
        out.append(previous)
    return out


# -- strategies without jitter -----------------------------------------------------------


def test_exponential_follows_sqlclient_two_to_the_n_minus_one() -> None:
    policy = Retry.exponential(attempts=7, delta_s=1.0, max_s=60.0, jitter=None)
    assert delays(policy) == [1.0, 3.0, 7.0, 15.0, 31.0, 60.0]


def test_incremental_and_fixed() -> None:
    assert delays(Retry.incremental(attempts=5, delta_s=0.5, jitter=None)) == [0.5, 1.0, 1.5, 2.0]
    assert delays(Retry.fixed(attempts=4, delay_s=2.0, jitter=None)) == [2.0, 2.0, 2.0]


def test_gaps_are_clamped_to_min_and_max() -> None:
    policy = Retry.exponential(attempts=6, delta_s=1.0, min_s=2.0, max_s=10.0, jitter=None)
    assert delays(policy) == [2.0, 3.0, 7.0, 10.0, 10.0]
    assert delays(Retry.incremental(attempts=60, delta_s=1.0, max_s=5.0, jitter=None))[-1] == 5.0


def test_sixty_exponential_attempts_do_not_overflow() -> None:
    policy = Retry.exponential(attempts=60, delta_s=120.0, max_s=120.0, jitter=None)
    assert delays(policy)[-1] == 120.0


# -- jitter bounds over many seeds ----------------------------------------------------------


def test_sqlclient_jitter_is_within_twenty_percent() -> None:
    policy = Retry.exponential(attempts=5, delta_s=1.0, max_s=100.0)
    for seed in SEEDS:
        for base, gap in zip([1.0, 3.0, 7.0, 15.0], delays(policy, seed=seed), strict=True):
            assert 0.8 * base <= gap <= 1.2 * base


def test_sqlclient_jitter_spreads_gaps_at_the_cap() -> None:
    policy = Retry.exponential(attempts=10, delta_s=1.0, max_s=10.0)
    capped = [delays(policy, seed=seed)[-1] for seed in SEEDS]
    assert all(8.0 <= gap <= 10.0 for gap in capped)
    assert len(set(capped)) > 100  # not all at 10.0: no lockstep at the cap


def test_jitter_actually_varies() -> None:
    policy = Retry.fixed(attempts=2, delay_s=1.0)
    assert len({delays(policy, seed=seed)[0] for seed in SEEDS}) > 100


def test_full_jitter_is_between_zero_and_the_gap() -> None:
    policy = Retry.exponential(attempts=6, delta_s=1.0, max_s=10.0, jitter="full")
    for seed in SEEDS:
        for base, gap in zip([1.0, 3.0, 7.0, 10.0, 10.0], delays(policy, seed=seed), strict=True):
            assert 0.0 <= gap <= base


def test_decorrelated_jitter_stays_between_delta_and_three_times_the_last() -> None:
    policy = Retry.exponential(attempts=30, delta_s=0.5, max_s=20.0, jitter="decorrelated")
    for seed in SEEDS:
        previous = 0.5
        for gap in delays(policy, seed=seed):
            assert 0.5 <= gap <= min(previous * 3.0, 20.0)
            previous = gap


@pytest.mark.parametrize("jitter", ["sqlclient", "full", "decorrelated", None])
@pytest.mark.parametrize("maker", [Retry.exponential, Retry.incremental])
def test_every_gap_is_within_min_and_max(maker: Callable[..., Retry], jitter: str | None) -> None:
    policy = maker(attempts=20, delta_s=0.7, min_s=0.5, max_s=4.0, jitter=jitter)
    for seed in range(50):
        assert all(0.5 <= gap <= 4.0 for gap in delays(policy, seed=seed))


# -- what is retried ------------------------------------------------------------------------


def test_default_retries_connect_and_transient_only() -> None:
    def retried(policy: Retry, fault: Fault) -> bool:
        return policy.should_retry(Classification(fault, "x"), attempt=1, elapsed_s=0.0)

    assert retried(DEFAULT, Fault.CONNECT) and retried(DEFAULT, Fault.TRANSIENT)
    assert not retried(DEFAULT, Fault.IN_DOUBT) and not retried(DEFAULT, Fault.FATAL)
    idempotent = Retry.exponential(idempotent=True)
    assert idempotent.idempotent and retried(idempotent, Fault.IN_DOUBT)
    assert not retried(idempotent, Fault.FATAL)
    assert not retried(Retry.exponential(retry_on={Fault.TRANSIENT}), Fault.CONNECT)


def test_attempts_counts_every_run_the_first_included() -> None:
    policy = Retry.fixed(attempts=3, delay_s=1.0)
    verdicts = [policy.should_retry(TRANSIENT, attempt=n, elapsed_s=0.0) for n in (1, 2, 3)]
    assert verdicts == [True, True, False]
    assert not Retry.none().should_retry(TRANSIENT, attempt=1, elapsed_s=0.0)
    assert not Retry.fixed(attempts=1, delay_s=1.0).should_retry(TRANSIENT, attempt=1, elapsed_s=0.0)


def test_after_returns_a_new_value_and_leaves_the_shared_policy_alone() -> None:
    policy = Retry.fixed(attempts=3, delay_s=1.0, jitter=None)
    step = policy.after(Fault.TRANSIENT, delay_s=1.0).after(Fault.CONNECT, delay_s=1.0)
    assert step.history == (Fault.TRANSIENT, Fault.CONNECT)
    assert policy.history == () and DEFAULT.history == ()
    assert step.delay_before_retry(TRANSIENT, elapsed_s=0.0, rng=random.Random()) is None  # 3 runs done
    assert policy.delay_before_retry(TRANSIENT, elapsed_s=0.0, rng=random.Random()) == 1.0


# -- deadline and the server's own wait -----------------------------------------------------------


def test_no_retry_whose_wait_would_reach_the_deadline() -> None:
    policy = Retry.fixed(attempts=10, delay_s=2.0, jitter=None, deadline_s=10.0)
    rng = random.Random(0)
    assert policy.delay_before_retry(TRANSIENT, elapsed_s=7.9, rng=rng) == 2.0
    assert policy.delay_before_retry(TRANSIENT, elapsed_s=8.0, rng=rng) is None
    assert not policy.should_retry(TRANSIENT, attempt=1, elapsed_s=10.0)


def test_retry_after_is_a_minimum_wait_but_never_past_the_deadline() -> None:
    busy = Classification(Fault.TRANSIENT, "40501 service busy", retry_after_s=10.0)
    rng = random.Random(0)
    policy = Retry.exponential(attempts=5, delta_s=0.1, jitter=None)
    assert policy.delay_before_retry(busy, elapsed_s=0.0, rng=rng) == 10.0
    short = Classification(Fault.TRANSIENT, "x", retry_after_s=0.01)
    assert policy.delay_before_retry(short, elapsed_s=0.0, rng=rng) == 0.1
    bounded = Retry.exponential(attempts=5, delta_s=0.1, jitter=None, deadline_s=5.0)
    assert bounded.delay_before_retry(busy, elapsed_s=0.0, rng=rng) is None


def test_default_policy() -> None:
    assert DEFAULT.strategy == "exponential" and DEFAULT.attempts == 7
    assert DEFAULT.delta_s == 0.05 and DEFAULT.jitter == "sqlclient" and DEFAULT.deadline_s is None
    total = sum(delays(Retry.exponential(attempts=6, delta_s=0.1, jitter=None)))
    assert total == pytest.approx(5.7)


# -- validation and coercion ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "parameter"),
    [
        (lambda: Retry.exponential(attempts=0), "attempts"),
        (lambda: Retry.exponential(attempts=61), "attempts"),
        (lambda: Retry.incremental(attempts=-1), "attempts"),
        (lambda: Retry.exponential(delta_s=-1.0), "delta_s"),
        (lambda: Retry.exponential(min_s=-0.1), "min_s"),
        (lambda: Retry.exponential(max_s=float("nan")), "max_s"),
        (lambda: Retry.exponential(min_s=5.0, max_s=1.0), "max_s"),
        (lambda: Retry.fixed(attempts=3, delay_s=-2.0), "delay_s"),
        (lambda: Retry.fixed(attempts=0, delay_s=1.0), "attempts"),
        (lambda: Retry.exponential(jitter="equal"), "jitter"),  # type: ignore[arg-type]
        (lambda: Retry.exponential(deadline_s=0.0), "deadline_s"),
        (lambda: Retry.exponential(deadline_s=-3.0), "deadline_s"),
        (lambda: Retry(strategy="none", attempts=2), "attempts"),
        (lambda: Retry(strategy="linear"), "strategy"),  # type: ignore[arg-type]
        (lambda: Retry.exponential(retry_on={"connect"}), "retry_on"),  # type: ignore[arg-type]
    ],
)
def test_impossible_policies_name_the_parameter(make: object, parameter: str) -> None:
    with pytest.raises(ValueError, match=rf"^{parameter} must"):
        make()  # type: ignore[operator]


def test_sixty_attempts_is_allowed() -> None:
    assert Retry.exponential(attempts=60).attempts == 60


def test_from_value_coerces_shorthands_once() -> None:
    policy = Retry.fixed(attempts=2, delay_s=1.0)
    assert Retry.from_value(None) is DEFAULT
    assert Retry.from_value(True) is DEFAULT
    assert Retry.from_value(policy) is policy
    assert Retry.from_value(False) == Retry.none()
    three = Retry.from_value(3)
    assert three.attempts == 3 and three.strategy == "exponential" and three.delta_s == DEFAULT.delta_s
    with pytest.raises(ValueError, match=r"^attempts must"):
        Retry.from_value(0)
    with pytest.raises(TypeError, match=r"^retry must be .* not str"):
        Retry.from_value("3")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^policy must be"):
        Retry.from_value(2.5, name="policy")  # type: ignore[arg-type]


def test_policies_are_frozen_and_read_well() -> None:
    with pytest.raises(AttributeError):
        DEFAULT.attempts = 1  # type: ignore[misc]
    assert repr(DEFAULT) == "Retry.exponential(attempts=7, delta_s=0.05, max_s=30.0, jitter='sqlclient')"
    assert repr(Retry.none()) == "Retry.none()"
    assert "retry_on={CONNECT, IN_DOUBT, TRANSIENT}" in repr(Retry.incremental(idempotent=True))
    fixed = Retry.fixed(attempts=2, delay_s=1.0, jitter=None)
    assert repr(fixed) == "Retry.fixed(attempts=2, delay_s=1.0, max_s=1.2, jitter=None)"


# -- the retry budget ------------------------------------------------------------------------


def spend_all(budget: RetryBudget, now: float) -> int:
    spent = 0
    while budget.try_spend(now):
        spent += 1
    return spent


def test_budget_floor_allows_min_retries_per_second() -> None:
    budget = RetryBudget(ratio=0.0, min_retries_per_s=5.0)
    assert spend_all(budget, 100.0) == 5
    assert spend_all(budget, 100.5) == 2  # 2.5 tokens came back in half a second
    assert spend_all(budget, 110.0) == 5  # never more than one second's worth


def test_budget_floor_below_one_per_second_still_allows_one() -> None:
    budget = RetryBudget(ratio=0.0, min_retries_per_s=0.5)
    assert spend_all(budget, 0.0) == 1
    assert spend_all(budget, 1.0) == 0
    assert spend_all(budget, 2.0) == 1


def test_budget_retries_are_a_fraction_of_requests() -> None:
    budget = RetryBudget(ratio=0.1, min_retries_per_s=0.0, cap=100.0)
    assert not budget.try_spend(0.0)
    for _ in range(25):
        budget.deposit(0.0)
    assert spend_all(budget, 0.0) == 2
    assert budget.available(0.0) == pytest.approx(0.5)


def test_budget_deposits_are_capped() -> None:
    budget = RetryBudget(ratio=1.0, min_retries_per_s=0.0, cap=3.0)
    for _ in range(10):
        budget.deposit(0.0)
    assert spend_all(budget, 0.0) == 3


def test_budget_ignores_a_clock_that_goes_backwards() -> None:
    budget = RetryBudget(ratio=0.0, min_retries_per_s=2.0)
    assert spend_all(budget, 10.0) == 2
    assert spend_all(budget, 5.0) == 0
    assert spend_all(budget, 10.5) == 1


def test_budget_is_thread_safe() -> None:
    budget = RetryBudget(ratio=1.0, min_retries_per_s=0.0, cap=1000.0)
    for _ in range(500):
        budget.deposit(0.0)
    wins: list[int] = []

    def worker() -> None:
        wins.append(sum(budget.try_spend(0.0) for _ in range(200)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(wins) == 500


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [({"ratio": -0.1}, "ratio"), ({"min_retries_per_s": -1.0}, "min_retries_per_s"), ({"cap": 0.5}, "cap")],
)
def test_budget_validation_names_the_parameter(kwargs: dict[str, float], parameter: str) -> None:
    with pytest.raises(ValueError, match=f"^{parameter} must"):
        RetryBudget(**kwargs)


def test_budget_repr() -> None:
    assert repr(RetryBudget()) == "<RetryBudget 10.0 tokens | ratio 0.1, floor 10/s, cap 100>"


def test_connect_retry_waits_the_interval_after_the_immediate_ones() -> None:
    from tether._retry import ConnectRetry

    opening = ConnectRetry(count=3, interval_s=10.0)  # SqlClient's open: the first retry at once
    assert [opening.delay_before(n) for n in (1, 2, 3, 4)] == [0.0, 0.0, 10.0, 10.0]
    reconnect = ConnectRetry(count=2, interval_s=10.0, immediate=0)  # idle resiliency's later reconnects
    assert [reconnect.delay_before(n) for n in (1, 2, 3)] == [0.0, 10.0, 10.0]
