"""Fixed-bucket histograms of a pool's times: waiting for a connection, holding one, opening one.

Cheap enough for checkout and return: one ``bisect`` over a tuple (C code) and two
additions, under the pool's lock that the caller holds anyway. The buckets are the
semantic conventions' advice for database client durations, with finer steps below a
millisecond (a checkout from the idle stack waits microseconds) and a few above ten
seconds (a held connection can be held for minutes). A bucket counts the values up to
and including its bound, as Prometheus's ``le`` and OpenTelemetry's explicit buckets do.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

BOUNDS_S: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)


class Histogram:
    """Running counts per bucket (the last one: above every bound) and the sum."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BOUNDS_S) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BOUNDS_S, seconds)] += 1
        self.sum += seconds

    def snapshot(self) -> HistogramSnapshot:
        return HistogramSnapshot(BOUNDS_S, tuple(self.counts), self.sum)


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """A histogram at one moment: ``counts[i]`` values fell in ``(bounds[i-1], bounds[i]]``,
    the last count above the last bound."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    sum: float

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, values up to it)`` pairs, ending with ``(inf, count)``: Prometheus's form."""
        total = 0
        pairs = []
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += n
            pairs.append((bound, total))
        return pairs

    def quantile(self, q: float) -> float | None:
        """An estimate of the ``q`` quantile (0..1): interpolated inside its bucket, as
        Prometheus's ``histogram_quantile`` does; None when nothing was observed."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"q must be between 0 and 1, not {q!r}")
        total = self.count
        if total == 0:
            return None
        rank = q * total
        lower = 0.0
        for bound, seen in self.cumulative():
            if seen >= rank:
                if bound == float("inf"):
                    return lower  # above the last bound: the last bound is all we know
                before = seen - self.counts[self.bounds.index(bound)]
                inside = seen - before
                return lower + (bound - lower) * ((rank - before) / inside if inside else 1.0)
            lower = bound
        return lower


@dataclass(frozen=True, slots=True)
class Timings:
    """A pool's three histograms (``PoolStats.timings``), in seconds."""

    wait: HistogramSnapshot  # checkout until a connection was in hand (0 from the idle stack)
    use: HistogramSnapshot  # borrow until back in the pool (a reset after the borrow included)
    create: HistogramSnapshot  # a new connection's open, connect retries included


class PoolTimings:
    """The live histograms of one pool (``PoolState.timings``)."""

    __slots__ = ("create", "use", "wait")

    def __init__(self) -> None:
        self.wait = Histogram()
        self.use = Histogram()
        self.create = Histogram()

    def snapshot(self, immediate: int) -> Timings:
        """``immediate``: checkouts served from the idle stack, which waited for nothing
        (counted here, in the first bucket, rather than one by one on the hot path)."""
        wait = self.wait.snapshot()
        counts = (wait.counts[0] + immediate, *wait.counts[1:])
        return Timings(HistogramSnapshot(wait.bounds, counts, wait.sum), self.use.snapshot(),
                       self.create.snapshot())
