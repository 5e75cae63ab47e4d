"""OpenTelemetry metrics and span events for every pool of the process (extra ``otel``).

``tether.otel.instrument()`` registers, through ``opentelemetry-api`` only (a no-op until
the application installs an SDK), the instruments of the semantic conventions for
database client connection pools and tether's own, read from ``pool.stats()`` when the
SDK collects, so nothing is added to checkout and return:

- ``db.client.connection.count`` (``db.client.connection.state``: idle, used),
  ``.idle.max``, ``.idle.min``, ``.max``, ``.pending_requests``, ``.timeouts``, and the
  histograms ``.create_time``, ``.wait_time``, ``.use_time`` (seconds), each with
  ``db.client.connection.pool.name``;
- ``tether.pool.recovered``, ``.sessions_lost``, ``.discarded_dead``, ``.resets``,
  ``.retries`` (``tether.fault``: connect, in_doubt, transient), ``.commit_outcome_resolved``,
  ``.commit_outcome_unknown``, ``.blocking`` (1 in a blocking period), ``.blocking_periods``,
  ``.leaks_suspected``, ``.reclaimed``, ``.connect_failures``.

The API has no observable histogram: at each collection the buckets a pool filled since
the last one are recorded into the histograms, one value per observation at its bucket's
midpoint, with the same bucket bounds; counts are exact, sums within a bucket's width.
That costs the collecting thread one ``record()`` per checkout since the last collection
(about 8 µs each with opentelemetry-sdk 1.45: 0.5 s a minute at 1,000 checkouts a second);
``instrument(histograms=False)`` leaves the three histograms out (``tether.prometheus``
exports them with no cost per observation).

Spans: a retry (``tether.retry``) and an idle-resiliency recovery (``tether.session.recovered``)
are added as events to the current span of the code that lived through them, so a trace
shows why a call was slow. Explicit, not automatic: importing tether never touches
OpenTelemetry.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from . import events, metrics
from ._timings import BOUNDS_S, HistogramSnapshot

try:
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import trace
    from opentelemetry.metrics import CallbackOptions, Observation
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError(
        "tether.otel needs opentelemetry-api: pip install 'tether[otel]' (or opentelemetry-api)"
    ) from exc

__all__ = ["Instrumentation", "instrument"]

POOL = "db.client.connection.pool.name"
STATE = "db.client.connection.state"
FAULT = "tether.fault"

# tether's counters: (instrument name, PoolStats field, description)
_COUNTERS = (
    ("tether.pool.recovered", "recovered", "Sessions rebuilt on a new connection after an idle break"),
    ("tether.pool.sessions_lost", "sessions_lost", "Sessions that broke while idle and could not be rebuilt"),
    ("tether.pool.discarded_dead", "discarded_dead", "Connections found dead and discarded"),
    ("tether.pool.resets", "resets", "Sessions reset after a borrow that changed them"),
    ("tether.pool.commit_outcome_resolved", "commit_outcome_resolved",
     "COMMITs whose reply was lost and whose outcome was learnt"),
    ("tether.pool.commit_outcome_unknown", "commit_outcome_unknown",
     "COMMITs whose reply was lost and whose outcome could not be learnt"),
    ("tether.pool.blocking_periods", "blocking_periods", "Blocking periods begun"),
    ("tether.pool.leaks_suspected", "leaks_suspected", "Borrows held past leak_detection_threshold"),
    ("tether.pool.reclaimed", "reclaimed", "Borrowed connections garbage-collected without a return"),
    ("tether.pool.connect_failures", "connect_failures", "Opens that failed after their connect retries"),
)
_HISTOGRAMS = (
    ("db.client.connection.create_time", "create", "The time it took to create a new connection"),
    ("db.client.connection.wait_time", "wait", "The time it took to obtain an open connection from the pool"),
    ("db.client.connection.use_time", "use",
     "The time between borrowing a connection and returning it to the pool"),
)


def _midpoints() -> tuple[float, ...]:
    lows = (0.0, *BOUNDS_S)
    highs = (*BOUNDS_S, BOUNDS_S[-1] * 2)
    return tuple((low + high) / 2 for low, high in zip(lows, highs, strict=True))


_MIDPOINTS = _midpoints()
_installed: weakref.WeakKeyDictionary[Any, Instrumentation] = weakref.WeakKeyDictionary()
_installed_lock = threading.Lock()


class Instrumentation:
    """What ``instrument()`` registered; ``uninstrument()`` silences it (the API cannot
    remove instruments) and stops the span events."""

    def __init__(self, meter: Any, *, spans: bool, histograms: bool) -> None:
        self._active = True
        self._lock = threading.Lock()
        self._seen: weakref.WeakKeyDictionary[Any, dict[str, tuple[int, ...]]] = weakref.WeakKeyDictionary()
        self._histograms = {
            field: meter.create_histogram(name, unit="s", description=text,
                                          explicit_bucket_boundaries_advisory=list(BOUNDS_S))
            for name, field, text in (_HISTOGRAMS if histograms else ())
        }
        gauge = meter.create_observable_up_down_counter
        gauge("db.client.connection.count", [self._count], unit="{connection}",
              description="The number of connections that are currently in the state described by the state "
              "attribute")
        gauge("db.client.connection.idle.max", [self._field("max_size")], unit="{connection}",
              description="The maximum number of idle open connections allowed")
        gauge("db.client.connection.idle.min", [self._field("min_size")], unit="{connection}",
              description="The minimum number of idle open connections allowed")
        gauge("db.client.connection.max", [self._field("max_size")], unit="{connection}",
              description="The maximum number of open connections allowed")
        gauge("db.client.connection.pending_requests", [self._field("waiting")], unit="{request}",
              description="The number of current pending requests for an open connection")
        gauge("tether.pool.blocking", [self._field("blocking")], unit="1",
              description="1 while the pool is in a blocking period (checkouts fail fast)")
        counter = meter.create_observable_counter
        counter("db.client.connection.timeouts", [self._field("timeouts")], unit="{timeout}",
                description="The number of connection timeouts that have occurred trying to obtain a "
                "connection from the pool")
        for name, field, text in _COUNTERS:
            counter(name, [self._field(field)], unit="1", description=text)
        counter("tether.pool.retries", [self._retries], unit="{retry}",
                description="Units of work run again, by fault class")
        self._unsubscribe = events.subscribe(self._on_event) if spans else None

    def uninstrument(self) -> None:
        self._active = False
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # -- callbacks (the SDK's collection thread) ----------------------------------------------

    def _stats(self) -> list[tuple[Any, metrics.PoolStats]]:
        if not self._active:
            return []
        return [(pool, pool.stats()) for pool in metrics.pools()]

    def _count(self, options: CallbackOptions) -> Iterator[Observation]:
        for pool, stats in self._stats():
            self._replay(pool, stats)
            yield Observation(stats.idle, {POOL: stats.name, STATE: "idle"})
            yield Observation(stats.busy, {POOL: stats.name, STATE: "used"})

    def _field(self, field: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterator[Observation]:
            for _, stats in self._stats():
                yield Observation(int(getattr(stats, field)), {POOL: stats.name})

        return observe

    def _retries(self, options: CallbackOptions) -> Iterator[Observation]:
        for _, stats in self._stats():
            for fault, count in stats.retries:
                yield Observation(count, {POOL: stats.name, FAULT: fault})

    def _replay(self, pool: Any, stats: metrics.PoolStats) -> None:
        """Record the observations ``pool``'s histograms gained since the last collection."""
        timings = stats.timings
        if timings is None:
            return
        attributes = {POOL: stats.name}
        with self._lock:
            seen = self._seen.setdefault(pool, {})
            for field, histogram in self._histograms.items():
                now: HistogramSnapshot = getattr(timings, field)
                before = seen.get(field, (0,) * len(now.counts))
                seen[field] = now.counts
                for value, new, old in zip(_MIDPOINTS, now.counts, before, strict=True):
                    for _ in range(max(new - old, 0)):
                        histogram.record(value, attributes)

    # -- span events ------------------------------------------------------------------------------

    def _on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Retried):
            name = "tether.retry"
            attributes: dict[str, Any] = {"tether.attempt": event.attempt, FAULT: event.fault,
                                          "tether.delay_s": event.delay_s, "error.type": event.error,
                                          "tether.unit": event.unit}
        elif isinstance(event, events.SessionRecovered):
            name = "tether.session.recovered"
            attributes = {"tether.elapsed_s": event.elapsed_s, "tether.replayed": event.replayed}
        else:
            return
        span = trace.get_current_span()
        if span.is_recording():
            if event.pool:
                attributes[POOL] = event.pool
            span.add_event(name, attributes)


def instrument(*, meter_provider: Any = None, spans: bool = True, histograms: bool = True) -> Instrumentation:
    """Register tether's instruments with ``meter_provider`` (the global one by default),
    once: a second call for the same provider returns the first ``Instrumentation``;
    with ``spans``, add retries and recoveries to the current span as events; without
    ``histograms``, leave out create, wait and use time (their replay costs the collecting
    thread one ``record()`` per observation)."""
    provider = meter_provider if meter_provider is not None else otel_metrics.get_meter_provider()
    with _installed_lock:
        current = _installed.get(provider)
        if current is not None and current._active:  # once per provider: no instrument twice
            return current
        from . import __version__

        meter = provider.get_meter("tether", __version__)
        made = _installed[provider] = Instrumentation(meter, spans=spans, histograms=histograms)
        return made
