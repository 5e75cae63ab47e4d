"""The asyncio benchmark: tether's AsyncPool beside asyncpg's pool and psycopg_pool's
AsyncConnectionPool, in one process against one embedded PostgreSQL.

1. checkout + return (µs, p50 and p99), with each pool's liveness check where it has one;
2. checkout + ``SELECT 1`` + return through a WAN link of 15 ms each way, in round trips;
3. 16 tasks on a pool of 4, locally and through the link: ops/s, and the fewest and most
   ops per task.

Each pool runs with its defaults (what users get: psycopg in transaction mode, each
block committed at its end; asyncpg has no implicit transactions) and, where the driver
has a transaction mode, again in autocommit mode (``[autocommit]``). Prints a table and
writes ``bench/results/async.json``; the local scenarios run in rounds interleaved across the
pools and report medians. ``python -m bench.async_bench [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.pool import AsyncPool
from tether.testing import EmbeddedPostgres
from tether.wan import Latency, Link

ONE_WAY_S = 0.015
Query = Callable[[Any], Awaitable[Any]]


@dataclass
class Peer:
    name: str
    borrow: Callable[[], Any]  # an async context manager factory
    query: Query  # SELECT 1 on a borrowed connection
    close: Callable[[], Awaitable[None]]


async def _psycopg_select(conn: Any) -> Any:
    cur = await conn.execute("SELECT 1")
    return await cur.fetchone()


async def _asyncpg_select(conn: Any) -> Any:
    return await conn.fetchval("SELECT 1")


async def tether_peer(dsn: str, size: int, driver: str, *, autocommit: bool = False) -> Peer:
    url = dsn if driver == "psycopg" else dsn.replace("postgresql://", f"postgresql+{driver}://", 1)
    pool = AsyncPool(url, min_size=size, max_size=size, autocommit=autocommit, timeout=60)
    await pool.open()
    await pool.wait(30)
    query = _psycopg_select if driver == "psycopg" else _asyncpg_select
    name = f"tether[{driver}]" + (" [autocommit]" if autocommit else "")
    return Peer(name, pool.connection, query, pool.close)


async def asyncpg_peer(dsn: str, size: int) -> Peer:
    import asyncpg

    pool = await asyncpg.create_pool(dsn, min_size=size, max_size=size)
    return Peer("asyncpg.Pool", pool.acquire, _asyncpg_select, pool.close)


async def psycopg_pool_peer(dsn: str, size: int, *, check: bool, autocommit: bool = False) -> Peer:
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(
        dsn,
        min_size=size,
        max_size=size,
        kwargs={"autocommit": autocommit},
        check=AsyncConnectionPool.check_connection if check else None,
        open=False,
    )
    await pool.open(wait=True, timeout=30)
    name = ("psycopg_pool+check" if check else "psycopg_pool") + (" [autocommit]" if autocommit else "")
    return Peer(name, pool.connection, _psycopg_select, pool.close)


PEERS: list[Callable[[str, int], Awaitable[Peer]]] = [
    lambda dsn, size: tether_peer(dsn, size, "psycopg"),
    lambda dsn, size: tether_peer(dsn, size, "psycopg", autocommit=True),
    lambda dsn, size: tether_peer(dsn, size, "asyncpg"),
    asyncpg_peer,
    lambda dsn, size: psycopg_pool_peer(dsn, size, check=False),
    lambda dsn, size: psycopg_pool_peer(dsn, size, check=False, autocommit=True),
    lambda dsn, size: psycopg_pool_peer(dsn, size, check=True),
]


async def cycle_times(peer: Peer, n: int, *, query: bool) -> list[float]:
    """Seconds per checkout (+ SELECT 1) + return, one sample per cycle."""
    samples = []
    clock = time.perf_counter
    borrow, select = peer.borrow, peer.query
    for _ in range(n):
        start = clock()
        async with borrow() as conn:
            if query:
                await select(conn)
        samples.append(clock() - start)
    return samples


async def tasks16(peer: Peer, *, tasks: int, seconds: float) -> dict[str, float]:
    counts = [0] * tasks
    errors = [0]
    stop = [False]

    async def work(i: int) -> None:
        while not stop[0]:
            try:
                async with peer.borrow() as conn:
                    await peer.query(conn)
                counts[i] += 1
            except Exception:
                errors[0] += 1

    running = [asyncio.create_task(work(i)) for i in range(tasks)]
    start = time.perf_counter()
    await asyncio.sleep(seconds)  # the measured window: time is the feature here
    stop[0] = True
    await asyncio.gather(*running)
    elapsed = time.perf_counter() - start
    return {
        "ops_per_s": sum(counts) / elapsed,
        "fewest": min(counts),
        "most": max(counts),
        "errors": errors[0],
    }


_TASK_KEYS = ("ops_per_s", "fewest", "most", "errors")


def p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def local_rounds(dsn: str, n_fast: int, seconds: float, rounds: int) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, list[float]]] = {}
    for _ in range(rounds):  # interleaved, so a noisy moment hits every pool alike
        for make in PEERS:
            peer = await make(dsn, 4)
            try:
                await cycle_times(peer, 200, query=False)  # warm up
                samples = await cycle_times(peer, n_fast, query=False)
                many = await tasks16(peer, tasks=16, seconds=seconds)
            finally:
                await peer.close()
            row = found.setdefault(peer.name, {})
            row.setdefault("p50", []).append(p(samples, 0.5) * 1e6)
            row.setdefault("p99", []).append(p(samples, 0.99) * 1e6)
            for key, value in many.items():
                row.setdefault(key, []).append(float(value))
    return {
        name: {
            "checkout_return_p50_us": statistics.median(row["p50"]),
            "checkout_return_p99_us": statistics.median(row["p99"]),
            "tasks16_pool4": {k: statistics.median(row[k]) for k in _TASK_KEYS},
        }
        for name, row in found.items()
    }


async def wan_round_trips(dsn: str, n: int, seconds: float) -> dict[str, tuple[float, dict[str, float]]]:
    """Per pool: round trips of checkout + SELECT 1 + return, and 16 tasks on a pool of 4
    through the link (where round trips are dear, fewer messages are more throughput)."""
    rtt = 2 * ONE_WAY_S
    found = {}
    for make in PEERS:
        peer = await make(dsn, 4)
        try:
            await cycle_times(peer, 3, query=True)  # warm up: statements, caches
            samples = await cycle_times(peer, n, query=True)
            many = await tasks16(peer, tasks=16, seconds=seconds)
        finally:
            await peer.close()
        found[peer.name] = (statistics.median(samples) / rtt, many)
    return found


def run(quick: bool) -> dict[str, Any]:
    n_fast, n_wan, seconds, rounds = (2000, 10, 1.0, 1) if quick else (20000, 30, 3.0, 3)
    results: dict[str, Any] = {"machine": platform.platform()}
    with EmbeddedPostgres() as server:
        local = asyncio.run(local_rounds(server.dsn, n_fast, seconds, rounds))
        with Link(upstream=(server.host, server.port)) as link:
            link.add(Latency(delay_s=ONE_WAY_S), direction="both")
            host, port = link.listen_address
            wan_dsn = f"postgresql://{server.user}@{host}:{port}/{server.database}"
            wan = asyncio.run(wan_round_trips(wan_dsn, n_wan, seconds))
    for name, row in local.items():
        row["select1_wan_round_trips"], row["wan_tasks16_pool4"] = wan[name]
    results["peers"] = local
    base = local["asyncpg.Pool"]
    results["ratios_vs_asyncpg_pool"] = {
        name: {
            "checkout_return_p50": row["checkout_return_p50_us"] / base["checkout_return_p50_us"],
            "tasks16_ops": row["tasks16_pool4"]["ops_per_s"] / base["tasks16_pool4"]["ops_per_s"],
            "wan_tasks16_ops": row["wan_tasks16_pool4"]["ops_per_s"] / base["wan_tasks16_pool4"]["ops_per_s"],
        }
        for name, row in local.items()
    }
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        f"{'pool':<28} {'co+ret p50 µs':>14} {'p99 µs':>9} {'SELECT 1 RTs':>13} "
        f"{'16/4 ops/s':>11} {'fewest':>7} {'most':>7} {'errors':>7} {'WAN 16/4':>9} {'x asyncpg':>9}"
    ]
    wan_base = results["peers"]["asyncpg.Pool"]["wan_tasks16_pool4"]["ops_per_s"]
    for name, row in results["peers"].items():
        many = row["tasks16_pool4"]
        lines.append(
            f"{name:<28} {row['checkout_return_p50_us']:>14.1f} {row['checkout_return_p99_us']:>9.1f} "
            f"{row['select1_wan_round_trips']:>13.2f} {many['ops_per_s']:>11.0f} {many['fewest']:>7.0f} "
            f"{many['most']:>7.0f} {many['errors']:>7.0f} {row['wan_tasks16_pool4']['ops_per_s']:>9.0f} "
            f"{row['wan_tasks16_pool4']['ops_per_s'] / wan_base:>9.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer cycles, one round")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "async.json")
    args = parser.parse_args(argv)
    results = run(args.quick)
    print(table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
