"""Generate tether's sync modules from their async sources (httpcore's scripts/unasync.py).

    python tools/unasync.py           # rewrite the generated files
    python tools/unasync.py --check   # exit 1, naming the files, if one is stale

One source, two twins: the async module is the one to edit. The rules are a short list
of textual replacements, applied line by line, that turn ``await``-ing code into its
blocking equivalent; the generated file says at the top where it comes from.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = {
    "src/tether/pool/_transaction_async.py": "src/tether/pool/_transaction.py",
}
RULES: list[tuple[str, str]] = [
    (r"^import asyncio\n", ""),
    (r"\bawait (\w+)\.set_autocommit\(([^)]*)\)", r"\1.autocommit = \2"),
    (r"\basync def\b", "def"),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"\bawait ", ""),
    (r"\basyncio\.sleep\b", "time.sleep"),
    (r"\bAwaitable\[(\w+)\]", r"\1"),
    (r"\bimport Awaitable, ", "import "),
    (r"\bAsyncPool\b", "Pool"),
    (r"\bAsyncConnection\b", "Connection"),
    (r"\._async_pool\b", "._pool"),
    (r"\.session\._async_proxy\b", ".session"),
    (r"\b_transaction_async\b", "_transaction"),
    (r"\basync_transactional\b", "transactional"),
    (r"\basync_run_transaction\b", "run_transaction"),
]
BANNER = "# Generated from {source} by tools/unasync.py: edit that file, then run the tool.\n"


def unasync(text: str, source: str) -> str:
    out = []
    for line in text.splitlines(keepends=True):
        for pattern, replacement in RULES:
            line = re.sub(pattern, replacement, line)
        out.append(line)
    return BANNER.format(source=source) + "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/unasync.py")
    parser.add_argument("--check", action="store_true", help="fail if a generated file is stale")
    args = parser.parse_args(argv)
    stale = []
    for source, target in FILES.items():
        wanted = unasync((ROOT / source).read_text(), source)
        path = ROOT / target
        if path.exists() and path.read_text() == wanted:
            continue
        stale.append(target)
        if not args.check:
            path.write_text(wanted)
    if args.check and stale:
        print(f"stale, run tools/unasync.py: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
