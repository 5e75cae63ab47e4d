"""OpenTelemetry: after the scripted run (``fix_ops``), every instrument read by the real
SDK's in-memory reader has the value the run implies; a retry and a recovery appear as
events on the current span."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tether
from fix_ops import EXPECTED, POOL, SECRET, scripted_run
from tether.testing import EmbeddedPostgres

sdk_metrics = pytest.importorskip(
    "opentelemetry.sdk.metrics", reason="needs opentelemetry-sdk: pip install opentelemetry-sdk"
)
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

import tether.otel  # noqa: E402

SEMCONV = ("db.client.connection.count", "db.client.connection.idle.max", "db.client.connection.idle.min",
           "db.client.connection.max", "db.client.connection.pending_requests",
           "db.client.connection.timeouts", "db.client.connection.create_time",
           "db.client.connection.wait_time", "db.client.connection.use_time")
OWN = ("tether.pool.recovered", "tether.pool.sessions_lost", "tether.pool.discarded_dead",
       "tether.pool.resets", "tether.pool.retries", "tether.pool.commit_outcome_resolved",
       "tether.pool.commit_outcome_unknown", "tether.pool.blocking")


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    provider = sdk_metrics.MeterProvider(metric_readers=[reader])
    instrumentation = tether.otel.instrument(meter_provider=provider)
    yield reader
    instrumentation.uninstrument()
    provider.shutdown()


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Every data point of the ``ops`` pool, by instrument name."""
    data = reader.get_metrics_data()
    found: dict[str, list[Any]] = {}
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                mine = [p for p in metric.data.data_points
                        if p.attributes.get("db.client.connection.pool.name") == POOL]
                if mine:
                    found[metric.name] = mine
    return found


def value(found: dict[str, list[Any]], name: str, **attributes: str) -> Any:
    matching = [p for p in found[name] if all(p.attributes.get(k) == v for k, v in attributes.items())]
    assert len(matching) == 1, f"{name} {attributes}: {matching}"
    return matching[0]


def test_every_instrument_has_the_value_the_run_implies(
    reader: InMemoryMetricReader, make_pool: Callable[..., tether.Pool], pg_admin: EmbeddedPostgres
) -> None:
    pool = scripted_run(make_pool, pg_admin)
    stats = pool.stats()
    found = points(reader)
    assert set(SEMCONV + OWN) <= set(found), set(SEMCONV + OWN) - set(found)
    assert value(found, "db.client.connection.count", **{"db.client.connection.state": "used"}).value == 0
    assert value(found, "db.client.connection.count", **{"db.client.connection.state": "idle"}).value == 2
    assert value(found, "db.client.connection.max").value == EXPECTED["max_size"]
    assert value(found, "db.client.connection.idle.max").value == EXPECTED["max_size"]
    assert value(found, "db.client.connection.idle.min").value == EXPECTED["min_size"]
    assert value(found, "db.client.connection.pending_requests").value == 0
    assert value(found, "db.client.connection.timeouts").value == EXPECTED["timeouts"]
    assert value(found, "tether.pool.recovered").value == EXPECTED["recovered"]
    assert value(found, "tether.pool.sessions_lost").value == EXPECTED["sessions_lost"]
    assert value(found, "tether.pool.retries", **{"tether.fault": "transient"}).value == 1
    assert value(found, "tether.pool.commit_outcome_resolved").value == 0
    assert value(found, "tether.pool.commit_outcome_unknown").value == 0
    assert value(found, "tether.pool.blocking").value == 0
    assert value(found, "tether.pool.discarded_dead").value == stats.discarded_dead == 0
    assert value(found, "tether.pool.resets").value == stats.resets > 0
    # 5 borrows, the idle kill's, 2 runs of the unit of work, 2 held: 10 checkouts, 10 returns
    borrows = 10
    wait, use, create = (value(found, f"db.client.connection.{n}_time") for n in ("wait", "use", "create"))
    assert wait.count == use.count == borrows
    assert create.count == 2  # the pool opened two connections (the recovery's is not the pool's open)
    assert list(wait.explicit_bounds) == list(tether.metrics.TIME_BUCKETS_S)
    assert stats.timings is not None  # the buckets are the pool's, one for one
    assert tuple(wait.bucket_counts) == stats.timings.wait.counts
    assert tuple(use.bucket_counts) == stats.timings.use.counts
    # a second collection adds nothing new: the histograms' deltas are recorded once
    again = points(reader)
    assert value(again, "db.client.connection.use_time").count == borrows


def test_a_retry_and_a_recovery_are_events_on_the_current_span(
    reader: InMemoryMetricReader, make_pool: Callable[..., tether.Pool], pg_admin: EmbeddedPostgres
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("test").start_as_current_span("request"):
        scripted_run(make_pool, pg_admin)
    (span,) = exporter.get_finished_spans()
    names = [event.name for event in span.events]
    assert names.count("tether.retry") == 1 and names.count("tether.session.recovered") == 1
    retry = next(e for e in span.events if e.name == "tether.retry")
    assert retry.attributes["tether.fault"] == "transient"
    assert retry.attributes["error.type"] == "SerializationFailure"
    assert retry.attributes["db.client.connection.pool.name"] == POOL
    assert SECRET not in repr([dict(e.attributes) for e in span.events])


def test_no_exported_byte_carries_the_password(
    reader: InMemoryMetricReader, make_pool: Callable[..., tether.Pool], pg_admin: EmbeddedPostgres
) -> None:
    scripted_run(make_pool, pg_admin)
    data = reader.get_metrics_data()
    assert data is not None
    exported = data.to_json()
    assert POOL in exported and SECRET not in exported


def test_the_histograms_can_be_left_out(make_pool: Callable[..., tether.Pool]) -> None:
    reader = InMemoryMetricReader()
    provider = sdk_metrics.MeterProvider(metric_readers=[reader])
    instrumentation = tether.otel.instrument(meter_provider=provider, histograms=False)
    try:
        pool = make_pool(name=POOL)
        with pool.connection():
            pass
        found = points(reader)
    finally:
        instrumentation.uninstrument()
        provider.shutdown()
    assert "db.client.connection.count" in found
    assert not {name for name in found if name.endswith("_time")}


def test_instrumenting_a_provider_twice_registers_once() -> None:
    reader = InMemoryMetricReader()
    provider = sdk_metrics.MeterProvider(metric_readers=[reader])
    first = tether.otel.instrument(meter_provider=provider)
    try:
        assert tether.otel.instrument(meter_provider=provider) is first
    finally:
        first.uninstrument()
        provider.shutdown()
