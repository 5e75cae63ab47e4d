"""Retry policies: immutable values that say whether to try again, and when.

A policy is shared (by a pool, by every call of a decorated function); the state of one
call is a new value made by :meth:`Retry.after`, never a change to the shared one
(urllib3 ``Retry.increment``). Every method here is pure: time and randomness come in as
arguments.

The three strategies follow Microsoft SqlClient's configurable retry logic
(``SqlRetryLogicOption``: NumberOfTries 1..60 counting the first try, DeltaTime,
MinTimeInterval, MaxTimeInterval; each gap randomized x0.8..1.2). See ``_base_gap`` for
the formulas and where tether differs.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from .._validate import MAX_WAIT_S, boolean, choice, integer, seconds, type_error, value_error
from ..vocab import Classification, Fault

__all__ = ["DEFAULT", "Jitter", "Retry", "Strategy"]

Strategy = Literal["exponential", "incremental", "fixed", "none"]
Jitter = Literal["sqlclient", "full", "decorrelated"]

MAX_ATTEMPTS = 60  # SqlRetryLogic: "numberOfTries should be between 1 and 60"
_JITTERS = ("sqlclient", "full", "decorrelated")
_STRATEGIES = ("exponential", "incremental", "fixed", "none")
_SAFE = frozenset({Fault.CONNECT, Fault.TRANSIENT})


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Retry:
    """How many times to run a unit of work, and how long to wait between runs.

    ``attempts`` counts every run, the first included (SqlClient's NumberOfTries).
    ``deadline_s`` bounds the whole, first run and waits included: no retry is started
    whose wait would reach it. Use the constructors: :meth:`exponential`,
    :meth:`incremental`, :meth:`fixed`, :meth:`none`.
    """

    strategy: Strategy = "exponential"
    attempts: int = 5
    delta_s: float = 1.0
    min_s: float = 0.0
    max_s: float = 30.0
    jitter: Jitter | None = "sqlclient"
    deadline_s: float | None = None
    retry_on: frozenset[Fault] = _SAFE
    history: tuple[Fault, ...] = ()  # faults of the failed runs so far, oldest first
    last_delay_s: float = 0.0  # the wait after the latest failure (decorrelated jitter)

    def __post_init__(self) -> None:
        choice("strategy", self.strategy, _STRATEGIES)
        high = 1 if self.strategy == "none" else MAX_ATTEMPTS
        integer("attempts", self.attempts, low=1, high=high)
        for name in ("delta_s", "min_s", "max_s", "last_delay_s"):
            seconds(name, getattr(self, name))
        if self.max_s < self.min_s:
            raise value_error("max_s", f"must be >= min_s ({self.min_s!r})", self.max_s)
        if self.jitter is not None:
            choice("jitter", self.jitter, _JITTERS)
        if self.deadline_s is not None:
            seconds("deadline_s", self.deadline_s, low_open=True)
        if not isinstance(self.retry_on, frozenset) or not all(isinstance(f, Fault) for f in self.retry_on):
            raise type_error("retry_on", "a frozenset of tether.Fault", self.retry_on)
        if not isinstance(self.history, tuple) or not all(isinstance(f, Fault) for f in self.history):
            raise type_error("history", "a tuple of tether.Fault", self.history)

    # -- constructors ---------------------------------------------------------------

    @classmethod
    def exponential(
        cls,
        *,
        attempts: int = 5,
        delta_s: float = 1.0,
        min_s: float = 0.0,
        max_s: float = 30.0,
        jitter: Jitter | None = "sqlclient",
        deadline_s: float | None = None,
        retry_on: Iterable[Fault] | None = None,
        idempotent: bool = False,
    ) -> Retry:
        """Gaps of delta, 3 delta, 7 delta ... ((2^n - 1) delta, SqlClient's formula)."""
        return cls(strategy="exponential", attempts=attempts, delta_s=delta_s, min_s=min_s, max_s=max_s,
                   jitter=jitter, deadline_s=deadline_s, retry_on=_faults(retry_on, idempotent))

    @classmethod
    def incremental(
        cls,
        *,
        attempts: int = 5,
        delta_s: float = 1.0,
        min_s: float = 0.0,
        max_s: float = 30.0,
        jitter: Jitter | None = "sqlclient",
        deadline_s: float | None = None,
        retry_on: Iterable[Fault] | None = None,
        idempotent: bool = False,
    ) -> Retry:
        """Gaps of delta, 2 delta, 3 delta ..."""
        return cls(strategy="incremental", attempts=attempts, delta_s=delta_s, min_s=min_s, max_s=max_s,
                   jitter=jitter, deadline_s=deadline_s, retry_on=_faults(retry_on, idempotent))

    @classmethod
    def fixed(
        cls,
        *,
        attempts: int,
        delay_s: float,
        min_s: float = 0.0,
        max_s: float | None = None,
        jitter: Jitter | None = "sqlclient",
        deadline_s: float | None = None,
        retry_on: Iterable[Fault] | None = None,
        idempotent: bool = False,
    ) -> Retry:
        """The same gap, ``delay_s``, before every retry (``max_s`` defaults to 1.2 delay_s)."""
        delay_s = seconds("delay_s", delay_s, high=MAX_WAIT_S / 1.2)
        return cls(strategy="fixed", attempts=attempts, delta_s=delay_s, min_s=min_s,
                   max_s=delay_s * 1.2 if max_s is None else max_s, jitter=jitter,
                   deadline_s=deadline_s, retry_on=_faults(retry_on, idempotent))

    @classmethod
    def none(cls) -> Retry:
        """Run once; never retry."""
        return cls(strategy="none", attempts=1, delta_s=0.0, jitter=None)

    @classmethod
    def from_value(cls, value: Retry | int | bool | None, *, name: str = "retry") -> Retry:
        """Coerce a shorthand, once, at the API boundary (urllib3 ``Retry.from_int``).

        ``None`` or ``True`` -> :data:`DEFAULT`; ``False`` -> :meth:`none`; an int ``n`` ->
        :data:`DEFAULT` with ``n`` attempts in all; a ``Retry`` -> itself.
        """
        if value is None or value is True:
            return DEFAULT
        if value is False:
            return _NONE
        if isinstance(value, Retry):
            return value
        if isinstance(value, int):
            return replace(DEFAULT, attempts=value)
        raise TypeError(f"{name} must be a Retry, an int (attempts), None or a bool, "
                        f"not {type(value).__name__}")

    # -- decisions (pure) -----------------------------------------------------------

    @property
    def idempotent(self) -> bool:
        """Whether work that may have run (IN_DOUBT) is run again."""
        return Fault.IN_DOUBT in self.retry_on

    def after(self, fault: Fault, *, delay_s: float = 0.0) -> Retry:
        """The policy for the rest of a call, after a run failed with ``fault``."""
        return replace(self, history=(*self.history, fault), last_delay_s=delay_s)

    def should_retry(self, classification: Classification, *, attempt: int, elapsed_s: float) -> bool:
        """Whether run number ``attempt`` (1-based), failed so, may be followed by another."""
        return (
            classification.fault in self.retry_on
            and attempt < self.attempts
            and (self.deadline_s is None or elapsed_s < self.deadline_s)
        )

    def next_delay(self, attempt: int, previous_delay: float, rng: random.Random) -> float:
        """Seconds to wait after failed run ``attempt`` (1-based), clamped to [min_s, max_s]."""
        base = _base_gap(self.strategy, attempt, self.delta_s)
        jitter = self.jitter
        if jitter == "sqlclient":
            gap = base * rng.uniform(0.8, 1.2)
            if gap >= self.max_s:
                # SqlClient: past the cap, a random point in [0.8 max, max], so a fleet
                # that reached the cap does not retry in lockstep.
                gap = self.max_s * rng.uniform(0.8, 1.0)
        elif jitter == "full":  # AWS "full jitter": uniform(0, min(cap, base))
            gap = rng.uniform(0.0, min(base, self.max_s))
        elif jitter == "decorrelated":
            # AWS "decorrelated jitter": min(cap, uniform(base, previous * 3)). Its floor is
            # delta_s (AWS's base), not min_s: with min_s = 0 the sequence would otherwise
            # be free to shrink towards zero and stay there.
            previous = previous_delay if previous_delay > 0 else self.delta_s
            gap = rng.uniform(self.delta_s, max(self.delta_s, previous * 3.0))
        else:
            gap = base
        return min(max(gap, self.min_s), self.max_s)

    def delay_before_retry(
        self, classification: Classification, *, elapsed_s: float, rng: random.Random
    ) -> float | None:
        """Seconds to wait before the next run, or None to give up (this call's history).

        A wait the server asked for (``retry_after_s``, Azure 40501 asks for 10 s) is
        honoured as a minimum; a retry whose wait would reach the deadline is not started.
        """
        attempt = len(self.history) + 1
        if not self.should_retry(classification, attempt=attempt, elapsed_s=elapsed_s):
            return None
        delay = self.next_delay(attempt, self.last_delay_s, rng)
        if classification.retry_after_s is not None and classification.retry_after_s > delay:
            delay = classification.retry_after_s
        if self.deadline_s is not None and elapsed_s + delay >= self.deadline_s:
            return None
        return delay

    def __repr__(self) -> str:
        if self.strategy == "none":
            return "Retry.none()"
        delta = "delay_s" if self.strategy == "fixed" else "delta_s"
        parts = [f"attempts={self.attempts}", f"{delta}={self.delta_s!r}"]
        if self.min_s:
            parts.append(f"min_s={self.min_s!r}")
        parts += [f"max_s={self.max_s!r}", f"jitter={self.jitter!r}"]
        if self.deadline_s is not None:
            parts.append(f"deadline_s={self.deadline_s!r}")
        if self.retry_on != _SAFE:
            parts.append("retry_on={" + ", ".join(sorted(f.name for f in self.retry_on)) + "}")
        if self.history:
            parts.append("history=(" + ", ".join(f.name for f in self.history) + ")")
        return f"Retry.{self.strategy}({', '.join(parts)})"


def _base_gap(strategy: Strategy, n: int, delta: float) -> float:
    """The gap after failed run ``n`` before jitter and clamping.

    exponential: (2^n - 1) * delta, so delta, 3 delta, 7 delta, 15 delta ...  SqlClient's
      SqlExponentialIntervalEnumerator.GetNextInterval computes
      ``MinTimeInterval + (Math.Pow(2.0, internalCounter++) - 1.0) * random.Next(0.8 delta,
      1.2 delta)`` with the counter starting at 1 (dotnet/SqlClient,
      Reliability/SqlRetryIntervalEnumerators.cs). tether clamps to min_s instead of adding
      it, so min_s means the same thing for all three strategies.
    incremental: n * delta. SqlClient adds a fresh random(0.8 delta, 1.2 delta) to the
      previous gap; tether scales n * delta by one draw (same mean, same ±20 % bounds).
    fixed: delta.
    """
    if strategy == "exponential":
        return (2.0 ** min(n, 1000) - 1.0) * delta
    if strategy == "incremental":
        return n * delta
    if strategy == "fixed":
        return delta
    return 0.0


def _faults(retry_on: Iterable[Fault] | None, idempotent: bool) -> frozenset[Fault]:
    boolean("idempotent", idempotent)
    if retry_on is None:
        faults = _SAFE
    else:
        text = isinstance(retry_on, (str, bytes)) or not isinstance(retry_on, Iterable)
        items = () if text else tuple(retry_on)
        if text or not all(isinstance(fault, Fault) for fault in items):
            raise type_error("retry_on", "an iterable of tether.Fault", retry_on)
        faults = frozenset(items)
    return faults | {Fault.IN_DOUBT} if idempotent else faults


_NONE = Retry.none()

# The default for a unit of work in an application: exponential, 7 runs in all, a first
# gap of 0.05 s. SqlClient's exponential provider is usually configured with DeltaTime 1 s,
# which suits a connection opened at startup; a transaction retried after a deadlock
# (1205, 40P01), a serialization failure (40001) or a server restart should run again
# almost at once (measured: a PostgreSQL restart is back within about 50 ms, and a first
# gap of 0.1 s put the first success 70 ms after it). Seven runs (EF Core's default
# execution strategy allows six retries) give waits of about 0.05, 0.15, 0.35, 0.75, 1.55,
# 3.15 s: about 6 s (±20 %) in all, long enough to ride out a restart or a short failover.
# No deadline by default: how long a request may take is the application's to say.
DEFAULT = Retry.exponential(attempts=7, delta_s=0.05, max_s=30.0, jitter="sqlclient")
