"""The Grafana dashboard (docs/assets/grafana-tether.json): every panel's PromQL parses
(tools/promql_lite.py refuses what it does not evaluate), names only series the collector
exports, and gives series when evaluated over two scrapes around the scripted run."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import tether
import tether.prometheus
from fix_ops import POOL, scripted_run
from tether.testing import EmbeddedPostgres

prometheus_client = pytest.importorskip(
    "prometheus_client", reason="needs prometheus_client: pip install prometheus_client"
)

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("promql_lite", ROOT / "tools" / "promql_lite.py")
assert _spec is not None and _spec.loader is not None
promql = importlib.util.module_from_spec(_spec)
sys.modules["promql_lite"] = promql
_spec.loader.exec_module(promql)
PANELS = json.loads((ROOT / "docs" / "assets" / "grafana-tether.json").read_text())["panels"]
EXPRESSIONS = [target["expr"] for panel in PANELS for target in panel["targets"]]
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def metric_names(node: object) -> list[str]:
    """The series an expression selects."""
    if node.kind in ("selector", "range"):  # type: ignore[attr-defined]
        return [node.name]  # type: ignore[attr-defined]
    return [name for arg in node.args for name in metric_names(arg)]  # type: ignore[attr-defined]


def test_every_expression_parses() -> None:
    assert len(EXPRESSIONS) >= 9
    for expr in EXPRESSIONS:
        promql.parse(expr)


def test_the_parser_refuses_what_it_does_not_evaluate() -> None:
    for expr in ('x{a=~"b"}', "x offset 5m", "sum without (a) (x)", "x + y", "topk(3, x)"):
        with pytest.raises(SyntaxError):
            promql.parse(expr)


def test_histogram_quantile_interpolates_as_prometheus_does() -> None:
    buckets = {frozenset({("le", "0.1")}): 50.0, frozenset({("le", "0.2")}): 100.0,
               frozenset({("le", "+Inf")}): 100.0}
    assert promql._quantiles(0.75, buckets) == {frozenset(): pytest.approx(0.15)}


def test_every_panel_has_series_over_a_real_run(
    make_pool: Callable[..., tether.Pool], pg_admin: EmbeddedPostgres
) -> None:
    registry = prometheus_client.CollectorRegistry()
    tether.prometheus.register(registry)

    def scrape(at_s: float) -> object:
        text = prometheus_client.generate_latest(registry).decode()
        samples = {key: value for key, value in promql.parse_exposition(text).items()
                   if ("db_client_connection_pool_name", POOL) in key[1]}  # this test's pool only
        return promql.Scrape(at_s, samples)

    before = scrape(0.0)  # no such pool yet: a counter's increase is all it counted
    scripted_run(make_pool, pg_admin)
    scrapes = [before, scrape(1.0)]
    exported = {name for name, _ in scrapes[1].samples}
    for expr in EXPRESSIONS:
        for name in metric_names(promql.parse(expr)):
            assert name in exported, f"{expr} names {name}, which the collector does not export"
    for panel in PANELS:
        found = {}
        for target in panel["targets"]:
            found.update(promql.evaluate(promql.parse(target["expr"]), scrapes, 1))
        assert found, f"panel {panel['title']!r} shows nothing"
