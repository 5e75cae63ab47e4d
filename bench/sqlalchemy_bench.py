"""Checkout through SQLAlchemy: tether's pool (the ``tether`` plugin) beside SQLAlchemy's
own ``QueuePool``, with and without ``pool_pre_ping``.

For each engine, against one embedded PostgreSQL (psycopg):

1. ``engine.connect()`` + close: wall and CPU (this thread's) µs, p50 and p99;
2. the same with ``SELECT 1``;
3. both through a WAN link of 15 ms each way, in round trips (the link's RTT is 30 ms).

The local scenarios run in rounds, interleaved across the engines; medians of rounds.
Prints a table and writes ``bench/results/sqlalchemy.json``. Compare ratios within one
run; on a shared machine the absolute numbers move.

    python -m bench.sqlalchemy_bench [--quick]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from typing import Any

import sqlalchemy as sa

import tether.sqlalchemy  # noqa: F401  (registers the plugin from a source checkout)
from bench._report import publish
from tether.testing import EmbeddedPostgres
from tether.wan import Latency, Link

ONE_WAY_S = 0.015
SIZE = 4


def engines(url: str) -> dict[str, sa.Engine]:
    return {
        "QueuePool": sa.create_engine(url, pool_size=SIZE, max_overflow=0),
        "QueuePool+pre_ping": sa.create_engine(url, pool_size=SIZE, max_overflow=0, pool_pre_ping=True),
        "tether": sa.create_engine(url, plugins=["tether"], tether_max_size=SIZE, tether_min_size=1),
    }


def cycles(engine: sa.Engine, n: int, *, query: bool) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds per checkout (+ SELECT 1) + return."""
    wall, cpu = [], []
    clock, thread_clock = time.perf_counter, time.thread_time
    select = sa.text("SELECT 1")
    for _ in range(n):
        start, start_cpu = clock(), thread_clock()
        with engine.connect() as conn:
            if query:
                conn.execute(select).scalar_one()
        cpu.append(thread_clock() - start_cpu)
        wall.append(clock() - start)
    return wall, cpu


def p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure_local(engine: sa.Engine, n_fast: int, n_query: int) -> dict[str, float]:
    cycles(engine, 100, query=True)  # warm up: connections open, statements compiled, caches hot
    wall, cpu = cycles(engine, n_fast, query=False)
    q_wall, q_cpu = cycles(engine, n_query, query=True)
    return {
        "checkout_p50_us": p(wall, 0.5) * 1e6,
        "checkout_p99_us": p(wall, 0.99) * 1e6,
        "checkout_cpu_p50_us": p(cpu, 0.5) * 1e6,
        "select1_p50_us": p(q_wall, 0.5) * 1e6,
        "select1_cpu_p50_us": p(q_cpu, 0.5) * 1e6,
    }


def measure_wan(engine: sa.Engine, n: int, rtt: float) -> dict[str, float]:
    cycles(engine, 3, query=True)
    wall, _ = cycles(engine, n, query=False)
    q_wall, _ = cycles(engine, n, query=True)
    return {"wan_checkout_rt": statistics.median(wall) / rtt,
            "wan_select1_rt": statistics.median(q_wall) / rtt}


def run(quick: bool) -> dict[str, Any]:
    # Many short rounds, interleaved: on a shared machine a noisy moment then hits every engine.
    n_fast, n_query, n_wan, rounds = (2000, 300, 10, 1) if quick else (4000, 600, 30, 9)
    results: dict[str, Any] = {"machine": platform.platform(), "python": sys.version.split()[0],
                               "sqlalchemy": sa.__version__, "engines": {}}
    with EmbeddedPostgres() as server:
        url = server.dsn.replace("postgresql://", "postgresql+psycopg://", 1)
        local = engines(url)
        rows: dict[str, dict[str, list[float]]] = {name: {} for name in local}
        for _ in range(rounds):  # interleaved: a noisy moment hits every engine alike
            for name, engine in local.items():
                for key, value in measure_local(engine, n_fast, n_query).items():
                    rows[name].setdefault(key, []).append(value)
        for name, engine in local.items():
            results["engines"][name] = {key: statistics.median(v) for key, v in rows[name].items()}
            engine.dispose()
        with Link(upstream=(server.host, server.port)) as link:
            link.add(Latency(delay_s=ONE_WAY_S), direction="both")
            host, port = link.listen_address
            wan_url = f"postgresql+psycopg://{server.user}@{host}:{port}/{server.database}"
            for name, engine in engines(wan_url).items():
                results["engines"][name].update(measure_wan(engine, n_wan, 2 * ONE_WAY_S))
                engine.dispose()
    base = results["engines"]["QueuePool"]
    for row in results["engines"].values():
        row["checkout_cpu_x_queuepool"] = row["checkout_cpu_p50_us"] / base["checkout_cpu_p50_us"]
        row["select1_cpu_x_queuepool"] = row["select1_cpu_p50_us"] / base["select1_cpu_p50_us"]
    return results


def render(results: dict[str, Any]) -> str:
    lines = [f"{'engine':20} {'checkout p50':>12} {'p99':>8} {'CPU p50':>8} {'x QP':>5} {'+SELECT1':>9} "
             f"{'CPU':>7} {'x QP':>5} {'WAN co':>7} {'WAN SEL':>8}"]
    for name, r in results["engines"].items():
        lines.append(
            f"{name:20} {r['checkout_p50_us']:10.1f}µs {r['checkout_p99_us']:6.1f}µs "
            f"{r['checkout_cpu_p50_us']:6.1f}µs {r['checkout_cpu_x_queuepool']:5.2f} "
            f"{r['select1_p50_us']:7.0f}µs {r['select1_cpu_p50_us']:5.0f}µs "
            f"{r['select1_cpu_x_queuepool']:5.2f} "
            f"{r['wan_checkout_rt']:6.2f}rt {r['wan_select1_rt']:7.2f}rt"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sqlalchemy_bench")
    parser.add_argument("--quick", action="store_true", help="fewer cycles, for a smoke run")
    parser.add_argument("--out", default="bench/results/sqlalchemy.json")
    args = parser.parse_args(argv)
    results = run(args.quick)
    return publish(render(results), results, args.out)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

