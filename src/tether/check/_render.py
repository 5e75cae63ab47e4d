"""Text for people: one line per event as it happens, then a summary with actions."""

from __future__ import annotations

from ._events import Event, Report, Status

__all__ = ["event_line", "full_text", "header", "summary"]

_MARK = {Status.OK: " ok ", Status.WARN: "WARN", Status.FAIL: "FAIL", Status.SKIP: "skip"}
_VERDICT = {
    Status.OK: "all good",
    Status.WARN: "problems found (warnings)",
    Status.FAIL: "problems found (failures)",
}


def header(target: str) -> str:
    return f"tether check {target}"


def event_line(event: Event) -> str:
    line = f"[{_MARK[event.status]}] {event.step:<8} {event.detail} ({event.duration_s * 1000:.0f} ms)"
    if event.status.rank > 0:
        line += "".join(f"\n           -> {advice}" for advice in event.advice)
    return line


def summary(report: Report) -> str:
    counts = {status: sum(e.status is status for e in report.events) for status in Status}
    tally = ", ".join(f"{counts[s]} {s.value}" for s in Status if counts[s])
    lines = [f"Result: {_VERDICT[report.status]} ({tally}) in {report.duration_s:.1f} s"]
    if report.actions:
        lines.append("Recommended actions:")
        lines += [f"  {n}. {action}" for n, action in enumerate(report.actions, 1)]
    return "\n".join(lines)


def full_text(report: Report) -> str:
    """The whole report as the command prints it."""
    body = [header(report.target), *(event_line(e) for e in report.events), summary(report)]
    return "\n".join(body) + "\n"
