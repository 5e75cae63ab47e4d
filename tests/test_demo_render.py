"""The demo's live views and chart, on a recording built by hand (a hand-driven clock).

tests/test_demo_run.py renders the recording of a real run."""

from __future__ import annotations

import io
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tether._demo import _draw
from tether._demo_chart import default_chart_path, label_rows, write_chart
from tether._demo_record import Fault, Recording
from tether._demo_view import PlainView, open_view

POOLS = ("psycopg_pool", "tether")
SVG = "{http://www.w3.org/2000/svg}"


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def recorded(clock: Clock | None = None, *, seconds: float = 6.0) -> Recording:
    """Six seconds of two pools: a query every 0.1 s each, psycopg_pool failing around the
    faults at 2 s (terminate) and 4 s (restart, 0.5 s), tether slower there instead."""
    clock = clock or Clock()
    recording = Recording(POOLS, clock=clock)
    for tenth in range(1, int(seconds * 10)):
        at = tenth / 10
        near_fault = 2.0 <= at < 2.3 or 4.0 <= at < 4.6
        if near_fault:
            recording.pools["psycopg_pool"].failed(at_s=at, kind="AdminShutdown")
        else:
            recording.pools["psycopg_pool"].ok(at_s=at, latency_s=0.031)
        recording.pools["tether"].ok(at_s=at, latency_s=0.4 if near_fault else 0.032)
    recording.add_fault(Fault(2.0, "terminate", "terminate every backend", until_s=2.05))
    recording.add_fault(Fault(4.0, "restart", "restart the server", until_s=4.5))
    clock.now += seconds
    recording.finish()
    return recording


# -- plain lines -------------------------------------------------------------------------------


def test_plain_view_prints_faults_as_they_happen_and_each_pool_every_second() -> None:
    clock, out = Clock(), io.StringIO()
    recording = Recording(POOLS, clock=clock)
    view = PlainView(recording, out)
    clock.now += 0.5
    recording.pools["tether"].ok(at_s=0.4, latency_s=0.030)
    view.update()
    assert out.getvalue() == ""  # not a second yet, no fault
    recording.add_fault(Fault(0.7, "terminate", "terminate every backend"))
    clock.now += 0.2
    view.update()
    assert out.getvalue() == "  t=  0.7 s  fault: terminate every backend\n"
    recording.pools["psycopg_pool"].failed(at_s=0.8, kind="AdminShutdown")
    clock.now += 0.4
    view.update()
    lines = out.getvalue().splitlines()[1:]
    assert len(lines) == 2
    assert re.match(r"  t=  1\.1 s  psycopg_pool  ops +0 .* errors 1 \(AdminShutdown 1\)$", lines[0])
    assert re.match(r"  t=  1\.1 s  tether        ops +1 \+1 +p50   30\.0 ms  p99   30\.0 ms  errors 0$",
                    lines[1])
    clock.now += 0.5
    view.update()
    assert len(out.getvalue().splitlines()) == 3  # the next second has not come


def test_plain_view_closes_with_the_totals_only_when_they_changed() -> None:
    clock, out = Clock(), io.StringIO()
    recording = Recording(POOLS, clock=clock)
    view = PlainView(recording, out)
    clock.now += 1.0
    view.update()
    view.close()
    assert len(out.getvalue().splitlines()) == 2  # nothing new: no repeated lines
    recording.pools["tether"].ok(at_s=1.05, latency_s=0.030)
    view.close()
    assert out.getvalue().splitlines()[-1].startswith("  t=  1.0 s  tether        ops     1 +1 ")


def test_not_a_terminal_gets_plain_lines_without_escape_codes() -> None:
    recording = recorded()
    out = io.StringIO()
    view = open_view(recording, out, plain=False, seconds=6.0)
    assert isinstance(view, PlainView)
    view.close()
    assert "\x1b" not in out.getvalue()
    assert "fault: restart the server" in out.getvalue()


# -- the rich table ----------------------------------------------------------------------------


def test_live_view_shows_both_pools_errors_by_kind_and_the_faults() -> None:
    pytest.importorskip("rich", reason="rich is not installed: pip install 'tether[demo]'")
    from rich.console import Console

    from tether._demo_live import LiveView

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    view = LiveView(recorded(), console, seconds=6.0)
    view.update()
    view.close()
    text = out.getvalue()
    for expected in (*POOLS, "AdminShutdown", "terminate every backend", "restart the server", "0.5 s"):
        assert expected in text
    # the last frame: psycopg_pool's 9 errors (3 + 6 around the faults), tether's none
    assert re.search(r"errors the app saw\s*│\s*9\s*│\s*0", text)


def test_live_view_is_chosen_only_for_a_terminal() -> None:
    pytest.importorskip("rich", reason="rich is not installed: pip install 'tether[demo]'")

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    recording = recorded()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TERM", "xterm-256color")
        view = open_view(recording, Terminal(), plain=False, seconds=6.0)
        assert type(view).__name__ == "LiveView"
        view.close()
        assert isinstance(open_view(recording, Terminal(), plain=True, seconds=6.0), PlainView)
        patch.setenv("TERM", "dumb")
        assert isinstance(open_view(recording, Terminal(), plain=False, seconds=6.0), PlainView)


# -- the chart ---------------------------------------------------------------------------------


def ids(svg: Path) -> set[str]:
    return {element.get("id", "") for element in ET.parse(svg).iter()}


def texts(svg: Path) -> str:
    return " ".join(element.text or "" for element in ET.parse(svg).iter(f"{SVG}text"))


def test_svg_chart_has_both_pools_series_and_every_fault(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is not installed: pip install 'tether[demo]'")
    path = write_chart(recorded(), tmp_path / "demo.svg")
    found = ids(path)
    for pool in POOLS:
        assert {f"throughput-{pool}", f"p50-{pool}", f"p99-{pool}"} <= found
    assert {"fault-0-terminate", "fault-1-restart", "fault-label-0", "fault-label-1"} <= found
    assert sum(i.startswith("errors-psycopg_pool-") for i in found) == 12  # one bar per 0.5 s
    words = texts(path)
    assert "psycopg_pool: 50 ok, 9 errors" in words and "tether: 59 ok, 0 errors" in words
    assert "terminate" in words and "restart" in words


def test_png_chart_reads_back_as_an_image(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is not installed: pip install 'tether[demo]'")
    from matplotlib import image

    path = write_chart(recorded(), tmp_path / "demo.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = image.imread(path).shape
    assert width > height > 400


def test_a_chart_that_cannot_be_written_is_reported_not_raised(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is not installed: pip install 'tether[demo]'")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    message = _draw(recorded(), blocker / "demo.svg")
    assert message.startswith("no chart: cannot write ") and "a-file" in message


def test_default_chart_path_is_a_new_svg_in_the_temporary_directory() -> None:
    import tempfile

    path = default_chart_path()
    assert path.parent == Path(tempfile.gettempdir())
    assert re.fullmatch(r"tether-demo-\d{8}-\d{6}\.svg", path.name)


def test_fault_labels_that_would_overlap_go_up_a_row() -> None:
    assert label_rows([3.0, 9.0, 15.0], [2.0, 2.0, 2.0]) == [0, 0, 0]
    assert label_rows([15.0, 16.0, 3.0, 15.5], [2.0, 2.0, 2.0, 2.0]) == [0, 2, 0, 1]
    assert label_rows([], []) == []


def test_without_matplotlib_the_chart_is_skipped_naming_the_extra(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "matplotlib", None)  # what `import matplotlib` sees when it is missing
        message = _draw(recorded(), tmp_path / "demo.svg")
    assert message.startswith("no chart: matplotlib is missing: pip install 'tether[demo]'")
    assert not (tmp_path / "demo.svg").exists()
