"""A real ``tether demo`` of 5 s (an embedded PostgreSQL behind the WAN link, one fault of
each kind): its plain live lines, its report and its chart."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tether.testing import postgres_bin_dir

pytestmark = pytest.mark.slow

SECONDS = 5.0
POOLS = ("psycopg_pool", "tether")


@dataclass
class Run:
    code: int
    output: str
    chart: Path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    pytest.importorskip("psycopg_pool", reason="psycopg_pool is not installed: pip install 'tether[demo]'")
    pytest.importorskip("matplotlib", reason="matplotlib is not installed: pip install 'tether[demo]'")
    try:
        postgres_bin_dir()
    except FileNotFoundError as exc:
        pytest.skip(f"no embedded PostgreSQL: {exc} (pip install 'tether[demo]')")
    from tether._demo import run

    chart = tmp_path_factory.mktemp("demo") / "demo.svg"
    out = io.StringIO()  # not a terminal: the plain lines
    yield Run(run(SECONDS, out, chart=chart), out.getvalue(), chart)


def pool_lines(output: str, pool: str) -> list[float]:
    """The times of ``pool``'s per-second lines."""
    return [float(t) for t in re.findall(rf"^  t=\s*([\d.]+) s  {pool} +ops +\d+ \+\d+ ", output, re.M)]


def test_the_run_succeeds_and_reports_both_pools(demo: Run) -> None:
    assert demo.code == 0, demo.output
    assert re.search(r"^successful operations +[1-9]\d* +[1-9]\d*$", demo.output, re.M), demo.output
    assert f"chart: {demo.chart}" in demo.output


def test_the_report_counts_what_tethers_events_said(demo: Run) -> None:
    # every backend terminated, the link reset and the server restarted: the pool's events
    # (tether.events, the same the logs and metrics use) say what it lived through
    line = re.search(r"^tether's events: (.+)$", demo.output, re.M)
    assert line is not None, demo.output
    counts = dict(re.findall(r"([a-z_.]+) x(\d+)", line.group(1)))
    assert int(counts.get("connection.opened", 0)) >= 1
    assert int(counts.get("connection.discarded", 0)) + int(counts.get("session.recovered", 0)) >= 1


def test_plain_lines_show_each_pool_every_second_and_each_fault(demo: Run) -> None:
    assert "\x1b" not in demo.output
    for pool in POOLS:
        times = pool_lines(demo.output, pool)
        assert len(times) >= 3, demo.output  # about one a second, and the final totals
        assert times == sorted(times) and times[-1] >= SECONDS
    faults = re.findall(r"^  t=\s*[\d.]+ s  fault: (.+)$", demo.output, re.M)
    assert faults == ["terminate every backend", "the WAN link resets every connection", "restart the server"]


def test_the_chart_is_an_svg_with_both_pools_and_the_faults(demo: Run) -> None:
    tree = ET.parse(demo.chart)  # well-formed XML, or this raises
    assert tree.getroot().tag == "{http://www.w3.org/2000/svg}svg"
    ids = {element.get("id", "") for element in tree.iter()}
    for pool in POOLS:
        assert {f"throughput-{pool}", f"p50-{pool}", f"p99-{pool}"} <= ids
        assert any(i.startswith(f"errors-{pool}-") for i in ids)
    assert {"fault-0-terminate", "fault-1-reset", "fault-2-restart"} <= ids
    words = " ".join(element.text or "" for element in tree.iter("{http://www.w3.org/2000/svg}text"))
    assert re.search(r"psycopg_pool: [1-9]\d* ok, \d+ errors; tether: [1-9]\d* ok, \d+ errors", words)


def test_behind_pgbouncer_tethers_pool_shows_the_application_no_error() -> None:
    """``tether demo --pgbouncer``: the same workload and faults through PgBouncer in
    transaction mode (issue 13: 0 errors the application sees)."""
    pytest.importorskip("psycopg_pool", reason="psycopg_pool is not installed: pip install 'tether[demo]'")
    try:
        postgres_bin_dir()
    except FileNotFoundError as exc:
        pytest.skip(f"no embedded PostgreSQL: {exc} (pip install 'tether[demo]')")
    from fix_pgbouncer import need_pgbouncer
    from tether._demo import run

    need_pgbouncer()
    out = io.StringIO()
    assert run(SECONDS, out, pgbouncer=True) == 0, out.getvalue()
    output = out.getvalue()
    assert "transaction pooling" in output
    assert re.search(r"^successful operations +[1-9]\d* +[1-9]\d*$", output, re.M), output
    assert re.search(r"^app-visible errors +\d+ +0$", output, re.M), output  # tether's column
