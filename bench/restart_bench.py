"""A live restart, and the retry engine's overhead: ``python -m bench.restart_bench [--quick]``.

1. Live restart: cycles of checkout + ``SELECT 1`` + return, 5 ms apart, against an
   embedded PostgreSQL that restarts (``pg_ctl restart -m fast``: stop, then start;
   ``--down S`` keeps it stopped S seconds longer) after the 50th. Every pool runs with
   its defaults (transaction mode), size 4, one after the other against the same server:
   tether's ``Pool`` and ``AsyncPool`` through a plain ``with pool.connection()`` and
   through ``pool.transaction``, psycopg_pool, SQLAlchemy's QueuePool (with and without
   ``pool_pre_ping``), DBUtils and asyncpg's pool. Reported: the errors the application
   saw, when the first cycle succeeded after the restart began, and how long after the
   server could first be reached, which a thread learns by opening fresh psycopg
   connections every millisecond meanwhile.
2. The retry engine's overhead on a call that succeeds at once (decorator, iterator).

Prints a table and writes ``bench/results/restart.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import threading
import time
import timeit
from collections.abc import Awaitable, Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

import tether
from bench._report import publish
from tether.testing import EmbeddedPostgres

CYCLES, RESTART_AT, GAP_S, SIZE = 200, 50, 0.005, 4


@dataclass
class Target:
    """Where the pools connect: PostgreSQL itself, or a PgBouncer in front of it (--pgbouncer,
    transaction pooling: every pool configured as its documentation says for PgBouncer)."""

    server: EmbeddedPostgres
    dsn: str  # the peers' and the probe's
    tether_dsn: str  # with pool_mode=transaction behind PgBouncer
    bouncer: bool = False

    @property
    def psycopg_kwargs(self) -> dict[str, Any]:
        return {"prepare_threshold": None} if self.bouncer else {}


class Restart:
    """The server's restart, on a thread, and the first moment a fresh connection works."""

    down_s = 0.0  # how long the server stays stopped before it starts again (--down)

    def __init__(self, target: Target):
        self.target = target
        self.server = target.server
        self.began = self.reachable = 0.0
        self._threads: list[threading.Thread] = []

    def _restart(self) -> None:
        self.server.stop()
        time.sleep(self.down_s)
        self.server.start()

    def start(self) -> None:
        self.began = time.perf_counter()
        self._threads = [threading.Thread(target=self._restart), threading.Thread(target=self._probe)]
        for thread in self._threads:
            thread.start()

    def _probe(self) -> None:
        deadline = time.perf_counter() + 60
        time.sleep(0.02)  # past the stop's start: the old server still answers at first
        while time.perf_counter() < deadline:
            try:
                with psycopg.connect(self.target.dsn, connect_timeout=2, autocommit=True,
                                     **self.target.psycopg_kwargs) as conn:
                    conn.execute("SELECT 1")  # behind PgBouncer a login needs no server
            except psycopg.Error:
                time.sleep(0.001)
                continue
            self.reachable = time.perf_counter()
            return

    def join(self) -> None:
        for thread in self._threads:
            thread.join()


def _report(errors: int, first_ok: float | None, restart: Restart) -> dict[str, float]:
    nan = float("nan")
    return {
        "errors": errors,
        "first_success_after_restart_began_ms": (first_ok - restart.began) * 1000 if first_ok else nan,
        "first_success_after_server_reachable_ms": (first_ok - restart.reachable) * 1000 if first_ok else nan,
        "server_down_ms": (restart.reachable - restart.began) * 1000,
    }


def live_restart(server: Target, cycle: Callable[[], object]) -> dict[str, float]:
    restart, errors, first_ok = Restart(server), 0, None
    for i in range(CYCLES):
        if i == RESTART_AT:
            restart.start()
        try:
            cycle()
        except Exception:
            errors += 1
        else:
            if i > RESTART_AT and first_ok is None and restart.reachable:
                first_ok = time.perf_counter()
        time.sleep(GAP_S)
    restart.join()
    return _report(errors, first_ok, restart)


async def live_restart_async(
    server: Target, cycle: Callable[[], Awaitable[object]]
) -> dict[str, float]:
    restart, errors, first_ok = Restart(server), 0, None
    for i in range(CYCLES):
        if i == RESTART_AT:
            restart.start()
        try:
            await cycle()
        except Exception:
            errors += 1
        else:
            if i > RESTART_AT and first_ok is None and restart.reachable:
                first_ok = time.perf_counter()
        await asyncio.sleep(GAP_S)
    await asyncio.to_thread(restart.join)
    return _report(errors, first_ok, restart)


# -- the pools, each with its defaults -----------------------------------------------------------


def _select(conn: Any) -> Any:
    cur = conn.cursor()
    cur.execute("SELECT 1")
    return cur.fetchone()


def sync_rows(server: Target) -> dict[str, dict[str, float]]:
    from dbutils.pooled_db import PooledDB
    from psycopg_pool import ConnectionPool
    from sqlalchemy import create_engine

    rows: dict[str, dict[str, float]] = {}
    with tether.Pool(server.tether_dsn, min_size=SIZE, max_size=SIZE) as pool:
        pool.wait(30)

        def plain() -> None:
            with pool.connection() as conn:
                _select(conn)

        rows["tether.Pool"] = live_restart(server, plain)
        rows["tether.Pool transaction"] = live_restart(server, lambda: pool.transaction(_select))
    with ConnectionPool(server.dsn, min_size=SIZE, max_size=SIZE, open=True,
                        kwargs=server.psycopg_kwargs) as peer:
        peer.wait(30)

        def psycopg_pool_cycle() -> None:
            with peer.connection() as conn:
                _select(conn)

        rows["psycopg_pool"] = live_restart(server, psycopg_pool_cycle)
    for pre_ping in (False, True):
        engine = create_engine(server.dsn.replace("postgresql://", "postgresql+psycopg://", 1),
                               pool_size=SIZE, max_overflow=0, pool_pre_ping=pre_ping,
                               connect_args=server.psycopg_kwargs)

        def sqlalchemy_cycle(engine: Any = engine) -> None:
            conn = engine.raw_connection()
            try:
                _select(conn)
                conn.commit()
            finally:
                conn.close()

        rows["sqlalchemy" + ("+pre_ping" if pre_ping else "")] = live_restart(server, sqlalchemy_cycle)
        engine.dispose()
    dbutils = PooledDB(lambda: psycopg.connect(server.dsn, **server.psycopg_kwargs), mincached=SIZE,
                       maxcached=SIZE, maxconnections=SIZE, blocking=True)

    def dbutils_cycle() -> None:
        conn = dbutils.connection()
        try:
            _select(conn)
            conn.commit()
        finally:
            conn.close()

    rows["dbutils"] = live_restart(server, dbutils_cycle)
    dbutils.close()
    return rows


async def async_rows(server: Target) -> dict[str, dict[str, float]]:
    import asyncpg  # type: ignore[import-untyped]

    rows: dict[str, dict[str, float]] = {}
    for driver in ("psycopg", "asyncpg"):
        dsn = server.tether_dsn.replace("postgresql://", f"postgresql+{driver}://", 1)
        async with tether.AsyncPool(dsn, min_size=SIZE, max_size=SIZE) as pool:
            await pool.wait(30)

            async def plain(pool: tether.AsyncPool = pool, driver: str = driver) -> None:
                async with pool.connection() as conn:
                    if driver == "asyncpg":
                        await conn.fetchval("SELECT 1")
                    else:
                        await (await conn.execute("SELECT 1")).fetchone()

            rows[f"tether.AsyncPool[{driver}]"] = await live_restart_async(server, plain)
            if driver == "psycopg":
                async def unit(conn: Any) -> Any:
                    return await (await conn.execute("SELECT 1")).fetchone()

                rows["tether.AsyncPool transaction"] = await live_restart_async(
                    server, lambda pool=pool: pool.transaction(unit))
    peer = await asyncpg.create_pool(server.dsn, min_size=SIZE, max_size=SIZE,
                                     statement_cache_size=0 if server.bouncer else 100)

    async def asyncpg_cycle() -> None:
        async with peer.acquire() as conn:
            await conn.fetchval("SELECT 1")

    rows["asyncpg.Pool"] = await live_restart_async(server, asyncpg_cycle)
    await peer.close()
    return rows


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


@contextmanager
def _quiet() -> Any:
    """The pools log every failed connect during the restart: not the benchmark's output."""
    import logging

    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def run(rounds: int, *, bouncer: bool = False) -> dict[str, Any]:
    per_round: list[dict[str, dict[str, float]]] = []
    with EmbeddedPostgres() as server, _quiet(), contextlib.ExitStack() as stack:
        target = Target(server, server.dsn, server.dsn)
        if bouncer:
            from tether.testing import EmbeddedPgBouncer

            pgbouncer = stack.enter_context(
                EmbeddedPgBouncer(server.host, server.port, pool_mode="transaction"))
            target = Target(server, pgbouncer.dsn, f"{pgbouncer.dsn}?pool_mode=transaction", bouncer=True)
        for _ in range(rounds):
            rows = sync_rows(target)
            rows.update(asyncio.run(async_rows(target)))
            per_round.append(rows)
    medians = {
        name: {key: statistics.median(r[name][key] for r in per_round) for key in per_round[0][name]}
        for name in per_round[0]
    }
    return {"restart": medians, "rounds": per_round, "overhead": retry_overhead()}


def render(results: dict[str, Any]) -> str:
    lines = [f"{'pool (defaults, size 4)':30} {'app errors':>10} {'1st ok after restart began':>27} "
             f"{'after server reachable':>23}"]
    for name, row in results["restart"].items():
        began = row["first_success_after_restart_began_ms"]
        reachable = row["first_success_after_server_reachable_ms"]
        lines.append(f"{name:30} {row['errors']:10.0f} {began:24.0f} ms {reachable:20.0f} ms")
    downs = [r["server_down_ms"] for r in results["restart"].values()]
    lines.append(f"(of {CYCLES} cycles {GAP_S * 1000:.0f} ms apart; the server was unreachable for "
                 f"{min(downs):.0f}-{max(downs):.0f} ms; medians of {len(results['rounds'])} round(s))")
    o = results["overhead"]
    lines.append(
        f"\nretry engine, a call that succeeds at once: decorator +{o['decorator_ns']:.0f} ns, "
        f"attempts() +{o['attempts_ns']:.0f} ns"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.restart_bench")
    parser.add_argument("--quick", action="store_true", help="one round instead of three")
    parser.add_argument("--down", type=float, default=0.0, help="seconds the server stays stopped")
    parser.add_argument("--pgbouncer", action="store_true",
                        help="every pool through a PgBouncer (transaction mode)")
    parser.add_argument("--out", default="bench/results/restart.json")
    args = parser.parse_args(argv)
    Restart.down_s = args.down
    results = run(1 if args.quick else 3, bouncer=args.pgbouncer)
    return publish(render(results), results, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
