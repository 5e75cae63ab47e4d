"""Prometheus: after the scripted run (``fix_ops``), a real ``prometheus_client`` registry
scrapes every series with the value the run implies; and no exported byte anywhere (the
scrape, the OpenTelemetry export, the events, the log records and their ``extra=``)
carries the connection string's password."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

import tether
from fix_ops import EXPECTED, POOL, SECRET, scripted_run
from tether import events
from tether.testing import EmbeddedPostgres

prometheus_client = pytest.importorskip(
    "prometheus_client", reason="needs prometheus_client: pip install prometheus_client"
)
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

import tether.prometheus  # noqa: E402

LABEL = "db_client_connection_pool_name"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def registry() -> Iterator[prometheus_client.CollectorRegistry]:
    registry = prometheus_client.CollectorRegistry()
    tether.prometheus.register(registry)
    yield registry


def scrape(registry: prometheus_client.CollectorRegistry) -> Samples:
    """The ``ops`` pool's samples, by name and labels (the pool label left out)."""
    text = prometheus_client.generate_latest(registry).decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get(LABEL) == POOL:
                labels = frozenset((k, v) for k, v in sample.labels.items() if k != LABEL)
                found[(sample.name, labels)] = sample.value
    return found


def one(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def test_every_series_has_the_value_the_run_implies(
    registry: prometheus_client.CollectorRegistry, make_pool: Callable[..., tether.Pool],
    pg_admin: EmbeddedPostgres,
) -> None:
    pool = scripted_run(make_pool, pg_admin)
    stats = pool.stats()
    found = scrape(registry)
    assert one(found, "db_client_connection_count", db_client_connection_state="used") == 0
    assert one(found, "db_client_connection_count", db_client_connection_state="idle") == 2
    assert one(found, "db_client_connection_max") == EXPECTED["max_size"]
    assert one(found, "db_client_connection_idle_max") == EXPECTED["max_size"]
    assert one(found, "db_client_connection_idle_min") == EXPECTED["min_size"]
    assert one(found, "db_client_connection_pending_requests") == 0
    assert one(found, "db_client_connection_timeouts_total") == EXPECTED["timeouts"]
    assert one(found, "tether_pool_recovered_total") == EXPECTED["recovered"]
    assert one(found, "tether_pool_sessions_lost_total") == EXPECTED["sessions_lost"]
    assert one(found, "tether_pool_retries_total", tether_fault="transient") == EXPECTED["retries_transient"]
    assert one(found, "tether_pool_commit_outcome_resolved_total") == 0
    assert one(found, "tether_pool_commit_outcome_unknown_total") == 0
    assert one(found, "tether_pool_blocking") == 0
    assert one(found, "tether_pool_discarded_dead_total") == stats.discarded_dead == 0
    assert one(found, "tether_pool_resets_total") == stats.resets > 0
    borrows = 10  # 5, the idle kill's, 2 runs of the unit of work, 2 held
    for kind in ("wait", "use"):
        name = f"db_client_connection_{kind}_time_seconds"
        assert one(found, f"{name}_count") == borrows
        assert one(found, f"{name}_bucket", le="+Inf") == borrows
    assert one(found, "db_client_connection_create_time_seconds_count") == 2
    assert stats.timings is not None
    assert one(found, "db_client_connection_use_time_seconds_sum") == pytest.approx(stats.timings.use.sum)
    # cumulative buckets, as Prometheus wants them
    buckets = sorted((float(dict(labels)["le"]), value) for (name, labels), value in found.items()
                     if name == "db_client_connection_wait_time_seconds_bucket")
    assert [value for _, value in buckets] == sorted(value for _, value in buckets)


def test_a_closed_pool_leaves_the_scrape(
    registry: prometheus_client.CollectorRegistry, pg_dsn: str
) -> None:
    pool = tether.Pool(pg_dsn, name="short-lived", min_size=1)
    pool.wait(10.0)
    text = prometheus_client.generate_latest(registry).decode()
    assert 'db_client_connection_pool_name="short-lived"' in text
    pool.close()
    text = prometheus_client.generate_latest(registry).decode()
    assert 'db_client_connection_pool_name="short-lived"' not in text


def test_no_exported_byte_carries_the_password(
    registry: prometheus_client.CollectorRegistry, make_pool: Callable[..., tether.Pool],
    pg_admin: EmbeddedPostgres, caplog: pytest.LogCaptureFixture,
) -> None:
    sdk = pytest.importorskip("opentelemetry.sdk.metrics", reason="needs opentelemetry-sdk: pip install "
                              "opentelemetry-sdk")
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    import tether.otel

    reader = InMemoryMetricReader()
    provider = sdk.MeterProvider(metric_readers=[reader])
    instrumentation = tether.otel.instrument(meter_provider=provider)
    told: list[events.Event] = []
    stop = events.subscribe(told.append)
    caplog.set_level(logging.DEBUG, logger="tether")
    try:
        pool = scripted_run(make_pool, pg_admin, leak_detection_threshold=60.0)
        scraped = prometheus_client.generate_latest(registry).decode()
        otel = reader.get_metrics_data()
    finally:
        stop()
        instrumentation.uninstrument()
        provider.shutdown()
    assert otel is not None
    logged = [(record.getMessage(), sorted(map(repr, record.__dict__.values()))) for record in caplog.records]
    exported = {
        "prometheus": scraped,
        "otel": otel.to_json(),
        "events": repr(told),
        "log records": repr(logged),
        "stats": repr(pool.stats()),
        "repr": repr(pool),
    }
    assert pool.spec.password is not None and pool.spec.password.reveal() == SECRET  # the pool had it
    assert POOL in exported["prometheus"] and told and logged  # something was exported
    for where, text in exported.items():
        assert SECRET not in text, f"the password is in the {where}"
