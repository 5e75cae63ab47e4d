"""The pool benchmark: tether beside psycopg_pool, SQLAlchemy's QueuePool and DBUtils.

Scenarios, each run for every pool in one process against one embedded PostgreSQL, with
each pool's defaults (transaction mode, what users get) and again in autocommit mode:

1. checkout + return (µs, p50 and p99), liveness checks included where a pool has them;
2. checkout + ``SELECT 1`` + return (µs), and the same on a raw connection;
3. both again through a WAN link of 15 ms each way, reported in round trips; with the
   defaults also a one-statement write committed in the block, and for tether a
   ``read_only`` block, a return that rolls back (``getconn``/``putconn``) and a
   one-statement writing ``pool.transaction``;
4. 16 threads on a pool of 4: ops/s, and the fewest and most ops per thread; locally, and
   through the WAN link.

Prints a table and writes ``bench/results/pool.json``. The local scenarios run in three
rounds, interleaved across the pools, and report medians (of cycles, then of rounds);
compare ratios within one run, not across machines.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

import tether
from bench._peers import Peer, all_peers
from bench._report import publish
from tether.testing import EmbeddedPostgres
from tether.wan import Latency, Link

ONE_WAY_S = 0.015


def cycle_times(borrow: Callable[[], Any], n: int, *, query: bool) -> list[float]:
    """Seconds per checkout (+ SELECT 1) + return, one sample per cycle."""
    samples = []
    clock = time.perf_counter
    for _ in range(n):
        start = clock()
        with borrow() as conn:
            if query:
                cur = conn.cursor()
                cur.execute("SELECT 1")
                cur.fetchone()
        samples.append(clock() - start)
    return samples


def raw_select_times(dsn: str, n: int) -> list[float]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            samples.append(time.perf_counter() - start)
    return samples


def threaded(borrow: Callable[[], Any], *, threads: int, seconds: float) -> dict[str, float]:
    counts = [0] * threads
    errors = [0]
    barrier = threading.Barrier(threads + 1)
    stop = [False]

    def work(i: int) -> None:
        barrier.wait()
        while not stop[0]:
            try:
                with borrow() as conn:
                    cur = conn.cursor()
                    cur.execute("SELECT 1")
                    cur.fetchone()
                counts[i] += 1
            except Exception:
                errors[0] += 1

    pool = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    time.sleep(seconds)  # the measured window: time is the feature here
    stop[0] = True
    for t in pool:
        t.join(30)
    elapsed = time.perf_counter() - start
    return {
        "ops_per_s": sum(counts) / elapsed,
        "fewest": min(counts),
        "most": max(counts),
        "fairness": min(counts) / max(counts) if max(counts) else 0.0,
        "errors": errors[0],
    }


def recovery(peer: Peer, server: EmbeddedPostgres, *, cycles: int = 200) -> dict[str, float]:
    """Terminate every backend, then run ``cycles`` checkout + SELECT 1 + return.

    Reports the errors the application saw and the time from the kill to the first
    successful cycle.
    """
    with contextlib.ExitStack() as stack:  # all four connections exist and sit idle
        for _ in range(4):
            stack.enter_context(peer.borrow())
    server.terminate_backends()
    errors = 0
    first_ok: float | None = None
    start = time.perf_counter()
    for _ in range(cycles):
        try:
            with peer.borrow() as conn:
                cur = conn.cursor()
                cur.execute("SELECT 1")
                cur.fetchone()
        except Exception:
            errors += 1
            continue
        if first_ok is None:
            first_ok = time.perf_counter() - start
    return {"errors": errors, "first_success_ms": (first_ok or float("nan")) * 1000}


def p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


MODES = {"defaults": False, "autocommit": True}
WRITES = "bench_writes"


def run(quick: bool) -> dict[str, Any]:
    n_fast, n_query, n_wan, seconds, rounds = (
        (2000, 300, 10, 1.0, 1) if quick else (20000, 2000, 30, 3.0, 3)
    )
    results: dict[str, Any] = {"machine": platform.platform(), "peers": {}}
    with EmbeddedPostgres() as server:
        dsn = server.dsn
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f"CREATE TABLE IF NOT EXISTS {WRITES} (x int)")
        raw = raw_select_times(dsn, n_query)
        results["raw_select_us"] = statistics.median(raw) * 1e6
        for mode, autocommit in MODES.items():
            for name, summary in local_rounds(server, autocommit, n_fast, n_query, seconds, rounds).items():
                results["peers"].setdefault(name, {})[mode] = summary
        with Link(upstream=(server.host, server.port)) as link:
            link.add(Latency(delay_s=ONE_WAY_S), direction="both")
            host, port = link.listen_address
            wan_dsn = f"postgresql://{server.user}@{host}:{port}/{server.database}"
            rtt = 2 * ONE_WAY_S
            results["raw_select_wan_rt"] = statistics.median(raw_select_times(wan_dsn, n_wan)) / rtt
            for mode, autocommit in MODES.items():
                for make in all_peers():
                    wan_peer = make(wan_dsn, 4, autocommit)
                    wan = measure_wan(wan_peer, n_wan, rtt, extras=not autocommit)
                    # where round trips are dear, fewer messages are more throughput
                    wan["wan_threads16_pool4"] = threaded(wan_peer.borrow, threads=16, seconds=seconds)
                    results["peers"][wan_peer.name][mode].update(wan)
                    wan_peer.close()
            # a pool of one, borrowed in a loop: each borrow waits for the last one's end
            alone = tether.Pool(wan_dsn, min_size=1, max_size=1)
            alone.wait(30)
            results["tether_pool_of_one_select1_wan_rt"] = _rts(
                lambda: _select1(alone.connection), n_wan, rtt)
            alone.close()
    return results


def local_rounds(server: EmbeddedPostgres, autocommit: bool, n_fast: int, n_query: int, seconds: float,
                 rounds: int) -> dict[str, dict[str, Any]]:
    peers = [make(server.dsn, 4, autocommit) for make in all_peers()]
    rows: dict[str, dict[str, Any]] = {peer.name: {} for peer in peers}
    for _ in range(rounds):  # interleaved: a noisy moment hits every pool alike
        for peer in peers:
            for key, value in measure_local(peer, n_fast, n_query).items():
                rows[peer.name].setdefault(key, []).append(value)
            many = threaded(peer.borrow, threads=16, seconds=seconds)
            rows[peer.name].setdefault("threads", []).append(many)
    found = {}
    for peer in peers:
        row = rows[peer.name]
        summary: dict[str, Any] = {k: statistics.median(v) for k, v in row.items() if k != "threads"}
        summary["threads16_pool4"] = _median_run(row["threads"])
        summary["after_kill"] = recovery(peer, server)
        peer.close()
        found[peer.name] = summary
    return found


def _median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median throughput (its fairness figures belong to it)."""
    ordered = sorted(runs, key=lambda r: r["ops_per_s"])
    return ordered[len(ordered) // 2]


def measure_local(peer: Peer, n_fast: int, n_query: int) -> dict[str, float]:
    cycle_times(peer.borrow, 200, query=True)  # warm up
    fast = cycle_times(peer.borrow, n_fast, query=False)
    query = cycle_times(peer.borrow, n_query, query=True)
    return {
        "checkout_return_p50_us": p(fast, 0.5) * 1e6,
        "checkout_return_p99_us": p(fast, 0.99) * 1e6,
        "select1_p50_us": p(query, 0.5) * 1e6,
        "select1_p99_us": p(query, 0.99) * 1e6,
    }


def measure_wan(peer: Peer, n: int, rtt: float, *, extras: bool) -> dict[str, Any]:
    """Round trips (the median cycle over the link's round trip) of each scenario."""
    cycle_times(peer.borrow, 2, query=True)
    found = {
        "wan_checkout_return_rt": statistics.median(cycle_times(peer.borrow, n, query=False)) / rtt,
        "wan_select1_rt": statistics.median(cycle_times(peer.borrow, n, query=True)) / rtt,
    }
    if not extras:
        return found

    def write() -> None:
        with peer.borrow() as conn:
            conn.cursor().execute(f"INSERT INTO {WRITES} VALUES (1)")
            conn.commit()

    found["wan_write_commit_rt"] = _rts(write, n, rtt)
    pool = peer.pool
    if pool is None:
        return found

    def read_only() -> None:
        with pool.connection() as conn:
            conn.read_only = True
            conn.execute("SELECT 1").fetchone()

    def rolled_back() -> None:  # a return that rolls back, as SQLAlchemy's reset on return
        conn = pool.getconn()
        conn.execute("SELECT 1").fetchone()
        pool.putconn(conn)

    def unit() -> None:
        pool.transaction(lambda conn: conn.execute(f"INSERT INTO {WRITES} VALUES (1)"))

    found["wan_read_only_rt"] = _rts(read_only, n, rtt)
    found["wan_select1_putconn_rt"] = _rts(rolled_back, n, rtt)
    found["wan_transaction_write_rt"] = _rts(unit, n, rtt)
    return found


def _select1(borrow: Callable[[], Any]) -> None:
    with borrow() as conn:
        cur = conn.cursor()
        cur.execute("SELECT 1")
        cur.fetchone()


def _rts(call: Callable[[], Any], n: int, rtt: float) -> float:
    call()  # warm up
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) / rtt


def render(results: dict[str, Any]) -> str:
    peers = results["peers"]
    lines = [
        f"raw connection SELECT 1: {results['raw_select_us']:.0f} µs; "
        f"through the WAN link: {results['raw_select_wan_rt']:.2f} round trips",
    ]
    for mode in MODES:
        base = peers["psycopg_pool"][mode]["threads16_pool4"]["ops_per_s"]
        lines += [
            "",
            f"{mode}:",
            f"{'pool':26} {'co+ret p50':>10} {'p99':>8} {'+SELECT1':>9} {'WAN co':>7} "
            f"{'WAN SEL':>8} {'16thr ops/s':>12} {'x psycopg':>9} {'fair':>5} {'kill: errors':>12} "
            f"{'1st ok':>8}",
        ]
        for name, rows in peers.items():
            row = rows[mode]
            t = row["threads16_pool4"]
            lines.append(
                f"{name:26} {row['checkout_return_p50_us']:8.1f}µs {row['checkout_return_p99_us']:6.1f}µs "
                f"{row['select1_p50_us']:7.0f}µs {row['wan_checkout_return_rt']:6.2f}rt "
                f"{row['wan_select1_rt']:7.2f}rt {t['ops_per_s']:12.0f} {t['ops_per_s'] / base:9.2f} "
                f"{t['fairness']:5.2f} {row['after_kill']['errors']:12.0f} "
                f"{row['after_kill']['first_success_ms']:6.1f}ms"
            )
    extras = ("wan_write_commit_rt", "wan_read_only_rt", "wan_select1_putconn_rt", "wan_transaction_write_rt")
    lines += ["", "16 threads on a pool of 4 through the WAN link (ops/s):",
              f"{'pool':26} {'defaults':>9} {'x psycopg':>9} {'autocommit':>11} {'x psycopg':>9}"]
    wan_base = {mode: peers["psycopg_pool"][mode]["wan_threads16_pool4"]["ops_per_s"] for mode in MODES}
    for name, rows in peers.items():
        cells = [(rows[mode]["wan_threads16_pool4"]["ops_per_s"], wan_base[mode]) for mode in MODES]
        lines.append(f"{name:26} " + " ".join(f"{ops:9.0f} {ops / base:9.2f}" for ops, base in cells))
    alone = results["tether_pool_of_one_select1_wan_rt"]
    lines += ["", f"tether, pool of one, SELECT 1 in a loop through the WAN link: {alone:.2f} rt",
              "", "defaults, through the WAN link (round trips):",
              f"{'pool':26} {'write+commit':>12} {'read_only':>10} {'putconn':>8} {'transaction':>12}"]
    for name, rows in peers.items():
        row = rows["defaults"]
        cells = [f"{row[k]:.2f}" if k in row else "-" for k in extras]
        lines.append(f"{name:26} {cells[0]:>12} {cells[1]:>10} {cells[2]:>8} {cells[3]:>12}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer cycles, for a smoke run")
    parser.add_argument("--out", default="bench/results/pool.json")
    args = parser.parse_args(argv)
    results = run(args.quick)
    return publish(render(results), results, args.out)
