"""Instructions per borrow, counted by callgrind: a measure machine load does not move.

For each pool (tether, psycopg_pool, DBUtils, and psycopg alone as the floor), with its
defaults (transaction mode): a checkout + return, and a checkout + ``SELECT 1`` + return.
Each figure is the difference between two runs of the same child process, of ``SHORT``
and ``LONG`` cycles, divided by the cycles between them, so start-up and imports cancel
out. The pools' background threads (tether's reset, psycopg_pool's workers) are counted
too: their work is CPU the borrow costs. tether is measured on its near path (a LAN:
callgrind's slowness would otherwise make every round trip look "far").

    python -m bench.instructions [--quick]

Needs valgrind (``apt-get install valgrind``). Prints a table and writes
``bench/results/instructions.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from bench._report import publish
from tether.testing import EmbeddedPostgres

POOLS = ("psycopg", "tether", "psycopg_pool", "dbutils")
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def _peer(name: str, dsn: str) -> Any:
    import psycopg

    from bench._peers import Peer, dbutils_peer, psycopg_pool_peer, tether_peer

    if name == "tether":
        from tether.session import _proxy

        _proxy.FAR_S = float("inf")  # the near path, whatever callgrind does to the clock
        return tether_peer(dsn, 4, False)
    if name == "psycopg_pool":
        return psycopg_pool_peer(dsn, 4, False, check=False)
    if name == "dbutils":
        return dbutils_peer(dsn, 4, False)
    conn = psycopg.connect(dsn, autocommit=False)

    @contextlib.contextmanager
    def borrow() -> Iterator[Any]:  # the floor: one connection, committed as a pool's block
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    return Peer("psycopg", borrow, conn.close, lambda: 1)


def child(name: str, cycles: int, query: bool, dsn: str) -> None:
    """The process callgrind watches: warm up, then ``cycles`` borrows."""
    from bench.pool_bench import cycle_times

    peer = _peer(name, dsn)
    cycle_times(peer.borrow, 200, query=query)
    cycle_times(peer.borrow, cycles, query=query)
    time.sleep(0.3)  # the last background resets end inside the count
    peer.close()


def instructions(name: str, cycles: int, query: bool, dsn: str) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-m",
               "bench.instructions", "--child", name, str(cycles), "q" if query else "-", dsn]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=True)
    found = _COLLECTED.search(done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count for {name}: {done.stderr[-500:]}")
    return int(found.group(1))


def run(quick: bool) -> dict[str, Any]:
    short, long = (200, 600) if quick else (500, 1500)
    results: dict[str, Any] = {"cycles": [short, long], "pools": {}}
    with EmbeddedPostgres() as server:
        dsn = server.url()
        for name in POOLS:
            row = {}
            for query in (False, True):
                counts = [instructions(name, n, query, dsn) for n in (short, long)]
                row["select" if query else "checkout"] = (counts[1] - counts[0]) // (long - short)
            results["pools"][name] = row
    return results


def render(results: dict[str, Any]) -> str:
    pools = results["pools"]
    base = pools["psycopg_pool"]
    ratio = "x psycopg_pool"
    lines = ["instructions per borrow, transaction mode (callgrind)",
             f"{'pool':14} {'checkout+return':>16} {ratio:>15} {'+SELECT 1':>11} {ratio:>15}"]
    for name, row in pools.items():
        lines.append(f"{name:14} {row['checkout']:>16,} {row['checkout'] / base['checkout']:>15.2f} "
                     f"{row['select']:>11,} {row['select'] / base['select']:>15.2f}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        name, cycles, query, dsn = argv[1:5]
        child(name, int(cycles), query == "q", dsn)
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.instructions")
    parser.add_argument("--quick", action="store_true", help="fewer cycles")
    parser.add_argument("--out", default="bench/results/instructions.json")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("bench.instructions needs valgrind: apt-get install valgrind", file=sys.stderr)
        return 2
    results = run(args.quick)
    return publish(render(results), results, args.out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
