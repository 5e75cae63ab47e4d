"""``tether demo``'s chart: both pools over time, with the faults marked.

Three panels share the time axis: operations completed per second, errors the application
saw, and latency (p50 solid, p99 dashed). Each fault is a vertical line (a span while it
lasted, for a server restart) labelled on top. Drawn with matplotlib's object API (no
pyplot, so no display and no global backend is touched); the format follows the file's
suffix (``.svg``, ``.png``, ``.pdf``). SVG text stays text, and every series and fault
carries an id (``throughput-tether``, ``fault-3-restart``), so the file can be searched.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from ._demo_record import Bucket, Fault, Recording, percentile_ms

__all__ = ["BUCKET_S", "SUFFIXES", "default_chart_path", "write_chart"]

BUCKET_S = 0.5
SUFFIXES = (".svg", ".png", ".pdf")  # the formats matplotlib writes without extra packages
WINDOW_S = 1.0  # throughput and latency over this much time around each bucket
_POOL_COLOURS = ("tab:orange", "tab:blue", "tab:green", "tab:purple")
_FAULT_STYLES: dict[str, dict[str, Any]] = {
    "terminate": {"color": "dimgray", "linestyle": "--"},
    "reset": {"color": "tab:purple", "linestyle": ":"},
    "restart": {"color": "tab:red", "linestyle": "-"},
}
_OTHER_FAULT: dict[str, Any] = {"color": "black", "linestyle": "-."}
_CHAR_PT, _GAP_PT = 5.0, 6.0  # a label's width, roughly, at 8 points
_OUTAGES = {"restart"}  # shaded while the action ran: the server is down meanwhile


def default_chart_path() -> Path:
    """A new file in the temporary directory, named by the local time: a demo run from a
    checkout (``./dev demo``) leaves nothing in it."""
    return Path(tempfile.gettempdir()) / f"tether-demo-{time.strftime('%Y%m%d-%H%M%S')}.svg"


def write_chart(recording: Recording, path: Path, *, bucket_s: float = BUCKET_S) -> Path:
    """Draw ``recording`` into ``path``; ImportError when matplotlib is not installed."""
    import matplotlib
    from matplotlib.figure import Figure

    until = recording.duration_s if recording.duration_s is not None else recording.now()
    series = {name: pool.buckets(width_s=bucket_s, until_s=until) for name, pool in recording.pools.items()}
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "tether-demo"}):
        fig = Figure(figsize=(11, 8.5), layout="constrained")
        throughput, errors, latency = fig.subplots(3, 1, sharex=True)
        for (name, buckets), colour in zip(series.items(), _POOL_COLOURS, strict=False):
            _plot_pool(name, buckets, colour, throughput, latency)
        _plot_errors(errors, series, bucket_s)
        _decorate(throughput, errors, latency, until)
        for axes in (throughput, errors, latency):
            _mark_faults(axes, recording.faults, label=axes is throughput)
        fig.suptitle(_title(recording), fontsize=11)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    return path


def _centres(buckets: list[Bucket]) -> list[float]:
    return [b.start_s + b.width_s / 2 for b in buckets]


def _windows(buckets: list[Bucket], span: int) -> list[list[Bucket]]:
    """``span`` buckets centred on each: a worker's rhythm (a query, then a pause) would alias
    into a saw-tooth in buckets this short, and a p99 of a handful of queries is their maximum."""
    return [buckets[max(0, i - span // 2): i + span - span // 2] for i in range(len(buckets))]


def _plot_pool(name: str, buckets: list[Bucket], colour: str, throughput: Any, latency: Any) -> None:
    windows = _windows(buckets, max(1, round(WINDOW_S / buckets[0].width_s)))
    x = [(w[0].start_s + w[-1].start_s + w[-1].width_s) / 2 for w in windows]  # each window's middle
    rates = [sum(b.ops for b in w) / sum(b.width_s for b in w) for w in windows]
    throughput.plot(x, rates, color=colour, label=name, gid=f"throughput-{name}")
    latencies = [[lat for b in w for lat in b.latencies_s] for w in windows]
    latency.plot(x, [percentile_ms(lats, 0.5) for lats in latencies], color=colour, label=f"{name} p50",
                 gid=f"p50-{name}")
    latency.plot(x, [percentile_ms(lats, 0.99) for lats in latencies], color=colour, linestyle="--",
                 label=f"{name} p99", gid=f"p99-{name}")


def _plot_errors(axes: Any, series: dict[str, list[Bucket]], bucket_s: float) -> None:
    width = bucket_s / (len(series) + 1)
    for i, ((name, buckets), colour) in enumerate(zip(series.items(), _POOL_COLOURS, strict=False)):
        x = [c + (i - (len(series) - 1) / 2) * width for c in _centres(buckets)]
        bars = axes.bar(x, [b.errors for b in buckets], width=width, color=colour, label=name)
        for j, patch in enumerate(bars.patches):
            patch.set_gid(f"errors-{name}-{j}")


def _decorate(throughput: Any, errors: Any, latency: Any, until: float) -> None:
    from matplotlib import ticker

    throughput.set_ylabel(f"operations / s\n(over {WINDOW_S:g} s)")
    throughput.set_ylim(bottom=0)
    throughput.legend(loc="lower left", fontsize=8)
    errors.set_ylabel(f"errors per {BUCKET_S:g} s")
    errors.set_ylim(bottom=0)
    errors.yaxis.get_major_locator().set_params(integer=True)
    errors.legend(loc="upper left", fontsize=8)
    latency.set_ylabel(f"latency of successes (ms)\n(over {WINDOW_S:g} s)")
    latency.set_yscale("log")  # a retry across a restart takes 10 to 100 times a query
    latency.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    latency.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    latency.yaxis.set_minor_formatter(ticker.NullFormatter())
    latency.legend(loc="upper left", fontsize=8, ncols=2)
    latency.set_xlabel("seconds since the workload began")
    latency.set_xlim(0, max(until, BUCKET_S))
    latency.set_ylim(bottom=10)  # the 30 ms round trip clear of the axis
    for axes in (throughput, errors, latency):
        axes.grid(True, alpha=0.3)


def _mark_faults(axes: Any, faults: list[Fault], *, label: bool) -> None:
    for i, fault in enumerate(faults):
        style = _FAULT_STYLES.get(fault.kind, _OTHER_FAULT)
        gid = f"fault-{i}-{fault.kind}" if label else None
        axes.axvline(fault.at_s, linewidth=1.2, alpha=0.8, gid=gid, **style)
        if fault.kind in _OUTAGES and fault.until_s is not None:
            axes.axvspan(fault.at_s, fault.until_s, color=style["color"], alpha=0.12, linewidth=0)
    if label:
        _label_faults(axes, faults)


def _label_faults(axes: Any, faults: list[Fault]) -> None:
    """Each fault's kind above the top panel, on a higher row where it would overlap another."""
    left, right = axes.get_xlim()
    points_per_s = axes.get_window_extent().width * 72 / axes.figure.dpi / (right - left)
    widths_s = [(len(f.kind) * _CHAR_PT + _GAP_PT) / points_per_s for f in faults]
    rows = label_rows([f.at_s for f in faults], widths_s)
    for i, (fault, row) in enumerate(zip(faults, rows, strict=True)):
        style = _FAULT_STYLES.get(fault.kind, _OTHER_FAULT)
        axes.annotate(fault.kind, xy=(fault.at_s, 1.0), xycoords=axes.get_xaxis_transform(),
                      xytext=(1, 3 + row * 11), textcoords="offset points", ha="left", va="bottom",
                      fontsize=8, color=style["color"], gid=f"fault-label-{i}")


def label_rows(starts: list[float], widths: list[float]) -> list[int]:
    """For labels from ``starts`` on, each ``widths`` long: the lowest row (0, 1, ...) where
    each clears the labels that start before it."""
    rows = [0] * len(starts)
    ends: list[float] = []  # per row, where its last label ends
    for i in sorted(range(len(starts)), key=starts.__getitem__):
        row = next((r for r, end in enumerate(ends) if end <= starts[i]), len(ends))
        if row == len(ends):
            ends.append(starts[i])
        ends[row] = starts[i] + widths[i]
        rows[i] = row
    return rows


def _title(recording: Recording) -> str:
    parts = []
    for name, pool in recording.pools.items():
        done, failed = pool.copies()
        parts.append(f"{name}: {len(done)} ok, {len(failed)} errors")
    return "tether demo, the same workload through two pools over a WAN link\n" + "; ".join(parts)
