"""``tether demo``: one workload, two pools, the same bad network, side by side.

An embedded PostgreSQL on 127.0.0.1 sits behind a WAN link of 15 ms each way. Two
copies of one workload (threads that run a read query, then think) run at the same
time, one through psycopg_pool and one through tether (its pool, with the read wrapped
in ``@tether.retry`` as idempotent), while every backend is
terminated every few seconds, the link resets every connection now and then, and the
server restarts once. At the end: what the application saw, per pool.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

WORKERS = 4
THINK_S = 0.25  # an application that does other work between queries
QUERY = "SELECT sum(x) FROM generate_series(1, 100) AS x"


@dataclass
class Tally:
    """What one workload's application saw."""

    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self, seconds: float) -> None:
        with self.lock:
            self.latencies.append(seconds)

    def failed(self, exc: BaseException) -> None:
        with self.lock:
            name = type(exc).__name__
            self.errors[name] = self.errors.get(name, 0) + 1

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def run(seconds: float = 30.0, out: TextIO = sys.stdout, *, pgbouncer: bool = False) -> int:
    """Run the demo for ``seconds`` of workload; return the exit code. ``pgbouncer``: the
    link leads to a PgBouncer in transaction mode in front of PostgreSQL."""
    try:
        from psycopg_pool import ConnectionPool

        from .testing import EmbeddedPgBouncer, EmbeddedPostgres
        from .wan import Latency, Link
    except ImportError as exc:
        print(f"tether demo needs its extra: pip install 'tether[demo]' ({exc})", file=out)
        return 2
    import tether

    if pgbouncer:
        from .testing import pgbouncer_program

        try:
            pgbouncer_program()
        except FileNotFoundError as exc:
            print(f"tether demo --pgbouncer: {exc}", file=out)
            return 2

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    # The pools' own warnings would bury the report: the tally below is what matters.
    for name in ("psycopg.pool", "tether"):
        logging.getLogger(name).setLevel(logging.ERROR)  # retries are counted, not printed
    say("starting an embedded PostgreSQL on 127.0.0.1 ...")
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(EmbeddedPostgres())
        upstream, behind = (server.host, server.port), ""
        kwargs: dict[str, Any] = {"autocommit": True}
        if pgbouncer:
            bouncer = stack.enter_context(
                EmbeddedPgBouncer(server.host, server.port, pool_mode="transaction"))
            upstream, behind = (bouncer.host, bouncer.port), "&pool_mode=transaction"
            kwargs["prepare_threshold"] = None  # psycopg's advice for PgBouncer's transaction pooling
            say(f"PgBouncer {bouncer.port} (transaction pooling) in front of it")
        link = stack.enter_context(Link(upstream=upstream))
        link.add(Latency(delay_s=0.015), direction="both")
        host, port = link.listen_address
        dsn = f"postgresql://{server.user}@{host}:{port}/{server.database}"
        say(f"PostgreSQL {server.port}, WAN link {host}:{port} (30 ms round trip)")
        peer = ConnectionPool(dsn, min_size=WORKERS, max_size=WORKERS, kwargs=kwargs, open=True)
        ours = tether.Pool(
            dsn + "?connect_retry_count=5&connect_retry_interval=1" + behind,
            name="demo",
            min_size=WORKERS,
            max_size=WORKERS,
            autocommit=True,
        )
        try:
            peer.wait(30)
            ours.wait(30)
            tallies = {"psycopg_pool": Tally(), "tether": Tally()}
            # The query only reads: it is idempotent, so tether may run it again after a
            # fault even when it might have reached the server (a write would go through
            # pool.transaction, which never applies one twice).
            reads = tether.Retry.exponential(attempts=7, delta_s=0.05, idempotent=True)
            operations: dict[str, Callable[[], object]] = {
                "psycopg_pool": lambda: _query_on(peer.connection),
                "tether": tether.retry(reads)(lambda: _query_on(ours.connection)),
            }
            _race(operations, tallies, seconds, chaos=_Chaos(server, link, say))
            opened = {
                "psycopg_pool": peer.get_stats().get("connections_num", 0),
                "tether": ours.stats().hard_connects,
            }
        finally:
            peer.close()
            ours.close()
    say("")
    say(_report(tallies, opened))
    return 0


class _Chaos:
    """The bad network and the unkind server, on a fixed schedule."""

    def __init__(self, server: Any, link: Any, say: Callable[[str], None]):
        self.server, self.link, self.say = server, link, say

    def schedule(self, seconds: float) -> list[tuple[float, str, Callable[[], object]]]:
        events: list[tuple[float, str, Callable[[], object]]] = []
        t = 3.0
        while t < seconds - 1:
            events.append((t, "terminate every backend", self.server.terminate_backends))
            t += 4.0
        events.append((seconds * 0.5 + 1.0, "restart the server", self.server.restart))
        for t in (seconds * 0.3, seconds * 0.8):
            events.append((t, "the WAN link resets every connection", self.link.reset_all))
        return sorted(events, key=lambda e: e[0])

    def run(self, seconds: float, stop: threading.Event) -> None:
        start = time.monotonic()
        for at, what, action in self.schedule(seconds):
            if stop.wait(max(0.0, start + at - time.monotonic())):
                return
            self.say(f"  t={at:4.1f} s  {what}")
            with contextlib.suppress(Exception):
                action()


def _query(conn: Any) -> object:
    return conn.execute(QUERY).fetchone()


def _query_on(borrow: Callable[[], Any]) -> object:
    with borrow() as conn:
        return _query(conn)


def _race(
    operations: dict[str, Callable[[], object]],
    tallies: dict[str, Tally],
    seconds: float,
    *,
    chaos: _Chaos,
) -> None:
    stop = threading.Event()
    threads = [
        threading.Thread(target=_worker, args=(operations[name], tallies[name], stop), daemon=True)
        for name in operations
        for _ in range(WORKERS)
    ]
    threads.append(threading.Thread(target=chaos.run, args=(seconds, stop), daemon=True))
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join(15)


def _worker(operation: Callable[[], object], tally: Tally, stop: threading.Event) -> None:
    while not stop.is_set():
        start = time.monotonic()
        try:
            operation()
        except Exception as exc:
            tally.failed(exc)
        else:
            tally.ok(time.monotonic() - start)
        stop.wait(THINK_S)


def _report(tallies: dict[str, Tally], opened: dict[str, int]) -> str:
    names = list(tallies)
    rows: list[tuple[str, list[str]]] = [
        ("successful operations", [str(len(tallies[n].latencies)) for n in names]),
        ("app-visible errors", [str(sum(tallies[n].errors.values())) for n in names]),
        ("p50 latency (ms)", [f"{tallies[n].percentile(0.5):.1f}" for n in names]),
        ("p99 latency (ms)", [f"{tallies[n].percentile(0.99):.1f}" for n in names]),
        ("connections opened", [str(opened[n]) for n in names]),
    ]
    lines = [f"{'':24}" + "".join(f"{n:>16}" for n in names)]
    lines += [f"{label:24}" + "".join(f"{v:>16}" for v in values) for label, values in rows]
    for n in names:
        if tallies[n].errors:
            kinds = ", ".join(f"{k} x{v}" for k, v in sorted(tallies[n].errors.items()))
            lines.append(f"{n} errors: {kinds}")
    lines.append(
        "Both run each query as `with pool.connection()`; tether's is also wrapped in "
        "`@tether.retry`\nwith an idempotent policy, as a read may be."
    )
    return "\n".join(lines)
