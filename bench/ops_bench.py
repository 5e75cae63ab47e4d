"""What metrics cost on the hot path: checkout + return with the pool's timings on and off.

One pool on an embedded PostgreSQL, one process, the variants interleaved round by round
so a noisy moment hits both alike: ``off`` (no histograms: ``PoolState.timings`` is None),
``on`` (the default: wait and use time histograms updated at each checkout and return)
and ``leaks`` (the default plus ``leak_detection_threshold``, which captures each borrow's
stack: off by default, for a reason). Reports the p50 of each round and the median of the
rounds, in µs, and the ratios. Targets: ``on`` at most 1.1x ``off`` and 0.3 µs more.

    python -m bench.ops_bench [--quick] [--out bench/results/ops.json]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Any

import tether
from bench._report import publish
from tether._timings import PoolTimings
from tether.testing import EmbeddedPostgres


def p50_us(pool: tether.Pool, cycles: int) -> float:
    samples = []
    clock = time.perf_counter
    borrow = pool.connection
    for _ in range(cycles):
        start = clock()
        with borrow():
            pass
        samples.append(clock() - start)
    samples.sort()
    return samples[len(samples) // 2] * 1e6


def run(quick: bool) -> dict[str, Any]:
    cycles, rounds = (3000, 3) if quick else (20000, 7)
    per_round: dict[str, list[float]] = {"off": [], "on": [], "leaks": []}
    with EmbeddedPostgres() as server:
        plain = tether.Pool(server.dsn, name="bench-ops", min_size=1, max_size=1)
        leaky = tether.Pool(server.dsn, name="bench-ops-leaks", min_size=1, max_size=1,
                            leak_detection_threshold=60.0)
        try:
            plain.wait(10.0)
            leaky.wait(10.0)
            p50_us(plain, 500)  # warm up
            p50_us(leaky, 500)
            for number in range(rounds):
                order = ("off", "on") if number % 2 == 0 else ("on", "off")  # neither always first
                for variant in order:
                    plain._state.timings = None if variant == "off" else PoolTimings()
                    per_round[variant].append(p50_us(plain, cycles))
                per_round["leaks"].append(p50_us(leaky, cycles))
        finally:
            plain.close()
            leaky.close()
    medians = {name: statistics.median(values) for name, values in per_round.items()}
    return {
        "machine": platform.platform(),
        "cycles_per_round": cycles,
        "rounds": per_round,
        "p50_us": medians,
        "on_over_off": medians["on"] / medians["off"],
        "on_minus_off_us": medians["on"] - medians["off"],
        "leaks_over_off": medians["leaks"] / medians["off"],
    }


def render(results: dict[str, Any]) -> str:
    p50 = results["p50_us"]
    lines = [f"checkout + return p50, median of {len(results['rounds']['off'])} rounds "
             f"of {results['cycles_per_round']} cycles:"]
    for name in ("off", "on", "leaks"):
        lines.append(f"  timings {name:<6} {p50[name]:7.2f} µs")
    lines.append(f"  on / off: {results['on_over_off']:.3f}x, +{results['on_minus_off_us']:.2f} µs "
                 f"(targets: <= 1.1x, <= +0.3 µs)")
    lines.append(f"  leak detection on / off: {results['leaks_over_off']:.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ops_bench")
    parser.add_argument("--quick", action="store_true", help="fewer cycles and rounds, for a smoke run")
    parser.add_argument("--out", default="bench/results/ops.json")
    args = parser.parse_args(argv)
    results = run(args.quick)
    return publish(render(results), results, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
