"""``tether.django.postgresql`` against the embedded PostgreSQL.

Django's settings are configured once per process, so each scenario runs in a child
process (this file, run as a script: ``python tests/test_django.py SCENARIO``), with its
own settings, and asserts there; the test checks that the child said ``ok``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve()
SRC = HERE.parent.parent / "src"
PASSWORD = "not-a-real-secret-7f3a"  # trust auth ignores it; it must never be printed


# -- the child: scenarios, each with its settings ------------------------------------------

SCENARIOS: dict[str, tuple[dict[str, Any], Callable[[str], None]]] = {}


def scenario(**settings: Any) -> Callable[[Callable[[str], None]], Callable[[str], None]]:
    def register(fn: Callable[[str], None]) -> Callable[[str], None]:
        SCENARIOS[fn.__name__] = (settings, fn)
        return fn

    return register


def databases(dsn: str, options: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    import tether

    spec = tether.parse(dsn)
    entry = {"ENGINE": "tether.django.postgresql", "HOST": spec.host, "PORT": spec.port,
             "NAME": spec.database, "USER": spec.user, "PASSWORD": PASSWORD,
             "OPTIONS": {"tether": {"max_size": 4}, **(options or {})}, **extra}
    return {"default": entry}


def backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid: int = cursor.fetchone()[0]
    return pid


def kill_backends(dsn: str) -> int:
    """Terminate every other client backend (as the server's idle-timeout killer would)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()").fetchone()
    return int(killed[0]) if killed else 0


def settled_stats() -> Any:
    """The pool's stats once returned connections are back in the idle list (bounded)."""
    import threading

    from tether.django import pool_for_alias

    pool = pool_for_alias()
    assert pool is not None
    stats = pool.stats()
    for _ in range(200):  # resets run in the background: at most ~2 s
        stats = pool.stats()
        if stats.busy == 0 and stats.resetting == 0:
            break
        threading.Event().wait(0.01)
    return stats


@scenario(USE_TZ=True)
def borrow_and_return(dsn: str) -> None:
    from django.db import connection

    from tether.django import pool_for_alias

    first = backend_pid()
    assert type(connection.connection).__module__.startswith("tether"), connection.connection
    connection.close()  # the end of a request with CONN_MAX_AGE=0
    assert connection.connection is None
    opened = settled_stats().hard_connects
    pids = set()
    for _ in range(5):  # the next requests: a server session from the pool, none opened
        pids.add(backend_pid())
        connection.close()
    stats = settled_stats()
    assert first in pids and stats.hard_connects == opened, (first, pids, stats)
    assert (stats.busy, stats.soft_connects, stats.soft_disconnects) == (0, 6, 6), stats
    shown = repr(pool_for_alias()) + repr(stats) + str(connection.settings_dict.get("OPTIONS"))
    assert PASSWORD not in shown


@scenario(USE_TZ=True, TIME_ZONE="Asia/Tokyo")
def time_zone_aware(dsn: str) -> None:
    import datetime

    from django.db import connection

    for _ in range(2):  # a fresh session, then one rebuilt after an idle kill
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('TimeZone'), TIMESTAMPTZ '2024-06-01 12:00:00+02'")
            zone, moment = cursor.fetchone()
        assert zone == "UTC", zone  # Django's connection time zone with USE_TZ (DATABASES TIME_ZONE unset)
        assert moment == datetime.datetime(2024, 6, 1, 10, 0, tzinfo=datetime.timezone.utc), moment
        assert moment.tzinfo is datetime.timezone.utc
        assert kill_backends(dsn) == 1


@scenario(USE_TZ=False, TIME_ZONE="Asia/Tokyo")
def time_zone_naive(dsn: str) -> None:
    import datetime

    from django.db import connection

    for _ in range(2):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('TimeZone'), TIMESTAMPTZ '2024-06-01 12:00:00+02'")
            zone, moment = cursor.fetchone()
        assert zone == "Asia/Tokyo", zone
        assert moment == datetime.datetime(2024, 6, 1, 19, 0), moment  # naive, Tokyo's wall clock
        kill_backends(dsn)


@scenario(USE_TZ=True)
def atomic_and_on_commit(dsn: str) -> None:
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS dj_atomic")
        cursor.execute("CREATE TABLE dj_atomic (n int)")
    ran: list[str] = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO dj_atomic VALUES (1)")
        transaction.on_commit(lambda: ran.append("first"))
        try:
            with transaction.atomic():  # a savepoint, rolled back alone
                with connection.cursor() as cursor:
                    cursor.execute("INSERT INTO dj_atomic VALUES (2)")
                transaction.on_commit(lambda: ran.append("inner"))
                raise ValueError("roll the savepoint back")
        except ValueError:
            pass
        assert ran == []  # nothing runs before the outer COMMIT
    assert ran == ["first"], ran
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO dj_atomic VALUES (3)")
            transaction.on_commit(lambda: ran.append("never"))
            raise ValueError("roll back")
    except ValueError:
        pass
    with connection.cursor() as cursor:
        cursor.execute("SELECT array_agg(n ORDER BY n) FROM dj_atomic")
        assert cursor.fetchone()[0] == [1]
    assert ran == ["first"], ran
    assert connection.get_autocommit()


@scenario(USE_TZ=True, CONN_MAX_AGE=60)
def idle_kill_between_requests(dsn: str) -> None:
    from django.db import close_old_connections

    errors = 0
    pids = set()
    for _ in range(5):  # five requests, the server session killed between each two
        close_old_connections()  # what Django runs at each request's start and end
        try:
            pids.add(backend_pid())
        except Exception:
            errors += 1
        close_old_connections()
        assert kill_backends(dsn) == 1
    assert errors == 0
    assert len(pids) == 5  # a new server session each time, rebuilt under the same Django connection
    from tether.django import pool_for_alias

    pool = pool_for_alias()
    assert pool is not None and pool.stats().recovered >= 4, pool.stats()


@scenario(USE_TZ=True, CONN_MAX_AGE=0)
def idle_kill_with_pooled_connections(dsn: str) -> None:
    from django.db import close_old_connections

    for _ in range(5):
        close_old_connections()
        backend_pid()
        close_old_connections()  # CONN_MAX_AGE=0: back to the pool
        kill_backends(dsn)  # the pooled connection dies while idle in the pool
    stats = settled_stats()
    assert stats.hard_connects == 5, stats  # each dead one replaced at checkout, no error


@scenario(USE_TZ=True)
def cursors_are_djangos(dsn: str) -> None:
    from django.db import connection, transaction
    from django.db.backends.postgresql.base import Cursor, ServerSideCursor

    with connection.cursor() as cursor:
        assert isinstance(cursor.cursor.raw, Cursor), type(cursor.cursor.raw)  # client-side binding
        cursor.callproc("pg_backend_pid")  # Django's cursor class's callproc
        assert isinstance(cursor.fetchone()[0], int)
        assert connection.ops.compose_sql("SELECT %s", ["it's"]) == "SELECT 'it''s'"
    for in_transaction in (False, True):  # withhold outside a transaction, as Django's
        outer = transaction.atomic() if in_transaction else connection.cursor()
        with outer, connection.chunked_cursor() as chunked:
            assert isinstance(chunked.cursor.raw, ServerSideCursor)
            chunked.execute("SELECT n FROM generate_series(1, 5) n WHERE n > %s", [1])
            assert chunked.fetchmany(2) == [(2,), (3,)]
            assert chunked.fetchall() == [(4,), (5,)]
    with connection.cursor() as cursor:
        assert cursor.closed is False
    assert cursor.closed is True
    with connection._nodb_cursor() as cursor:  # on its own connection, closed with it
        cursor.execute("SELECT 1")
    assert cursor.closed is True  # answered after the borrow ended, as psycopg's cursor does
    kill_backends(dsn)
    with connection.cursor() as cursor:  # a rebuilt session has Django's classes too
        assert isinstance(cursor.cursor.raw, Cursor), type(cursor.cursor.raw)
        cursor.execute("SELECT %s::jsonb", ['{"a": 1}'])
        assert cursor.fetchone()[0] == '{"a": 1}'  # jsonb as text: Django's loader


@scenario(USE_TZ=True, CONN_MAX_AGE=60)
def is_usable_after_a_break_in_a_transaction(dsn: str) -> None:
    from django.db import OperationalError, connection, transaction

    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT 1")  # the transaction is open on the server
            kill_backends(dsn)
            try:
                cursor.execute("SELECT 1")  # a break inside a transaction: not rebuilt, it surfaces
            except OperationalError:
                pass
            else:
                raise AssertionError("a session killed under an open transaction was rebuilt")
            # Django's health check: a cursor made on the broken session, closed after its
            # execute failed, must say False (it raised AttributeError from close())
            assert connection.is_usable() is False
    except OperationalError:
        pass  # leaving the block: the rollback on the lost session fails, as with Django's backend
    connection.close()
    assert backend_pid() > 0  # the next borrow runs


@scenario(USE_TZ=True)
def refuses_djangos_pool(dsn: str) -> None:
    from django.core.exceptions import ImproperlyConfigured
    from django.db import connection

    connection.settings_dict["OPTIONS"]["pool"] = True
    try:
        backend_pid()
    except ImproperlyConfigured as exc:
        assert "OPTIONS['tether']" in str(exc)
    else:
        raise AssertionError("OPTIONS['pool'] was accepted")


@scenario(USE_TZ=True, ASSUME_ROLE="dj_reader")
def assume_role_survives_reset(dsn: str) -> None:
    from django.db import connection

    for _ in range(3):  # configure sets it; DISCARD ALL (after a borrow changed the session) resets
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == "dj_reader"
            cursor.execute("SET search_path TO public")  # a change: the session is reset on return
        connection.close()


@scenario(USE_TZ=True, PORT="unused")
def outage_is_djangos_operational_error(dsn: str) -> None:
    from django.db import OperationalError, connection

    from tether import PoolTimeout

    try:
        connection.ensure_connection()
    except OperationalError as exc:  # what Django apps catch: tether's error, wrapped by Django
        assert isinstance(exc.__cause__, PoolTimeout), repr(exc.__cause__)  # waited out, up to timeout
        assert "Connection refused" in str(exc)
    else:
        raise AssertionError("connected to a port where nothing listens")


def unused_port() -> int:
    import socket

    with socket.socket() as probe:  # bound, never listening: connections are refused
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def child(name: str) -> None:
    import django
    from django.conf import settings

    dsn = os.environ["TETHER_DJANGO_DSN"]
    overrides, fn = SCENARIOS[name]
    overrides = dict(overrides)
    options = {"assume_role": overrides.pop("ASSUME_ROLE")} if "ASSUME_ROLE" in overrides else None
    conn_max_age = overrides.pop("CONN_MAX_AGE", 0)
    dbs = databases(dsn, options, CONN_MAX_AGE=conn_max_age)
    if overrides.pop("PORT", None):
        dbs["default"]["PORT"] = unused_port()
        dbs["default"]["OPTIONS"]["tether"].update(timeout=1.0, connect_retry_count=0)
    settings.configure(DATABASES=dbs, INSTALLED_APPS=[], **overrides)
    django.setup()
    fn(dsn)
    from django.db import connections

    connections.close_all()
    print(json.dumps({"ok": name}))


# -- the tests ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def django_dsn(pg_server: Any) -> str:
    pytest.importorskip("django", reason="Django is missing: pip install 'tether[django]'")
    pg_server.start()
    pg_server.execute("DO $$ BEGIN CREATE ROLE dj_reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    pg_server.execute("GRANT dj_reader TO CURRENT_USER")
    dsn: str = pg_server.dsn
    return dsn


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_django_backend(name: str, django_dsn: str) -> None:
    env = {**os.environ, "TETHER_DJANGO_DSN": django_dsn,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, str(HERE), name], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-4000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"ok": name}
    assert PASSWORD not in done.stdout + done.stderr


if __name__ == "__main__":
    child(sys.argv[1])
