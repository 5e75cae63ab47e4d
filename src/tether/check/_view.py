"""Show a check as it runs: plain lines anywhere, rich's spinner and colour on a terminal.

Both views print the same lines from ``_render``; the rich one replaces each step's start
line with a spinner (and the seconds spent) until the step ends, and colours the marks.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Protocol, TextIO

from .._term import Term, console
from ._events import Event, Report, Status
from ._render import (
    ACTIONS_TITLE,
    ADVICE_INDENT,
    action_prefix,
    event_advice,
    event_head,
    event_status,
    header,
    not_tested_lines,
    result_line,
    start_line,
    summary_lines,
    verdict,
)

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.progress import Progress, TaskID

__all__ = ["PlainView", "RichView", "View", "view"]

_STYLE = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "red", Status.SKIP: "dim",
          Status.INCOMPLETE: "bold yellow"}
_MARK_END = 6  # "[ ok ]": the mark is the first 6 characters of an event's line


class View(Protocol):
    def __enter__(self) -> View: ...
    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...
    def header(self, target: str) -> None: ...
    def starting(self, step: str, doing: str, budget_s: float) -> None: ...
    def finished(self, event: Event) -> None: ...
    def summary(self, report: Report) -> None: ...
    def note(self, text: str) -> None: ...


def view(term: Term) -> View:
    return RichView(term) if term.fancy else PlainView(term.stream)


class PlainView:
    """A line as each step starts and another as it ends: what a log or a pipe wants."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    def _print(self, text: str) -> None:
        print(text, file=self._stream, flush=True)

    def header(self, target: str) -> None:
        self._print(header(target))

    def starting(self, step: str, doing: str, budget_s: float) -> None:
        self._print(start_line(step, doing, budget_s))

    def finished(self, event: Event) -> None:
        self._print(event_head(event))
        for advice in event_advice(event):
            self._print(ADVICE_INDENT + advice)

    def summary(self, report: Report) -> None:
        for line in summary_lines(report):
            self._print(line)

    def note(self, text: str) -> None:
        self._print(text)


class RichView:
    """A spinner on the running step, coloured marks, advice wrapped under its arrow."""

    def __init__(self, term: Term) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.table import Column

        self._console: Console = console(term)
        description = TextColumn("{task.description}", markup=False,
                                 table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1))
        self._progress: Progress = Progress(SpinnerColumn(), description, TimeElapsedColumn(),
                                            console=self._console, transient=True, expand=True)
        self._task: TaskID | None = None

    def __enter__(self) -> RichView:
        self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._progress.stop()  # also on Ctrl-C or a closed pipe: the cursor comes back

    def header(self, target: str) -> None:
        from rich.text import Text

        self._console.print(Text(header(target), style="bold"))

    def starting(self, step: str, doing: str, budget_s: float) -> None:
        self._stop_spinner()
        # The plain start line without its "[ .. ] ": the spinner stands in for the mark.
        self._task = self._progress.add_task(start_line(step, doing, budget_s)[_MARK_END + 1:])
        self._progress.refresh()  # now, not at the next tick

    def finished(self, event: Event) -> None:
        from rich.text import Text

        self._stop_spinner()
        line = Text(event_head(event))
        line.stylize(_STYLE[event_status(event)], 1, _MARK_END - 1)
        self._console.print(line)
        advice = event_advice(event)
        if advice:
            self._console.print(_hanging([(ADVICE_INDENT, text) for text in advice]))

    def summary(self, report: Report) -> None:
        from rich.text import Text

        line = Text(result_line(report))
        start = len("Result: ")
        line.stylize(f"bold {_STYLE[report.status]}", start, start + len(verdict(report)))
        self._console.print(line)
        for text in not_tested_lines(report):
            self._console.print(Text(text))
        if report.actions:
            self._console.print(Text(ACTIONS_TITLE))
            self._console.print(_hanging([(action_prefix(n), a) for n, a in enumerate(report.actions, 1)]))

    def note(self, text: str) -> None:
        from rich.text import Text

        self._console.print(Text(text))

    def _stop_spinner(self) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None
            self._progress.refresh()  # else the next print redraws the finished step's spinner


def _hanging(rows: list[tuple[str, str]]) -> RenderableType:
    """Rows of (prefix, text), the text wrapped under itself rather than under the prefix."""
    from rich.table import Table

    grid = Table.grid()
    grid.add_column(no_wrap=True, style="dim")
    grid.add_column()
    for prefix, text in rows:
        grid.add_row(prefix, text)
    return grid
