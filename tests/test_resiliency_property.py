"""Property: with kills between statements, a resilient session either behaves exactly as
an unbroken session does, or raises ``SessionLost``; it never diverges silently.

Each example runs the same random statements on a tether connection (whose backend is
terminated at random points, while idle) and on a plain psycopg connection that is never
broken, and compares every outcome: rows, or the SQLSTATE of the error.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tether
from fix_pool import wait_for_goodbye
from fix_wait import wait_until
from tether.testing import EmbeddedPostgres

READ = (
    "SELECT current_setting('search_path'), current_setting('TimeZone'), current_setting('work_mem'), "
    "current_setting('application_name'), current_setting('default_transaction_isolation'), "
    "(SELECT coalesce(string_agg(name, ',' ORDER BY name), '') FROM pg_prepared_statements WHERE from_sql), "
    "(SELECT coalesce(string_agg(c, ',' ORDER BY c), '') FROM pg_listening_channels() c), "
    "to_regclass('pg_temp.scratch') IS NOT NULL, "
    "(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())"
)

STATEMENTS = [
    "SET search_path TO pg_catalog",
    "SET search_path TO public, pg_catalog",
    "RESET search_path",
    "SET TIME ZONE 'Asia/Tokyo'",
    "SET TIME ZONE 'UTC'",
    "SET work_mem = '2MB'",
    "SET LOCAL work_mem = '8MB'",
    "RESET ALL",
    "SET application_name = 'prop'",
    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE",
    "PREPARE p1 AS SELECT 1",
    "DEALLOCATE p1",
    "DEALLOCATE ALL",
    "LISTEN ch1",
    "UNLISTEN ch1",
    "UNLISTEN *",
    "CREATE TEMP TABLE scratch (a int)",
    "DROP TABLE scratch",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "SELECT 1",
    "DISCARD ALL",
    "LISTEN ch2",
    "SAVEPOINT s",
    "ROLLBACK TO SAVEPOINT s",
    "SELECT pg_advisory_lock(pg_backend_pid())",  # a key of its own: the shadow must not block it
    "SELECT pg_advisory_unlock_all()",
    "SELECT set_config('work_mem', '3MB', false)",
    "SELECT set_config('work_mem', '6MB', true)",
    "PREPARE p2 AS SELECT 2",
    READ,
]
step = st.one_of(
    st.sampled_from(STATEMENTS),
    st.sampled_from(STATEMENTS),
    st.just(READ),
    st.just("kill"),
    st.sampled_from(["commit()", "rollback()"]),
)


def outcome(run: Any) -> tuple[str, Any]:
    try:
        cursor = run()
    except tether.SessionLost:
        raise
    except psycopg.Error as exc:
        return ("error", exc.sqlstate)
    if cursor is None or cursor.description is None:
        return ("ok", None)
    return ("rows", cursor.fetchall())


def do(conn: Any, statement: str) -> Any:
    if statement == "commit()":
        return conn.commit()
    if statement == "rollback()":
        return conn.rollback()
    return conn.execute(statement)


def terminate(admin: psycopg.Connection[Any], pid: int, conn: tether.Connection) -> None:
    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
    wait_until(lambda: admin.execute(gone, (pid,)).fetchone() == (0,), what=f"backend {pid} gone")
    wait_for_goodbye(conn)


@pytest.mark.slow
@settings(
    max_examples=150,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),  # CI: the same examples each run; elsewhere, new ones
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(autocommit=st.booleans(), steps=st.lists(step, min_size=1, max_size=14))
def test_a_resilient_session_matches_an_unbroken_one_or_says_it_lost(
    pg_admin: EmbeddedPostgres, autocommit: bool, steps: list[str]
) -> None:
    pool = tether.Pool(pg_admin.dsn, min_size=0, max_size=1, maintenance_interval=60)
    lost = False
    try:
        with psycopg.connect(pg_admin.dsn, autocommit=True) as admin, psycopg.connect(
            pg_admin.dsn, autocommit=autocommit
        ) as shadow, pool.connection() as conn:
            conn.autocommit = autocommit
            for statement in steps:
                if statement == "kill":
                    terminate(admin, conn.raw.info.backend_pid, conn)
                    continue
                try:
                    got = outcome(functools.partial(do, conn, statement))
                except tether.SessionLost as exc:
                    assert exc.reasons, "SessionLost must say why"
                    lost = True
                    break
                expected = outcome(functools.partial(do, shadow, statement))
                assert got == expected, f"diverged at {statement!r}"
            if not lost:
                final = outcome(lambda: conn.execute(READ)) if conn.raw.info.transaction_status != 3 else None
                if final is not None:
                    assert final == outcome(lambda: shadow.execute(READ))
    except tether.SessionLost:
        pass  # on the way out (commit at exit of a session that was lost): said, not silent
    finally:
        pool.close()
