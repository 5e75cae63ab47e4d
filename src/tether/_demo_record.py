"""What ``tether demo`` saw, over time: each pool's operations and the faults.

Times are seconds since the workload began (``time.monotonic()``). Workers append from their
threads; the live view and the chart read copies, so nothing here does I/O.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

__all__ = ["WINDOW_S", "Bucket", "Fault", "PoolRecord", "Recording", "Snapshot", "ms", "percentile_ms"]

# The live views' latency percentiles (plain lines and the rich table alike): over the
# operations that ended this recently.
WINDOW_S = 2.0


def percentile_ms(latencies_s: Iterable[float], q: float) -> float:
    """The ``q`` quantile (0..1, nearest rank) in milliseconds; NaN when there is none."""
    ordered = sorted(latencies_s)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def ms(value: float) -> str:
    """A latency from ``percentile_ms`` as the views print it: ``-`` for none."""
    return "-" if math.isnan(value) else f"{value:.1f}"


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault the demo caused: ``kind`` is short (``"terminate"``), ``what`` a sentence.
    ``until_s`` is when the action returned (a restart lasts a while), None while it runs."""

    at_s: float
    kind: str
    what: str
    until_s: float | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One pool now: totals since the start, latency over the recent window."""

    ops: int
    errors: dict[str, int]
    p50_ms: float
    p99_ms: float

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass(frozen=True, slots=True)
class Bucket:
    """One pool over ``[start_s, start_s + width_s)``: the operations that ended in it, the
    latency of each that succeeded, and how many failed."""

    start_s: float
    width_s: float
    latencies_s: tuple[float, ...]
    errors: int

    @property
    def ops(self) -> int:
        return len(self.latencies_s)


class PoolRecord:
    """One pool's operations: when each ended, and how long it took or what it raised."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: list[tuple[float, float]] = []  # (ended at, latency), both in seconds
        self._failed: list[tuple[float, str]] = []  # (ended at, exception class name)

    def ok(self, *, at_s: float, latency_s: float) -> None:
        with self._lock:
            self._done.append((at_s, latency_s))

    def failed(self, *, at_s: float, kind: str) -> None:
        with self._lock:
            self._failed.append((at_s, kind))

    def copies(self) -> tuple[list[tuple[float, float]], list[tuple[float, str]]]:
        with self._lock:
            return list(self._done), list(self._failed)

    def snapshot(self, *, now_s: float, window_s: float | None) -> Snapshot:
        """Totals until now; latency over the last ``window_s`` (None: every operation)."""
        done, failed = self.copies()
        since = -math.inf if window_s is None else now_s - window_s
        recent = [lat for at, lat in done if since <= at <= now_s]
        errors: dict[str, int] = {}
        for _, kind in failed:
            errors[kind] = errors.get(kind, 0) + 1
        return Snapshot(len(done), dict(sorted(errors.items())), percentile_ms(recent, 0.5),
                        percentile_ms(recent, 0.99))

    def buckets(self, *, width_s: float, until_s: float) -> list[Bucket]:
        """Equal buckets from 0 to about ``until_s`` (operations that ended later count in the
        last, rather than make a sliver of a bucket)."""
        count = max(1, round(until_s / width_s))
        latencies: list[list[float]] = [[] for _ in range(count)]
        errors = [0] * count
        done, failed = self.copies()
        for at, lat in done:
            latencies[_index(at, width_s, count)].append(lat)
        for at, _ in failed:
            errors[_index(at, width_s, count)] += 1
        return [Bucket(i * width_s, width_s, tuple(lats), errors[i]) for i, lats in enumerate(latencies)]


def _index(at_s: float, width_s: float, count: int) -> int:
    return min(count - 1, max(0, int(at_s // width_s)))


class Recording:
    """Every pool's record and the faults, on one clock that starts at construction."""

    def __init__(self, names: Sequence[str], *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._began = clock()
        self._lock = threading.Lock()
        self.pools = {name: PoolRecord() for name in names}
        self._faults: list[Fault] = []
        self.duration_s: float | None = None  # set by finish()

    def now(self) -> float:
        return self._clock() - self._began

    def finish(self) -> None:
        self.duration_s = self.now()

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    @contextlib.contextmanager
    def fault(self, kind: str, what: str) -> Iterator[None]:
        """Around the action that causes a fault: it is visible from the start, and its
        end is noted when the action returns (or raises)."""
        started = Fault(self.now(), kind, what)
        with self._lock:
            position = len(self._faults)
            self._faults.append(started)
        try:
            yield
        finally:
            ended = replace(started, until_s=self.now())
            with self._lock:
                self._faults[position] = ended
