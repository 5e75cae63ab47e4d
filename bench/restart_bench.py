"""Live restart and retry overhead: ``python -m bench.restart_bench [--quick]``.

1. Live restart: 200 cycles 5 ms apart against an embedded PostgreSQL that restarts
   after the 50th. tether runs each cycle as ``pool.transaction`` with the default
   retry; the peers run a plain checkout + SELECT 1 + return. Reported: the errors the
   application saw, and the time from the server accepting again to the first success.
2. The retry engine's overhead on a call that succeeds at once (decorator, iterator).

Prints a table and writes ``bench/results/restart.json``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tether
from bench._peers import all_peers
from tether.testing import EmbeddedPostgres

CYCLES, RESTART_AT, GAP_S = 200, 50, 0.005


def live_restart(server: EmbeddedPostgres, cycle: Callable[[], object]) -> dict[str, float]:
    errors = 0
    back_at: list[float] = []
    first_ok_after: float | None = None

    def restart() -> None:
        server.restart()  # returns once the server accepts connections again
        back_at.append(time.perf_counter())

    restarter = None
    for i in range(CYCLES):
        if i == RESTART_AT:
            restarter = threading.Thread(target=restart)
            restarter.start()
        try:
            cycle()
        except Exception:
            errors += 1
        else:
            if back_at and first_ok_after is None:
                first_ok_after = time.perf_counter() - back_at[0]
        time.sleep(GAP_S)
    if restarter is not None:
        restarter.join()
    return {
        "errors": errors,
        "first_success_after_back_ms": (first_ok_after or float("nan")) * 1000,
    }


def retry_overhead() -> dict[str, float]:
    def plain() -> int:
        return 1

    decorated = tether.retry(plain)

    def iterated() -> int:
        for attempt in tether.attempts():
            with attempt:
                value = 1
        return value

    n = 200_000
    base = min(timeit.repeat(plain, number=n, repeat=5)) / n
    deco = min(timeit.repeat(decorated, number=n, repeat=5)) / n
    loop = min(timeit.repeat(iterated, number=n, repeat=5)) / n
    return {"decorator_ns": (deco - base) * 1e9, "attempts_ns": (loop - base) * 1e9}


def run() -> dict[str, Any]:
    results: dict[str, Any] = {"restart": {}, "overhead": retry_overhead()}
    with EmbeddedPostgres() as server:
        pool = tether.Pool(server.dsn, min_size=4, max_size=4, autocommit=True)
        pool.wait(30)
        results["restart"]["tether (transaction)"] = live_restart(
            server, lambda: pool.transaction(lambda conn: conn.execute("SELECT 1").fetchone())
        )
        pool.close()
        for make in all_peers()[1:]:
            peer = make(server.dsn, 4)

            def cycle(borrow: Callable[[], Any] = peer.borrow) -> None:
                with borrow() as conn:
                    cur = conn.cursor()
                    cur.execute("SELECT 1")
                    cur.fetchone()

            results["restart"][peer.name] = live_restart(server, cycle)
            peer.close()
    return results


def render(results: dict[str, Any]) -> str:
    lines = [f"{'pool':24} {'app errors':>10} {'first success after the server is back':>40}"]
    for name, row in results["restart"].items():
        lines.append(f"{name:24} {row['errors']:10.0f} {row['first_success_after_back_ms']:37.1f} ms")
    o = results["overhead"]
    lines.append(
        f"\nretry engine, a call that succeeds at once: decorator +{o['decorator_ns']:.0f} ns, "
        f"attempts() +{o['attempts_ns']:.0f} ns"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.restart_bench")
    parser.add_argument("--out", default="bench/results/restart.json")
    args = parser.parse_args(argv)
    results = run()
    print(render(results))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
