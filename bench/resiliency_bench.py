"""Idle resiliency costs: ``python -m bench.resiliency_bench [--quick]``.

1. Tracking overhead per statement: the same ``SELECT 1`` on one session through the raw
   psycopg connection, through tether's proxy with idle resiliency off
   (``connect_retry_count=0``), and with it on; calls interleaved so that the three share
   the machine's noise. Reported: p50 per call and the differences (target: on - raw
   <= 2 us).
2. Recovery through the WAN emulator (30 ms round trip): a session with settings, a
   prepared statement and a LISTEN, killed while idle; the next statement's time, next
   to one connect and one round trip on the same link (target: recovery <= one connect
   plus one round trip of replay, before the statement's own round trip).

Prints a table and writes ``bench/results/resiliency.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import psycopg

import tether
from tether.session import lease_of
from tether.testing import EmbeddedPostgres
from tether.wan import Latency, Link

LATENCY_MS = 15  # each way: a 30 ms round trip


def per_call(calls: int) -> dict[str, float]:
    with EmbeddedPostgres() as server:
        raw = psycopg.connect(server.dsn, autocommit=True)
        pools = {
            "off": tether.Pool(server.dsn, min_size=1, max_size=1, connect_retry_count=0, autocommit=True),
            "on": tether.Pool(server.dsn, min_size=1, max_size=1, autocommit=True),
        }
        conns = {name: pool.getconn() for name, pool in pools.items()}
        runs: dict[str, Any] = {
            "raw": raw.execute,
            "off": conns["off"].execute,
            "on": conns["on"].execute,
        }
        samples: dict[str, list[int]] = {name: [] for name in runs}
        clock = time.perf_counter_ns
        for _ in range(calls):
            for name, run in runs.items():
                start = clock()
                run("SELECT 1")
                samples[name].append(clock() - start)
        for name, conn in conns.items():
            conn.close()
            pools[name].close()
        raw.close()
    p50 = {name: statistics.median(values) / 1000 for name, values in samples.items()}

    def paired(a: str, b: str) -> float:  # median of per-iteration differences: less drift
        return statistics.median(x - y for x, y in zip(samples[a], samples[b], strict=True)) / 1000

    return {
        "raw_p50_us": p50["raw"],
        "proxy_off_p50_us": p50["off"],
        "proxy_on_p50_us": p50["on"],
        "tracking_us": paired("on", "off"),
        "on_minus_raw_us": paired("on", "raw"),
        "tracking_cpu_us": tracking_cpu(),
    }


def tracking_cpu(number: int = 200_000) -> float:
    """What idle resiliency adds to a statement, without the statement: the socket poll,
    the cached read of its effects, the driver status after it (a live, idle session)."""
    import timeit

    with EmbeddedPostgres() as server:
        pool = tether.Pool(server.dsn, min_size=1, max_size=1, autocommit=True)
        conn = pool.getconn()
        lease = lease_of(conn)
        status, raw = lease.driver.tx_status, conn.raw

        def added() -> None:
            conn._ready()
            lease.read("SELECT 1")
            status(raw)

        cost = min(timeit.repeat(added, number=number, repeat=3)) / number * 1e6
        conn.close()
        pool.close()
    return cost


def recovery(rounds: int) -> dict[str, float]:
    with EmbeddedPostgres() as server, Link(upstream=(server.host, server.port)) as link:
        link.add(Latency(delay_s=LATENCY_MS / 1000), direction="both")
        host, port = link.listen_address
        dsn = f"postgresql://{server.user}@{host}:{port}/{server.database}"
        pool = tether.Pool(dsn, min_size=1, max_size=1, autocommit=True, maintenance_interval=60)
        connects, trips, recoveries = [], [], []
        with psycopg.connect(server.dsn, autocommit=True) as admin, pool.connection() as conn:
            for _ in range(rounds):
                start = time.perf_counter()
                psycopg.connect(dsn).close()
                connects.append(time.perf_counter() - start)
                conn.execute("SET search_path TO pg_catalog, public")
                conn.execute("SET TIME ZONE 'UTC'")
                conn.execute("SET work_mem = '8MB'")
                conn.execute("PREPARE q AS SELECT 1")
                conn.execute("LISTEN bench")
                start = time.perf_counter()
                conn.execute("SELECT 1")
                trips.append(time.perf_counter() - start)
                admin.execute("SELECT pg_terminate_backend(%s)", (conn.raw.info.backend_pid,))
                time.sleep(0.2)  # the goodbye crosses the link
                start = time.perf_counter()
                conn.execute("SELECT 1")
                recoveries.append(time.perf_counter() - start)
                conn.execute("DEALLOCATE q")
            recovered = pool.stats().recovered
        pool.close()
    connect, trip, recover = (statistics.median(v) * 1000 for v in (connects, trips, recoveries))
    return {
        "round_trip_ms": trip,
        "connect_ms": connect,
        "recovered_statement_ms": recover,
        "replay_round_trips": (recover - connect - trip) / trip,
        "recovered": recovered,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    calls, rounds = (2000, 3) if args.quick else (20000, 10)
    results = {"per_call": per_call(calls), "recovery": recovery(rounds)}
    pc, rc = results["per_call"], results["recovery"]
    print(f"per statement (p50, us): raw {pc['raw_p50_us']:.1f}  proxy off {pc['proxy_off_p50_us']:.1f}  "
          f"proxy on {pc['proxy_on_p50_us']:.1f}  -> paired differences: tracking {pc['tracking_us']:+.2f}, "
          f"on - raw {pc['on_minus_raw_us']:+.2f}; tracking CPU alone {pc['tracking_cpu_us']:.2f}")
    print(f"recovery through a {2 * LATENCY_MS} ms link (p50, ms): round trip {rc['round_trip_ms']:.1f}  "
          f"connect {rc['connect_ms']:.1f}  "
          f"first statement after the break {rc['recovered_statement_ms']:.1f}  "
          f"-> replay {rc['replay_round_trips']:.2f} round trips ({rc['recovered']:.0f} recoveries)")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "resiliency.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
