"""``tether demo``'s live table on a terminal (rich): both pools side by side, and the faults."""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ._demo_record import WINDOW_S, Fault, Recording, Snapshot, ms

__all__ = ["LiveView", "render"]

FAULT_ROWS = 8  # the most recent faults shown; a 10-minute run has about 150


class LiveView:
    """Redrawn by the caller's ``update()``, a few times a second; rich starts no thread."""

    interval_s = 0.25

    def __init__(self, recording: Recording, console: Console, *, seconds: float) -> None:
        self._recording, self._seconds = recording, seconds
        self._live = Live(self._render(), console=console, auto_refresh=False, transient=False)
        self._live.start()

    def update(self) -> None:
        self._live.update(self._render(), refresh=True)

    def close(self) -> None:
        self.update()
        self._live.stop()

    def _render(self) -> RenderableType:
        return render(self._recording, seconds=self._seconds)


def render(recording: Recording, *, seconds: float) -> RenderableType:
    now = recording.now()
    snaps = {name: pool.snapshot(now_s=now, window_s=WINDOW_S) for name, pool in recording.pools.items()}
    return Group(
        Text(f"tether demo: {min(now, seconds):.1f} s of {seconds:.0f} s", style="bold"),
        _pools_table(snaps),
        _faults_table(recording.faults),
    )


def _pools_table(snaps: dict[str, Snapshot]) -> Table:
    table = Table(show_header=True, header_style="bold")
    table.add_column("")
    for name in snaps:
        table.add_column(name, justify="right", min_width=14)
    table.add_row("operations done", *(str(s.ops) for s in snaps.values()))
    table.add_row("errors the app saw", *(_count(s.error_count) for s in snaps.values()))
    kinds = sorted({kind for s in snaps.values() for kind in s.errors})
    for kind in kinds:
        table.add_row(f"  {kind}", *(_count(s.errors.get(kind, 0)) for s in snaps.values()))
    table.add_row(f"p50 latency, last {WINDOW_S:.0f} s (ms)", *(ms(s.p50_ms) for s in snaps.values()))
    table.add_row(f"p99 latency, last {WINDOW_S:.0f} s (ms)", *(ms(s.p99_ms) for s in snaps.values()))
    return table


def _count(n: int) -> Text:
    return Text(str(n), style="bold red" if n else "green")


def _faults_table(faults: list[Fault]) -> Table:
    shown = faults[-FAULT_ROWS:]
    title = "faults" if len(shown) == len(faults) else f"faults (last {len(shown)} of {len(faults)})"
    table = Table(title=title, title_justify="left", show_header=True, header_style="bold")
    table.add_column("t (s)", justify="right")
    table.add_column("fault")
    table.add_column("took", justify="right")
    for fault in shown:
        took = "..." if fault.until_s is None else f"{fault.until_s - fault.at_s:.1f} s"
        table.add_row(f"{fault.at_s:.1f}", Text(fault.what, style="yellow"), took)
    if not faults:
        table.add_row("", Text("none yet", style="dim"), "")
    return table
