"""A password that stops working during an outage: ``python -m bench.wrong_password_bench``.

The restart bench's workload (cycles of checkout + ``SELECT 1`` + return, 5 ms apart, a
pool of 4 with its defaults) against an embedded PostgreSQL that asks for a password.
After the 50th cycle the role's password is changed (the pooled sessions stay logged in)
and the server restarts: from then on every login the pool makes is refused with
"password authentication failed", a fault that cannot heal. Reported per round: the
errors while the server was away (the checkouts must wait, not fail), how long after the
server could first be reached (a fresh connection with the new password) the first
checkout failed with the server's message, and how long the failing checkouts took.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import tether
from bench.restart_bench import CYCLES, GAP_S, RESTART_AT, SIZE, Restart, Target, _quiet, _select
from tether.testing import EmbeddedPostgres

OLD, NEW = "Old-pw-1", "New-pw-2"


def one_round(server: EmbeddedPostgres) -> dict[str, Any]:
    server.execute(f"ALTER ROLE postgres PASSWORD '{OLD}'")
    old_dsn = server.dsn.replace(NEW, OLD)
    restart = Restart(Target(server, server.dsn, server.dsn))  # its probe logs in with NEW
    waited_out = 0  # cycles that failed before the server was back (at most the one running at the stop)
    failures: list[tuple[float, float, str]] = []  # (ended at, took, message)
    with tether.Pool(old_dsn, min_size=SIZE, max_size=SIZE) as pool:
        pool.wait(30)
        for i in range(CYCLES):
            if i == RESTART_AT:
                server.execute(f"ALTER ROLE postgres PASSWORD '{NEW}'")
                restart.start()
            started = time.perf_counter()
            try:
                with pool.connection() as conn:
                    _select(conn)
            except Exception as exc:  # the statement running at the stop fails with the driver's error
                ended = time.perf_counter()
                if i >= RESTART_AT and (not restart.reachable or ended < restart.reachable):
                    waited_out += 1
                failures.append((ended, ended - started, str(exc)))
            time.sleep(GAP_S)
    restart.join()
    after = [f for f in failures if restart.reachable and f[0] >= restart.reachable]
    first = after[0] if after else None
    return {
        "errors_before_reachable": waited_out,
        "first_failure_after_reachable_ms": (first[0] - restart.reachable) * 1000 if first else None,
        "failing_checkout_ms_median": statistics.median(f[1] for f in after) * 1000 if after else None,
        "servers_message": bool(first and "password authentication failed" in first[2]),
        "password_shown": any(OLD in f[2] or NEW in f[2] for f in failures),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.wrong_password_bench")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="bench/results/wrong_password.json")
    args = parser.parse_args(argv)
    with EmbeddedPostgres(password=NEW) as server, _quiet():
        rounds = [one_round(server) for _ in range(args.rounds)]
    for r in rounds:
        print(r)
    firsts = [r["first_failure_after_reachable_ms"] for r in rounds if r["first_failure_after_reachable_ms"]]
    if firsts:
        print(f"median first failure after reachable: {statistics.median(firsts):.0f} ms "
              f"(of {len(firsts)} rounds)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rounds, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
