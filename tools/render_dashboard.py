"""Render docs/assets/grafana-tether.json's panels from a real run, to prove its queries work.

A scripted workload runs two pools on an embedded PostgreSQL for about ten seconds:
steady borrows, the pool's backends terminated (``pg_terminate_backend``), a burst that
exhausts a pool, units of work that fail with serialization failures, a connection held
past ``leak_detection_threshold``. ``tether.prometheus``'s collector is scraped twice a
second; every panel's PromQL is evaluated over the scrapes (``promql_lite``: a range is
"since the previous scrape") and drawn with matplotlib. A panel whose queries give no
series fails the run: the dashboard may not show what the pools do not export.

    python tools/render_dashboard.py [--out docs/assets/ops-dashboard.png]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tools"))

import prometheus_client  # noqa: E402
import psycopg  # noqa: E402
from promql_lite import Scrape, evaluate, parse, parse_exposition  # noqa: E402

import tether  # noqa: E402
import tether.prometheus  # noqa: E402
from tether.testing import EmbeddedPostgres  # noqa: E402

DASHBOARD = ROOT / "docs" / "assets" / "grafana-tether.json"
TICK_S = 0.5
TICKS = 22


class Workload:
    """Threads that drive two pools through the phases, by tick; every loop is bounded."""

    def __init__(self, server: EmbeddedPostgres) -> None:
        base = f"postgresql://{server.user}@{server.host}:{server.port}/{server.database}"
        self.admin_dsn = server.dsn
        self.orders = tether.Pool(f"{base}?application_name=orders", name="orders", min_size=2, max_size=4,
                                  timeout=0.05, leak_detection_threshold=1.0, maintenance_interval=0.2)
        self.reports = tether.Pool(f"{base}?application_name=reports", name="reports", min_size=1, max_size=2)
        self.tick = 0
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        self.orders.wait(10.0)
        self.reports.wait(10.0)
        burst = (self._burst,) * 4  # four more borrowers than the pool has connections, for a while
        for work in (self._steady, self._steady, self._session_keeper, *burst, self._units, self._leak):
            thread = threading.Thread(target=self._guard(work), daemon=True)
            thread.start()
            self.threads.append(thread)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10.0)
        self.orders.close()
        self.reports.close()

    def _guard(self, work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            while not self.stop.is_set():
                # a timeout or a lost session is what the dashboard shows; the workload goes on
                with contextlib.suppress(tether.PoolTimeout, tether.SessionLost, psycopg.Error):
                    work()

        return run

    def _steady(self) -> None:
        with self.orders.connection(timeout=1.0) as conn:
            conn.execute("SELECT pg_sleep(0.004)")
        self.stop.wait(0.002)

    def _session_keeper(self) -> None:
        """A session with state, idle between its statements: rebuilt when its backend dies."""
        with self.orders.connection(timeout=1.0) as conn:
            conn.autocommit = True
            conn.execute("SET work_mem = '8MB'")
            for _ in range(5):
                conn.execute("SELECT 1")
                self.stop.wait(0.04)

    def _burst(self) -> None:
        if 9 <= self.tick <= 12:
            with self.orders.connection() as conn:  # the pool's short timeout: some give up
                conn.execute("SELECT pg_sleep(0.1)")
        else:
            self.stop.wait(0.05)

    def _units(self) -> None:
        runs = []

        def unit(conn: Any) -> None:
            runs.append(1)
            if 13 <= self.tick <= 17 and len(runs) == 1:
                conn.execute("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$")
            conn.execute("SELECT pg_sleep(0.01)")

        self.reports.transaction(unit, retry=tether.Retry.fixed(attempts=3, delay_s=0.0))
        self.stop.wait(0.02)

    def _leak(self) -> None:
        if self.tick == 15:
            conn = self.orders.getconn(timeout=1.0)
            self.stop.wait(1.6)  # past leak_detection_threshold (1 s)
            conn.close()
        self.stop.wait(0.05)

    def kill_backends(self) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name = 'orders'")


def run() -> list[Scrape]:
    registry = prometheus_client.CollectorRegistry()
    tether.prometheus.register(registry)
    scrapes: list[Scrape] = []
    with EmbeddedPostgres() as server:
        workload = Workload(server)
        workload.start()
        started = time.monotonic()
        try:
            for tick in range(TICKS):
                workload.tick = tick
                if tick in (5, 6):
                    workload.kill_backends()
                time.sleep(max(started + (tick + 1) * TICK_S - time.monotonic(), 0.0))
                text = prometheus_client.generate_latest(registry).decode()
                scrapes.append(Scrape(time.monotonic() - started, parse_exposition(text)))
        finally:
            workload.close()
    return scrapes


def legend(template: str, labels: frozenset[tuple[str, str]]) -> str:
    text = template
    for key, value in labels:
        text = text.replace("{{" + key + "}}", value)
    return text


def panel_series(panel: dict[str, Any], scrapes: list[Scrape]) -> dict[str, list[tuple[float, float]]]:
    """Each target's series over the scrapes: legend -> [(seconds, value)]."""
    lines: dict[str, list[tuple[float, float]]] = {}
    for target in panel["targets"]:
        query = parse(target["expr"])
        for index, scrape in enumerate(scrapes):
            for labels, value in evaluate(query, scrapes, index).items():
                lines.setdefault(legend(target["legendFormat"], labels), []).append((scrape.at_s, value))
    return lines


def render(scrapes: list[Scrape], out: Path) -> dict[str, int]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = json.loads(DASHBOARD.read_text())["panels"]
    figure, axes = plt.subplots(3, 3, figsize=(15, 10), constrained_layout=True)
    counts: dict[str, int] = {}
    for panel, ax in zip(panels, axes.flat, strict=True):
        lines = panel_series(panel, scrapes)
        counts[panel["title"]] = len(lines)
        for name, points in sorted(lines.items()):
            ax.plot([t for t, _ in points], [v for _, v in points], label=name, linewidth=1.4)
        unit = panel["fieldConfig"]["defaults"]["unit"]
        ax.set_title(panel["title"], fontsize=11)
        ax.set_xlabel("seconds into the run", fontsize=8)
        ax.set_ylabel({"s": "seconds", "ops": "per second", "short": ""}.get(unit, unit), fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if lines:
            ax.legend(fontsize=7, loc="upper left")
    figure.suptitle("tether pools: docs/assets/grafana-tether.json's panels, evaluated over a scripted run "
                    "(backends killed at 3 s, a burst at 5-6 s, retries at 7-9 s, a leak at 8 s)",
                    fontsize=10)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=80)
    return counts


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.ERROR)  # the workload's retries and timeouts are the point
    parser = argparse.ArgumentParser(prog="python tools/render_dashboard.py")
    parser.add_argument("--out", default=str(ROOT / "docs" / "assets" / "ops-dashboard.png"))
    args = parser.parse_args(argv)
    scrapes = run()
    counts = render(scrapes, Path(args.out))
    for title, n in counts.items():
        print(f"{n:3d} series  {title}")
    empty = [title for title, n in counts.items() if n == 0]
    if empty:
        print(f"panels without data: {', '.join(empty)}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
