"""``tether demo`` while it runs: a live table on a terminal, plain lines otherwise.

Both views read the :class:`~tether._demo_record.Recording` and are driven by the demo's
main thread calling ``update()`` every ``interval_s``; neither starts a thread of its own.
The plain view prints one line per pool each second and one per fault as it happens, with
no ANSI codes, for logs, pipes and ``--plain``.
"""

from __future__ import annotations

import math
from typing import Protocol, TextIO

from ._demo_record import WINDOW_S, Fault, Recording, Snapshot, ms
from ._term import console, decide

__all__ = ["WINDOW_S", "PlainView", "View", "fault_line", "open_view", "pool_line"]


class View(Protocol):
    interval_s: float

    def update(self) -> None: ...

    def close(self) -> None: ...


def open_view(recording: Recording, out: TextIO, *, plain: bool, seconds: float) -> View:
    """The live table on a terminal that can redraw, unless ``plain`` (the rules of every
    tether command, ``tether._term``: ``NO_COLOR``, ``TERM=dumb``, rich installed); plain
    lines otherwise."""
    term = decide(out, plain=plain)
    if term.hint:
        print(term.hint, file=out)
    if not term.fancy:
        return PlainView(recording, out)
    from ._demo_live import LiveView

    return LiveView(recording, console(term), seconds=seconds)


def fault_line(fault: Fault) -> str:
    return f"  t={fault.at_s:5.1f} s  fault: {fault.what}"


def pool_line(at_s: float, name: str, snap: Snapshot, *, added: int, width: int) -> str:
    """One pool at one moment: operations (and how many since the last line), recent
    latency, errors by kind."""
    line = (f"  t={at_s:5.1f} s  {name:<{width}}  ops {snap.ops:5d} +{added:<4d} "
            f"p50 {ms(snap.p50_ms):>6} ms  p99 {ms(snap.p99_ms):>6} ms  errors {snap.error_count}")
    if snap.errors:
        line += " (" + ", ".join(f"{kind} {n}" for kind, n in snap.errors.items()) + ")"
    return line


class PlainView:
    """Plain lines: faults as they happen, each pool once a second."""

    interval_s = 0.1  # how soon a fault's line follows the fault

    def __init__(self, recording: Recording, out: TextIO) -> None:
        self._recording, self._out = recording, out
        self._faults_shown = 0
        self._next_line_s = 1.0
        self._shown: dict[str, tuple[int, int]] = {}  # per pool: operations, errors on its last line
        self._width = max(map(len, recording.pools))

    def update(self) -> None:
        now = self._recording.now()
        self._fault_lines()
        if now >= self._next_line_s:
            self._pool_lines(now)
            self._next_line_s = math.floor(now) + 1.0  # a late tick skips a second, not repeats it

    def close(self) -> None:
        """Faults not yet shown, and the final totals when they changed since the last line."""
        self._fault_lines()
        now = self._recording.now()
        snaps = {name: pool.snapshot(now_s=now, window_s=None)
                 for name, pool in self._recording.pools.items()}
        if any((s.ops, s.error_count) != self._shown.get(name) for name, s in snaps.items()):
            self._pool_lines(now)

    def _fault_lines(self) -> None:
        faults = self._recording.faults
        for fault in faults[self._faults_shown:]:
            self._say(fault_line(fault))
        self._faults_shown = len(faults)

    def _pool_lines(self, now: float) -> None:
        for name, pool in self._recording.pools.items():
            snap = pool.snapshot(now_s=now, window_s=WINDOW_S)
            ops_before = self._shown.get(name, (0, 0))[0]
            self._say(pool_line(now, name, snap, added=snap.ops - ops_before, width=self._width))
            self._shown[name] = (snap.ops, snap.error_count)

    def _say(self, line: str) -> None:
        print(line, file=self._out, flush=True)
