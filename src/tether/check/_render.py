"""Text for people: a line as each step starts and as it ends, then a summary with actions.

Colour (plain ANSI codes) only when asked for: the command asks when its output is a
terminal and ``--plain`` is not given. Without colour the text is plain ASCII.
"""

from __future__ import annotations

from ._events import Event, Report, Status

__all__ = ["event_line", "full_text", "header", "start_line", "summary"]

_MARK = {Status.OK: " ok ", Status.WARN: "WARN", Status.FAIL: "FAIL", Status.SKIP: "skip",
         Status.INCOMPLETE: "INC!"}
_VERDICT = {
    Status.OK: "all good",
    Status.INCOMPLETE: "incomplete (a step could not run: nothing is known about it)",
    Status.WARN: "problems found (warnings)",
    Status.FAIL: "problems found (failures)",
}
_COLOUR = {Status.OK: "32", Status.WARN: "33", Status.FAIL: "31", Status.SKIP: "2", Status.INCOMPLETE: "33;1"}


def _paint(text: str, status: Status, colour: bool) -> str:
    return f"\033[{_COLOUR[status]}m{text}\033[0m" if colour else text


def header(target: str) -> str:
    return f"tether check {target}"


def start_line(step: str, doing: str, budget_s: float) -> str:
    """The line shown as ``step`` starts: what it does, and how long it may take at most."""
    return f"[ .. ] {step:<8} {doing or 'running'} (up to {round(budget_s, 1):g} s)"


def event_line(event: Event, *, colour: bool = False) -> str:
    status = Status.INCOMPLETE if event.incomplete else event.status
    mark = "INC!" if event.incomplete else _MARK[status]
    took = f"{event.duration_s * 1000:.0f} ms"
    line = f"[{_paint(mark, status, colour)}] {event.step:<8} {event.detail} ({took})"
    if event.status.rank > 0 or event.incomplete:
        line += "".join(f"\n           -> {advice}" for advice in event.advice)
    return line


def summary(report: Report, *, colour: bool = False) -> str:
    counts = {status: sum(e.status is status for e in report.events) for status in Status}
    tally = ", ".join(f"{counts[s]} {s.value}" for s in Status if counts[s])
    verdict = _paint(_VERDICT[report.status], report.status, colour)
    lines = [f"Result: {verdict} ({tally}) in {report.duration_s:.1f} s"]
    for event in report.events:
        if event.incomplete:
            lines.append(f"Not tested: {event.step}: {event.detail}")
    if report.actions:
        lines.append("Recommended actions:")
        lines += [f"  {n}. {action}" for n, action in enumerate(report.actions, 1)]
    return "\n".join(lines)


def full_text(report: Report) -> str:
    """The whole report as the command prints it (the end of each step, without colour)."""
    body = [header(report.target), *(event_line(e) for e in report.events), summary(report)]
    return "\n".join(body) + "\n"
