"""The ``tether`` command.

Exit codes: 0 success; 1 the command ran and found problems; 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "wan":
        from .wan._cli import main as wan_main

        code: int = wan_main(args[1:])
        return code
    if args and args[0] == "check":
        from .check._cli import main as check_main

        checked: int = check_main(args[1:])
        return checked
    parser = argparse.ArgumentParser(prog="tether", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="psycopg_pool and tether side by side on a bad network")
    demo.add_argument("--seconds", type=float, default=30.0, help="workload duration (default 30)")
    demo.add_argument("--pgbouncer", action="store_true",
                      help="through a PgBouncer in transaction mode in front of PostgreSQL")
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

        return run(parsed.seconds, pgbouncer=parsed.pgbouncer)
    return 2


if __name__ == "__main__":
    sys.exit(main())
