"""ORM reads under the demo's faults: errors the application sees, tether against the peers.

An embedded PostgreSQL behind tether's WAN emulator (15 ms each way); for ~20 s per ORM,
every backend is terminated every 3 s and the link resets every connection twice (as
``tether demo`` does). Workers run one ORM read after another, all variants of an ORM at
once, under the same faults:

- SQLAlchemy sync (psycopg): its QueuePool with ``pool_pre_ping=True``, against
  ``tether.sqlalchemy.create_engine``;
- SQLAlchemy asyncio (asyncpg): ``create_async_engine(..., pool_pre_ping=True)`` against
  ``tether.sqlalchemy.create_async_engine``;
- Django: ``django.db.backends.postgresql`` with ``CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=True``
  (its pre-ping) against ``tether.django.postgresql`` with ``CONN_MAX_AGE=0``.

Each tether variant runs twice: as is, and with the read under ``tether.retry`` (an
idempotent read may run again after a fault in flight, as in the demo). No variant of the
peers retries: their users would write that retry themselves.

    python -m bench.orm_faults_bench [--seconds 20] [--only sqlalchemy|asyncio|django]

Results: bench/results/orm_faults.json and a table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "orm_faults.json"
WORKERS = 4  # per variant
THINK_S = 0.01
ROWS = 100

import tether  # noqa: E402

READS = tether.Retry.exponential(attempts=7, delta_s=0.05, idempotent=True)


@dataclass
class Tally:
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)  # the first message of each kind
    sites: Counter[str] = field(default_factory=Counter)  # the driver's error, and the call it ended

    def run(self, read: Callable[[], object]) -> None:
        try:
            read()
        except Exception as exc:
            kind = type(exc).__name__
            self.errors[kind] += 1
            self.sites[site(exc)] += 1
            if kind not in self.samples:
                where = traceback.extract_tb(exc.__traceback__)[-1]
                text = str(exc).splitlines()[0][:300] if str(exc) else ""
                self.samples[kind] = f"{text} (at {Path(where.filename).name}:{where.lineno})"
        else:
            self.ok += 1


# The calls of the ORMs' drivers that an error can end, by their function's name in the traceback.
_CALLS = ("_start_transaction", "rollback", "commit", "_prepare_and_execute", "execute", "begin", "run")


def site(exc: BaseException) -> str:
    """What ended: the innermost driver call the traceback passed through, and the error at
    the bottom of the chain (``AdminShutdown`` after BEGIN's answer is a kill in flight)."""
    names = [frame.name for frame in traceback.extract_tb(exc.__traceback__)]
    call = next((name for name in reversed(names) if name in _CALLS), names[-1] if names else "?")
    root: BaseException = exc
    for _ in range(6):  # bounded: the ORM's error, the driver's, its cause
        inner = getattr(root, "orig", None) or root.__cause__
        if not isinstance(inner, BaseException):
            break
        root = inner
    return f"{type(root).__name__} in {call}"


def classify_wrapped(exc: BaseException) -> tether.Classification:
    """tether's classification of the driver's error that SQLAlchemy or Django wrapped (its
    ``orig``, and what that was raised from: SQLAlchemy's asyncpg adapter wraps asyncpg's)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        inner = getattr(current, "orig", None)
        current = inner if isinstance(inner, BaseException) else current.__cause__
    found = [tether.classify(error) for error in chain]
    return next((c for c in reversed(found) if c.fault is not tether.Fault.FATAL), found[0])


def retried(read: Callable[[], object]) -> Callable[[], object]:
    return tether.retry(READS, classify=classify_wrapped)(read)


# -- the faults -----------------------------------------------------------------------------


def schedule(seconds: float) -> list[tuple[float, str]]:
    events = [(t, "terminate") for t in range(3, int(seconds) - 1, 3)]
    events += [(seconds * 0.3, "reset"), (seconds * 0.8, "reset")]
    return sorted(events)


def chaos(server: Any, link: Any, seconds: float, stop: threading.Event, done: list[str]) -> None:
    began = time.monotonic()
    for at, kind in schedule(seconds):
        if stop.wait(max(0.0, at - (time.monotonic() - began))):
            return
        with contextlib.suppress(Exception):
            server.terminate_backends() if kind == "terminate" else link.reset_all()
            done.append(kind)


def race(reads: dict[str, Callable[[], object]], server: Any, link: Any, seconds: float) -> dict[str, Tally]:
    tallies = {name: Tally() for name in reads}
    stop = threading.Event()
    faults: list[str] = []

    def worker(name: str) -> None:
        while not stop.is_set():
            tallies[name].run(reads[name])
            stop.wait(THINK_S)

    threads = [threading.Thread(target=worker, args=(name,), daemon=True)
               for name in reads for _ in range(WORKERS)]
    threads.append(threading.Thread(target=chaos, args=(server, link, seconds, stop, faults), daemon=True))
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(30)
    print(f"    faults: {dict(Counter(faults))}", flush=True)
    return tallies


# -- the workloads --------------------------------------------------------------------------


def seed(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_items")
        conn.execute("CREATE TABLE bench_items (id int PRIMARY KEY, name text NOT NULL, price int NOT NULL)")
        conn.execute("INSERT INTO bench_items SELECT n, 'item ' || n, n * 3 FROM generate_series(1, %s) n",
                     (ROWS,))


def sqlalchemy_sync(url: str, server: Any, link: Any, seconds: float) -> dict[str, Tally]:
    import sqlalchemy as sa
    from sqlalchemy.orm import DeclarativeBase, Session, mapped_column

    import tether.sqlalchemy

    class Base(DeclarativeBase):
        pass

    class Item(Base):  # no annotations: they would be strings here (__future__), in a function
        __tablename__ = "bench_items"
        id = mapped_column(sa.Integer, primary_key=True)
        name = mapped_column(sa.Text, nullable=False)
        price = mapped_column(sa.Integer, nullable=False)

    url = url.replace("postgresql://", "postgresql+psycopg://")
    engines = {"pre_ping": sa.create_engine(url, pool_pre_ping=True, pool_size=WORKERS),
               "tether": tether.sqlalchemy.create_engine(url, max_size=WORKERS * 2)}

    def read(engine: Any) -> Callable[[], object]:
        def run() -> object:
            with Session(engine) as session:
                return session.scalars(sa.select(Item).where(Item.price > 150).limit(10)).all()

        return run

    reads = {"pre_ping": read(engines["pre_ping"]), "tether": read(engines["tether"]),
             "tether+retry": retried(read(engines["tether"]))}
    try:
        return race(reads, server, link, seconds)
    finally:
        for engine in engines.values():
            engine.dispose()


def sqlalchemy_async(url: str, server: Any, link: Any, seconds: float) -> dict[str, Tally]:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    import tether.sqlalchemy

    url = url.replace("postgresql://", "postgresql+asyncpg://")
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    loop.call_soon_threadsafe(ready.set)
    ready.wait(10)

    async def make() -> dict[str, Any]:
        return {"pre_ping": create_async_engine(url, pool_pre_ping=True, pool_size=WORKERS),
                "tether": tether.sqlalchemy.create_async_engine(url, max_size=WORKERS * 2)}

    engines = asyncio.run_coroutine_threadsafe(make(), loop).result(30)
    query = sa.text("SELECT id, name, price FROM bench_items WHERE price > 150 LIMIT 10")

    def read(engine: Any, *, retry: bool = False) -> Callable[[], object]:
        async def once() -> object:
            async with AsyncSession(engine) as session:
                return (await session.execute(query)).all()

        run = tether.retry(READS, classify=classify_wrapped)(once) if retry else once
        return lambda: asyncio.run_coroutine_threadsafe(run(), loop).result(60)

    reads = {"pre_ping": read(engines["pre_ping"]), "tether": read(engines["tether"]),
             "tether+retry": read(engines["tether"], retry=True)}
    try:
        return race(reads, server, link, seconds)
    finally:
        async def dispose() -> None:
            for engine in engines.values():
                await engine.dispose()

        asyncio.run_coroutine_threadsafe(dispose(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def django_orm(url: str, server: Any, link: Any, seconds: float) -> dict[str, Tally]:
    import django
    from django.conf import settings

    spec = tether.parse(url)
    base = {"HOST": spec.host, "PORT": spec.port, "NAME": spec.database, "USER": spec.user}
    settings.configure(
        DATABASES={
            "default": {**base, "ENGINE": "django.db.backends.postgresql", "CONN_MAX_AGE": 60,
                        "CONN_HEALTH_CHECKS": True},
            "tether": {**base, "ENGINE": "tether.django.postgresql", "CONN_MAX_AGE": 0,
                       "OPTIONS": {"tether": {"max_size": WORKERS * 2}}},
        },
        INSTALLED_APPS=[], USE_TZ=True)
    django.setup()
    from django.db import close_old_connections, models

    class Item(models.Model):
        name = models.TextField()
        price = models.IntegerField()

        class Meta:
            app_label = "bench_orm"
            db_table = "bench_items"

    def read(alias: str) -> Callable[[], object]:
        def run() -> object:
            close_old_connections()  # a request's start: Django's health check, its pool's borrow
            try:
                return list(Item.objects.using(alias).filter(price__gt=150)[:10])
            finally:
                close_old_connections()  # the request's end

        return run

    reads = {"health_checks": read("default"), "tether": read("tether"),
             "tether+retry": retried(read("tether"))}
    return race(reads, server, link, seconds)


WORKLOADS = {"sqlalchemy": sqlalchemy_sync, "asyncio": sqlalchemy_async, "django": django_orm}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--only", choices=sorted(WORKLOADS))
    args = parser.parse_args(argv)
    from tether.testing import EmbeddedPostgres
    from tether.wan import Latency, Link

    for name in ("tether", "sqlalchemy.pool"):  # retries and discards are counted, not printed
        logging.getLogger(name).setLevel(logging.CRITICAL)
    results: dict[str, Any] = {"seconds": args.seconds, "workers_per_variant": WORKERS,
                               "note": "shared 2-core machine; errors counted, latency not measured"}
    with EmbeddedPostgres() as server, Link(upstream=(server.host, server.port)) as link:
        link.add(Latency(delay_s=0.015), direction="both")
        host, port = link.listen_address
        url = f"postgresql://{server.user}@{host}:{port}/{server.database}"
        seed(server.dsn)
        for name, workload in WORKLOADS.items():
            if args.only and name != args.only:
                continue
            print(f"  {name}: {args.seconds:.0f} s", flush=True)
            tallies = workload(url, server, link, args.seconds)
            results[name] = {variant: {"ok": t.ok, "errors": sum(t.errors.values()), "kinds": dict(t.errors),
                                       "sites": dict(t.sites), "samples": t.samples}
                             for variant, t in tallies.items()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{'workload':<11} {'variant':<14} {'reads':>7} {'errors':>7}  the driver's error, in which call")
    for name in WORKLOADS:
        for variant, row in results.get(name, {}).items():
            print(f"{name:<11} {variant:<14} {row['ok']:>7} {row['errors']:>7}  {row['sites']}")
    print(f"\nwritten: {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
