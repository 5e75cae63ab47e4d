"""``tether demo``: one workload, two pools, the same bad network, side by side.

An embedded PostgreSQL on 127.0.0.1 sits behind a WAN link of 15 ms each way. Two
copies of one workload (threads that run a read query, then think) run at the same
time, one through psycopg_pool and one through tether (its pool, with the read wrapped
in ``@tether.retry`` as idempotent), while every backend is
terminated every few seconds, the link resets every connection now and then, and the
server restarts once. While it runs, a live view (or plain lines) shows both pools and
each fault as it happens; at the end, what the application saw per pool, and a chart of
both over time with the faults marked.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ._demo_record import PoolRecord, Recording
from ._demo_view import View, open_view

if TYPE_CHECKING:
    from .events import Event

WORKERS = 4
THINK_S = 0.25  # an application that does other work between queries
QUERY = "SELECT sum(x) FROM generate_series(1, 100) AS x"


def run(
    seconds: float = 30.0,
    out: TextIO = sys.stdout,
    *,
    pgbouncer: bool = False,
    plain: bool = False,
    chart: Path | None = None,
) -> int:
    """Run the demo for ``seconds`` of workload; return the exit code. ``pgbouncer``: the
    link leads to a PgBouncer in transaction mode in front of PostgreSQL. ``plain``: plain
    lines even on a terminal. ``chart``: where to draw the chart (None: no chart). A run
    shorter than 10 s has one fault of each kind."""
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

    # The pools' own warnings would bury the view: the recording below is what matters.
    for name in ("psycopg.pool", "tether"):
        logging.getLogger(name).setLevel(logging.ERROR)  # retries are counted, not printed
    say("starting an embedded PostgreSQL on 127.0.0.1 ...")
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(EmbeddedPostgres())
        upstream, behind = (server.host, server.port), ""
        # Both pools as they come: transaction mode (each borrow's BEGIN ... COMMIT), the
        # defaults' timeouts; only the size is set, the same for both
        kwargs: dict[str, Any] = {}
        if pgbouncer:
            bouncer = stack.enter_context(
                EmbeddedPgBouncer(server.host, server.port, pool_mode="transaction"))
            upstream, behind = (bouncer.host, bouncer.port), "?pool_mode=transaction"
            kwargs["prepare_threshold"] = None  # psycopg's advice for PgBouncer's transaction pooling
            say(f"PgBouncer {bouncer.port} (transaction pooling) in front of it")
        link = stack.enter_context(Link(upstream=upstream))
        link.add(Latency(delay_s=0.015), direction="both")
        host, port = link.listen_address
        dsn = f"postgresql://{server.user}@{host}:{port}/{server.database}"
        say(f"PostgreSQL {server.port}, WAN link {host}:{port} (30 ms round trip)")
        peer = ConnectionPool(dsn, min_size=WORKERS, max_size=WORKERS, kwargs=kwargs, open=True)
        ours = tether.Pool(
            dsn + behind,
            name="demo",
            min_size=WORKERS,
            max_size=WORKERS,
        )
        try:
            peer.wait(30)
            ours.wait(30)
            # The query only reads: it is idempotent, so tether may run it again after a
            # fault even when it might have reached the server (a write would go through
            # pool.transaction, which never applies one twice).
            reads = tether.Retry.exponential(attempts=7, delta_s=0.05, idempotent=True)
            operations: dict[str, Callable[[], object]] = {
                "psycopg_pool": lambda: _query_on(peer.connection),
                "tether": tether.retry(reads)(lambda: _query_on(ours.connection)),
            }
            recording = Recording(list(operations))
            view = open_view(recording, out, plain=plain, seconds=seconds)
            seen = _EventCount()  # what tether's pool lived through, as its events say
            stop_counting = tether.events.subscribe(seen)
            try:
                _race(operations, recording, seconds, chaos=_Chaos(server, link, recording), view=view)
            finally:
                stop_counting()
            opened = {
                "psycopg_pool": peer.get_stats().get("connections_num", 0),
                "tether": ours.stats().hard_connects,
            }
        finally:
            peer.close()
            ours.close()
    say("")
    say(_report(recording, opened))
    if seen.counts:
        say("tether's events: " + ", ".join(f"{kind} x{n}" for kind, n in sorted(seen.counts.items())))
    if chart is not None:
        say(_draw(recording, chart))
    return 0


class _EventCount:
    """Counts tether's events by kind (callbacks come from any thread)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.counts[event.kind] = self.counts.get(event.kind, 0) + 1


FAULTS = {  # kind: what the demo does
    "terminate": "terminate every backend",
    "reset": "the WAN link resets every connection",
    "restart": "restart the server",
}


def fault_schedule(seconds: float) -> list[tuple[float, str]]:
    """When each fault happens (seconds since the workload began) and its kind."""
    if seconds < 10:  # a short run (the tests): one of each, with time to recover after
        return [(0.2 * seconds, "terminate"), (0.4 * seconds, "reset"), (0.6 * seconds, "restart")]
    events: list[tuple[float, str]] = []
    t = 3.0
    while t < seconds - 1:
        events.append((t, "terminate"))
        t += 4.0
    events.append((seconds * 0.5 + 1.0, "restart"))
    events += [(seconds * 0.3, "reset"), (seconds * 0.8, "reset")]
    return sorted(events)


class _Chaos:
    """The bad network and the unkind server, on a fixed schedule, each fault recorded."""

    def __init__(self, server: Any, link: Any, recording: Recording):
        self.recording = recording
        self.actions: dict[str, Callable[[], object]] = {
            "terminate": server.terminate_backends,
            "reset": link.reset_all,
            "restart": server.restart,
        }

    def run(self, seconds: float, stop: threading.Event) -> None:
        for at, kind in fault_schedule(seconds):
            if stop.wait(max(0.0, at - self.recording.now())):
                return
            with self.recording.fault(kind, FAULTS[kind]), contextlib.suppress(Exception):
                self.actions[kind]()


def _draw(recording: Recording, path: Path) -> str:
    from ._demo_chart import write_chart

    try:
        return f"chart: {write_chart(recording, path)}"
    except ImportError as exc:
        return f"no chart: matplotlib is missing: pip install 'tether[demo]' ({exc})"
    except OSError as exc:
        return f"no chart: cannot write {path}: {exc.strerror or exc}"


def _query(conn: Any) -> object:
    return conn.execute(QUERY).fetchone()


def _query_on(borrow: Callable[[], Any]) -> object:
    with borrow() as conn:
        return _query(conn)


def _race(
    operations: dict[str, Callable[[], object]],
    recording: Recording,
    seconds: float,
    *,
    chaos: _Chaos,
    view: View,
) -> None:
    stop = threading.Event()
    threads = [
        threading.Thread(target=_worker, args=(operations[name], recording.pools[name], recording.now, stop),
                         daemon=True)
        for name in operations
        for _ in range(WORKERS)
    ]
    threads.append(threading.Thread(target=chaos.run, args=(seconds, stop), daemon=True))
    for t in threads:
        t.start()
    try:
        while (left := seconds - recording.now()) > 0:  # bounded: the clock always advances
            stop.wait(min(view.interval_s, left))
            view.update()
    finally:
        recording.finish()
        stop.set()
        for t in threads:
            t.join(15)
        view.close()


def _worker(operation: Callable[[], object], record: PoolRecord, now: Callable[[], float],
            stop: threading.Event) -> None:
    while not stop.is_set():
        start = now()
        try:
            operation()
        except Exception as exc:
            record.failed(at_s=now(), kind=type(exc).__name__)
        else:
            end = now()
            record.ok(at_s=end, latency_s=end - start)
        stop.wait(THINK_S)


def _report(recording: Recording, opened: dict[str, int]) -> str:
    names = list(recording.pools)
    totals = {n: recording.pools[n].snapshot(now_s=math.inf, window_s=None) for n in names}
    rows: list[tuple[str, list[str]]] = [
        ("successful operations", [str(totals[n].ops) for n in names]),
        ("app-visible errors", [str(totals[n].error_count) for n in names]),
        ("p50 latency (ms)", [f"{totals[n].p50_ms:.1f}" for n in names]),
        ("p99 latency (ms)", [f"{totals[n].p99_ms:.1f}" for n in names]),
        ("connections opened", [str(opened[n]) for n in names]),
    ]
    lines = [f"{'':24}" + "".join(f"{n:>16}" for n in names)]
    lines += [f"{label:24}" + "".join(f"{v:>16}" for v in values) for label, values in rows]
    for n in names:
        if totals[n].errors:
            kinds = ", ".join(f"{k} x{v}" for k, v in totals[n].errors.items())
            lines.append(f"{n} errors: {kinds}")
    lines.append(
        "Both run each query as `with pool.connection()`; tether's is also wrapped in "
        "`@tether.retry`\nwith an idempotent policy, as a read may be."
    )
    return "\n".join(lines)
