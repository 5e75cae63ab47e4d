"""Text for people: a line as each step starts and as it ends, then a summary with actions.

Plain ASCII, the same words whatever the output: the rich view (``_view.py``) prints these
lines and only colours their marks and verdict.
"""

from __future__ import annotations

from ._events import Event, Report, Status

__all__ = ["ACTIONS_TITLE", "ADVICE_INDENT", "action_prefix", "event_advice", "event_head", "event_line",
           "event_status", "full_text", "header", "not_tested_lines", "result_line", "start_line", "summary",
           "summary_lines", "verdict"]

_MARK = {Status.OK: " ok ", Status.WARN: "WARN", Status.FAIL: "FAIL", Status.SKIP: "skip",
         Status.INCOMPLETE: "INC!"}
_VERDICT = {
    Status.OK: "all good",
    Status.INCOMPLETE: "incomplete (a step could not run: nothing is known about it)",
    Status.WARN: "problems found (warnings)",
    Status.FAIL: "problems found (failures)",
}
ACTIONS_TITLE = "Recommended actions:"
ADVICE_INDENT = "           -> "  # under the step's name: "[FAIL] " is 7 wide, then 4 more


def header(target: str) -> str:
    return f"tether check {target}"


def start_line(step: str, doing: str, budget_s: float) -> str:
    """The line shown as ``step`` starts: what it does, and how long it may take at most."""
    return f"[ .. ] {step:<8} {doing or 'running'} (up to {round(budget_s, 1):g} s)"


def event_status(event: Event) -> Status:
    """The status the event's mark shows: ``incomplete`` for a step skipped for want of something."""
    return Status.INCOMPLETE if event.incomplete else event.status


def event_head(event: Event) -> str:
    """The event's first line: ``[mark] step detail (duration)``; the mark is its first 6 characters."""
    took = f"{event.duration_s * 1000:.0f} ms"
    return f"[{_MARK[event_status(event)]}] {event.step:<8} {event.detail} ({took})"


def event_advice(event: Event) -> tuple[str, ...]:
    """The advice shown under the event: only for a step that warned, failed or was incomplete."""
    return event.advice if event.status.rank > 0 or event.incomplete else ()


def event_line(event: Event) -> str:
    return event_head(event) + "".join(f"\n{ADVICE_INDENT}{advice}" for advice in event_advice(event))


def verdict(report: Report) -> str:
    return _VERDICT[report.status]


def result_line(report: Report) -> str:
    """``Result: <verdict> (<tally>) in <seconds> s``; the verdict is :func:`verdict`'s."""
    counts = {status: sum(e.status is status for e in report.events) for status in Status}
    tally = ", ".join(f"{counts[s]} {s.value}" for s in Status if counts[s])
    return f"Result: {verdict(report)} ({tally}) in {report.duration_s:.1f} s"


def not_tested_lines(report: Report) -> list[str]:
    return [f"Not tested: {e.step}: {e.detail}" for e in report.events if e.incomplete]


def action_prefix(number: int) -> str:
    return f"  {number}. "


def summary_lines(report: Report) -> list[str]:
    """The summary: the result, what was not tested, the recommended actions."""
    lines = [result_line(report), *not_tested_lines(report)]
    if report.actions:
        lines.append(ACTIONS_TITLE)
        lines += [action_prefix(n) + action for n, action in enumerate(report.actions, 1)]
    return lines


def summary(report: Report) -> str:
    return "\n".join(summary_lines(report))


def full_text(report: Report) -> str:
    """The whole report as the command prints it (the end of each step)."""
    body = [header(report.target), *(event_line(e) for e in report.events), summary(report)]
    return "\n".join(body) + "\n"
