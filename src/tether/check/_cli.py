"""``tether check``: check the connection to a database, step by step.

::

    tether check CONNECTION_STRING [--attempts 5] [--timeout 5] [--deadline 120]
                 [--resolver HOST[:PORT]]... [--json] [--bundle FILE.zip] [--plain]
    tether check --host HOST --port PORT [--dialect postgresql|sqlserver|mysql] [...]

CONNECTION_STRING is a URL (``postgresql://app@db.example.com/shop``) or a SQL Server
ADO.NET string (``Server=tcp:x.database.windows.net,1433;Database=shop``); ``--host``
and ``--port`` override its host and port. Progress goes to standard output (standard
error with ``--json``, which prints the JSON report on standard output, always plain): a
line as each step starts, saying what it does and how long it may take, and a line as it
ends. On a terminal with rich installed (``pip install 'tether[cli]'``) a spinner stands
for the running step and the marks are in colour (none with ``NO_COLOR`` set); ``--plain``,
or output to a pipe or a file, gives the same lines plainly.

Exit codes: 0 every step passed ("all good"); 1 problems found (a step warned or failed)
or the check is incomplete (a step that matters could not run, e.g. the login for want
of a driver); 2 bad usage (an unparsable connection string, an unknown scheme, a port
out of range).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

from .._help import plain_help
from .._term import decide
from ..dsn import ConnectionSpec, parse
from ..errors import ConfigError
from ._events import Report
from ._render import full_text
from ._runner import run_check, target
from ._view import view

__all__ = ["EXIT_OK", "EXIT_PROBLEMS", "EXIT_USAGE", "main"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def _typed(convert: Callable[[str], object], what: str) -> Callable[[str], object]:
    """An argument type whose error never quotes the value: a connection string put after
    ``--port`` by mistake would print its password."""

    def parse_value(text: str) -> object:
        try:
            return convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what} (the value is not shown)") from None

    return parse_value


def _dialect(text: str) -> str:
    if text not in DIALECTS:
        raise ValueError(text)
    return text


DIALECTS = ("postgresql", "sqlserver", "mysql")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tether check", description=plain_help(__doc__.split("::")[0]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("connection", nargs="?", help="URL or ADO.NET connection string")
    parser.add_argument("--host", help="server host (overrides the connection string's)")
    parser.add_argument("--port", type=_typed(int, "an integer"),
                        help="server port (overrides the connection string's)")
    parser.add_argument("--dialect", default="postgresql", type=_typed(_dialect, " or ".join(DIALECTS)),
                        metavar="{" + ",".join(DIALECTS) + "}",
                        help="database family without a connection string (default postgresql)")
    parser.add_argument("--attempts", type=_typed(int, "an integer"), default=5,
                        help="TCP connects per address (default 5)")
    parser.add_argument("--timeout", type=_typed(float, "a number of seconds"), default=5.0,
                        help="seconds for each network operation (default 5)")
    parser.add_argument("--deadline", type=_typed(float, "a number of seconds"), default=120.0,
                        help="seconds for the whole check (default 120)")
    parser.add_argument("--resolver", action="append", metavar="HOST[:PORT]",
                        help="DNS resolver to query directly (repeatable; default: /etc/resolv.conf)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--bundle", metavar="FILE.zip", help="write the report, its JSON and the logs")
    parser.add_argument("--plain", action="store_true",
                        help="plain lines (no colour, no spinner), even on a terminal")
    return parser


def _spec(args: argparse.Namespace) -> ConnectionSpec:
    if args.connection is None and args.host is None:
        raise ConfigError("give a connection string or --host")
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if args.connection is None:
        return target(parse(f"{args.dialect}://{args.host}", **overrides))
    return target(parse(args.connection, **overrides) if overrides else parse(args.connection))


def _resolvers(values: Sequence[str] | None) -> list[tuple[str, int]] | None:
    if values is None:
        return None
    found = []
    for value in values:
        host, _, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "53")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"--resolver {value!r}: expected HOST or HOST:PORT with a port in 1..65535")
        found.append((host or value, int(port)))
    return found


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Entry point of ``tether check``; returns the exit code (see the module docstring)."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exit_:
        return EXIT_USAGE if exit_.code else EXIT_OK
    try:
        spec = _spec(args)
        resolvers = _resolvers(args.resolver)
        if args.attempts < 1 or args.timeout <= 0 or args.deadline <= 0:
            raise ConfigError("--attempts must be at least 1; --timeout and --deadline positive seconds")
    except ConfigError as exc:
        print(f"tether check: {exc}", file=err)
        return EXIT_USAGE
    term = decide(err if args.json else out, plain=args.plain)
    if term.hint:
        print(term.hint, file=term.stream, flush=True)
    with _captured_logs() as logs, view(term) as shown:
        shown.header(spec.redacted())
        report = run_check(spec, attempts=args.attempts, timeout_s=args.timeout, deadline_s=args.deadline,
                           resolvers=resolvers, on_event=shown.finished, on_start=shown.starting)
        shown.summary(report)
    if args.json:
        print(_json(report), file=out)  # always plain: a program reads it
    if args.bundle:
        _write_bundle(args.bundle, report, logs.getvalue())
        print(f"bundle written to {args.bundle}", file=term.stream)
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, default=str)


def _write_bundle(path: str, report: Report, logs: str) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("report.txt", full_text(report))
        bundle.writestr("report.json", _json(report) + "\n")
        bundle.writestr("check.log", logs)


@contextmanager
def _captured_logs() -> Iterator[io.StringIO]:
    """tether's DEBUG log during the check, in memory. tether logs a spec only as its
    ``redacted()`` form, so the log has no password to scrub (and no substring is replaced:
    a short password would mangle other words)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("tether")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        logger.setLevel(previous)
        logger.removeHandler(handler)
