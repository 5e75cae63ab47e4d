"""The tether command.

Exit codes: 0 success; 1 the command ran and found problems; 2 bad usage;
130 interrupted (Ctrl-C); 141 its output was closed early (tether ... | head): it stops
quietly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ._help import plain_help

__all__ = ["EXIT_INTERRUPTED", "EXIT_PIPE_CLOSED", "main"]

EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE, as a shell reports a command killed by a closed pipe
EXIT_INTERRUPTED = 130  # 128 + SIGINT, likewise for Ctrl-C

def _version() -> str:
    from . import __version__

    return f"tether {__version__}"


def _dispatch(args: list[str]) -> int:
    if args and args[0] == "wan":
        from .wan._cli import main as wan_main

        code: int = wan_main(args[1:])
        return code
    if args and args[0] == "check":
        from .check._cli import main as check_main

        checked: int = check_main(args[1:])
        return checked
    parser = argparse.ArgumentParser(prog="tether", description=plain_help(__doc__ or ""),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="psycopg_pool and tether side by side on a bad network",
        description="One workload through psycopg_pool and through tether at once, against an embedded "
                    "PostgreSQL behind a WAN link (15 ms each way), while backends are terminated, the link "
                    "resets its connections and the server restarts. While it runs: a live table on a "
                    "terminal (NO_COLOR honoured), plain lines otherwise. At the end: what each application "
                    "saw, and a chart of both pools over time with the faults marked.")
    demo.add_argument("--seconds", type=float, default=30.0, help="workload duration (default 30)")
    demo.add_argument("--pgbouncer", action="store_true",
                      help="through a PgBouncer in transaction mode in front of PostgreSQL")
    demo.add_argument("--plain", action="store_true",
                      help="one plain line per pool each second and one per fault, instead of the live "
                           "table (the default when standard output is not a terminal)")
    charts = demo.add_mutually_exclusive_group()
    charts.add_argument("--chart", type=Path, metavar="PATH",
                        help="write the chart of both pools over time here; .svg, .png or .pdf (default: "
                             "tether-demo-YYYYMMDD-HHMMSS.svg in the temporary directory, its path printed)")
    charts.add_argument("--no-chart", action="store_true", help="draw no chart")
    commands.add_parser("wan", help="the WAN emulator: tether wan --help")
    commands.add_parser("check", help="diagnose a connection step by step: tether check --help")
    try:
        parsed = parser.parse_args(args)
    except SystemExit as exit_:
        return 2 if exit_.code else 0
    if parsed.command == "demo":
        if not 5 <= parsed.seconds <= 600:
            print("tether demo: --seconds must be between 5 and 600", file=sys.stderr)
            return 2
        from ._demo import run
        from ._demo_chart import SUFFIXES, default_chart_path

        if parsed.chart is not None and parsed.chart.suffix.lower() not in SUFFIXES:
            print(f"tether demo: --chart must end in {', '.join(SUFFIXES)}", file=sys.stderr)
            return 2
        chart = None if parsed.no_chart else parsed.chart or default_chart_path()
        return run(parsed.seconds, pgbouncer=parsed.pgbouncer, plain=parsed.plain, chart=chart)
    return 2


def quiet_on_closed_pipe(run: Callable[[], int]) -> int:
    """``run()``, flushing standard output; if its reader went away (``| head -1``), stop
    quietly with :data:`EXIT_PIPE_CLOSED` instead of a BrokenPipeError traceback."""
    try:
        code = run()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # Python flushes stdout again at exit, which would fail the same way: point it at
        # /dev/null first (the recipe of the signal module's documentation).
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_PIPE_CLOSED


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return quiet_on_closed_pipe(lambda: _dispatch(args))
    except KeyboardInterrupt:  # Ctrl-C: a spinner has put the cursor back on its way out
        print(file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
