"""A ``prometheus_client`` collector for every pool of the process (extra ``prometheus``).

The names are ``tether.otel``'s in Prometheus's form (dots to underscores, the unit and
``_total`` appended as OpenTelemetry's Prometheus exporter does), so one dashboard reads
either::

    import prometheus_client, tether.prometheus

    tether.prometheus.register()                     # prometheus_client.REGISTRY by default
    prometheus_client.start_http_server(9464, addr="127.0.0.1")

Each series has the label ``db_client_connection_pool_name``: the pool's name, never its
connection string. Everything is read from ``pool.stats()`` at each scrape.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import metrics

try:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
    from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError(
        "tether.prometheus needs prometheus_client: pip install 'tether[prometheus]' (or prometheus_client)"
    ) from exc

__all__ = ["TetherCollector", "register"]

POOL = "db_client_connection_pool_name"

# (name without _total, PoolStats field, help)
_GAUGES = (
    ("db_client_connection_idle_max", "max_size", "The maximum number of idle open connections allowed"),
    ("db_client_connection_idle_min", "min_size", "The minimum number of idle open connections allowed"),
    ("db_client_connection_max", "max_size", "The maximum number of open connections allowed"),
    ("db_client_connection_pending_requests", "waiting",
     "The number of current pending requests for an open connection"),
    ("tether_pool_blocking", "blocking", "1 while the pool is in a blocking period (checkouts fail fast)"),
)
_COUNTERS = (
    ("db_client_connection_timeouts", "timeouts",
     "The number of connection timeouts that have occurred trying to obtain a connection from the pool"),
    ("tether_pool_recovered", "recovered", "Sessions rebuilt on a new connection after an idle break"),
    ("tether_pool_sessions_lost", "sessions_lost", "Sessions that broke while idle and could not be rebuilt"),
    ("tether_pool_discarded_dead", "discarded_dead", "Connections found dead and discarded"),
    ("tether_pool_resets", "resets", "Sessions reset after a borrow that changed them"),
    ("tether_pool_commit_outcome_resolved", "commit_outcome_resolved",
     "COMMITs whose reply was lost and whose outcome was learnt"),
    ("tether_pool_commit_outcome_unknown", "commit_outcome_unknown",
     "COMMITs whose reply was lost and whose outcome could not be learnt"),
    ("tether_pool_blocking_periods", "blocking_periods", "Blocking periods begun"),
    ("tether_pool_leaks_suspected", "leaks_suspected", "Borrows held past leak_detection_threshold"),
    ("tether_pool_reclaimed", "reclaimed", "Borrowed connections garbage-collected without a return"),
    ("tether_pool_connect_failures", "connect_failures", "Opens that failed after their connect retries"),
)
_HISTOGRAMS = (
    ("db_client_connection_create_time_seconds", "create", "The time it took to create a new connection"),
    ("db_client_connection_wait_time_seconds", "wait",
     "The time it took to obtain an open connection from the pool"),
    ("db_client_connection_use_time_seconds", "use",
     "The time between borrowing a connection and returning it to the pool"),
)


class TetherCollector(Collector):
    """Every pool of this process (``tether.pools()``), at each scrape."""

    def collect(self) -> Iterator[Any]:
        every = [pool.stats() for pool in metrics.pools()]
        count = GaugeMetricFamily("db_client_connection_count",
                                  "The number of connections that are currently in the state described by "
                                  "the state attribute", labels=[POOL, "db_client_connection_state"])
        for stats in every:
            count.add_metric([stats.name, "idle"], stats.idle)
            count.add_metric([stats.name, "used"], stats.busy)
        yield count
        for name, field, text in _GAUGES:
            gauge = GaugeMetricFamily(name, text, labels=[POOL])
            for stats in every:
                gauge.add_metric([stats.name], int(getattr(stats, field)))
            yield gauge
        for name, field, text in _COUNTERS:
            counter = CounterMetricFamily(name, text, labels=[POOL])
            for stats in every:
                counter.add_metric([stats.name], int(getattr(stats, field)))
            yield counter
        retries = CounterMetricFamily("tether_pool_retries", "Units of work run again, by fault class",
                                      labels=[POOL, "tether_fault"])
        for stats in every:
            for fault, n in stats.retries:
                retries.add_metric([stats.name, fault], n)
        yield retries
        yield from self._histograms(every)

    def _histograms(self, every: list[metrics.PoolStats]) -> Iterator[Any]:
        for name, field, text in _HISTOGRAMS:
            family = HistogramMetricFamily(name, text, labels=[POOL])
            for stats in every:
                if stats.timings is None:
                    continue
                histogram: metrics.HistogramSnapshot = getattr(stats.timings, field)
                buckets = [(_le(bound), seen) for bound, seen in histogram.cumulative()]
                family.add_metric([stats.name], buckets, histogram.sum)
            yield family

    def describe(self) -> Iterator[Any]:
        return iter(())  # nothing until a scrape: pools come and go


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


def register(registry: CollectorRegistry = REGISTRY) -> TetherCollector:
    """Register a ``TetherCollector`` with ``registry``; returns it (``registry.unregister`` it)."""
    collector = TetherCollector()
    registry.register(collector)
    return collector
