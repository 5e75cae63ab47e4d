"""The command-line tools' terminal decisions, made in one place: rich or plain, colour, width.

Fancy output (colour, tables, a live spinner) needs two things: the optional package rich
(``pip install 'tether[cli]'``) and a stream that is a terminal. ``--plain``, ``TERM=dumb``
or a stream that is not a terminal (a pipe, a file) give plain text with the same content.
``NO_COLOR`` (https://no-color.org) keeps the spinner and drops the colour. JSON is never
rendered here: it is always written as it is.

rich is imported only by :func:`console` and :func:`spinner`, so ``import tether`` never needs
it: applications import tether in production, where rich may well be absent.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["INSTALL_HINT", "Term", "console", "decide", "plain_table", "print_table", "rich_available",
           "spinner"]

INSTALL_HINT = "tip: pip install 'tether[cli]' for colour and live progress"
_DEFAULT_WIDTH = 80
_DUMB_TERMINALS = frozenset({"dumb", "unknown"})  # rich's own list: no cursor movement there


@dataclass(frozen=True, slots=True)
class Term:
    """How to write to ``stream``: ``fancy`` (through rich) or plain, in ``colour`` or not."""

    stream: TextIO
    terminal: bool  # the stream is a terminal (fancy or not)
    fancy: bool  # rich renders: tables, a live spinner, colour unless ``colour`` is False
    colour: bool
    width: int
    hint: str | None  # one line to show first: fancy output was wanted but rich is missing


def rich_available() -> bool:
    """Whether rich can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec("rich") is not None
    except (ImportError, ValueError):  # a parent that is not a package, a broken module entry
        return False


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _width(stream: TextIO, environ: Mapping[str, str]) -> int:
    """The terminal's columns; else ``COLUMNS``; else 80 (a pseudo-terminal may say 0)."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):  # not a real file, or not a terminal
        columns = 0
    if columns > 0:
        return columns
    text = environ.get("COLUMNS", "")
    return int(text) if text.isdigit() and int(text) > 0 else _DEFAULT_WIDTH


def decide(stream: TextIO, *, plain: bool = False, environ: Mapping[str, str] | None = None) -> Term:
    """The decisions for writing to ``stream``; ``plain`` is the command's ``--plain``."""
    environ = os.environ if environ is None else environ
    terminal = is_terminal(stream)
    wanted = terminal and not plain and environ.get("TERM", "").lower() not in _DUMB_TERMINALS
    fancy = wanted and rich_available()
    colour = fancy and environ.get("NO_COLOR", "") == ""
    hint = INSTALL_HINT if wanted and not fancy else None
    return Term(stream, terminal, fancy, colour, _width(stream, environ), hint)


def console(term: Term) -> Console:
    """A rich console on ``term.stream`` that follows ``term``'s decisions, not its own.

    rich would read ``FORCE_COLOR``, ``NO_COLOR`` and ``TTY_COMPATIBLE`` by itself; the
    explicit arguments keep one set of rules for every tether command."""
    from rich.console import Console

    return Console(file=term.stream, force_terminal=term.fancy, force_interactive=term.fancy,
                   no_color=not term.colour, color_system="auto" if term.colour else None,
                   width=term.width, highlight=False, markup=False, emoji=False)


@contextmanager
def spinner(term: Term, text: str) -> Iterator[None]:
    """A spinner saying ``text`` while the block runs, on a fancy terminal; nothing elsewhere
    (plain output says what it is doing in its own words, before and after)."""
    if not term.fancy:
        yield
        return
    with console(term).status(text):
        yield


def print_table(term: Term, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """``rows`` under ``headers``: a rich table on a fancy terminal, else aligned plain columns
    (two spaces apart, the last column unpadded), with the same cells either way."""
    if term.fancy:
        from rich import box
        from rich.table import Table

        table = Table(*headers, box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
        for row in rows:
            table.add_row(*row)
        console(term).print(table)
        return
    term.stream.write(plain_table(headers, rows))


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [tuple(headers), *(tuple(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers) - 1)]

    def joined(line: tuple[str, ...]) -> str:
        return "  ".join([*(cell.ljust(width) for cell, width in zip(line, widths, strict=False)), line[-1]])

    return "".join(joined(line) + "\n" for line in lines)
