"""A scripted run for the operations tests: what a pool lives through, and what it implies.

``scripted_run(make_pool, admin)`` runs, on a pool named ``ops`` whose connection string
carries ``SECRET`` as its password (the test server trusts, so it is never checked):

- 5 borrows, given back clean;
- an idle kill: a borrowed session's backend is terminated (``pg_terminate_backend``)
  between two statements, and the next statement restores it on a new connection;
- a retry: a unit of work fails once with a serialization failure (SQLSTATE 40001);
- a pool timeout: both connections held, a third checkout gives up.

``EXPECTED`` is what the run implies for the counters every exporter shows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

import tether
from fix_pool import wait_for_goodbye
from fix_wait import wait_until
from tether.testing import EmbeddedPostgres

SECRET = "Sw0rdfish-7c41e9"  # in the connection string only: no exported byte may carry it
POOL = "ops"
EXPECTED = {
    "recovered": 1,
    "retries_transient": 1,
    "timeouts": 1,
    "sessions_lost": 0,
    "max_size": 2,
    "min_size": 1,
}


def secret_dsn(admin: EmbeddedPostgres) -> str:
    return f"postgresql://{admin.user}:{SECRET}@{admin.host}:{admin.port}/{admin.database}"


def kill_backend(admin: EmbeddedPostgres, pid: int) -> None:
    with psycopg.connect(admin.dsn, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (pid,))
        gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
        wait_until(lambda: other.execute(gone, (pid,)).fetchone() == (0,), what=f"backend {pid} gone")


def scripted_run(
    make_pool: Callable[..., tether.Pool], admin: EmbeddedPostgres, **settings: Any
) -> tether.Pool:
    pool = make_pool(secret_dsn(admin), name=POOL, min_size=1, max_size=2, **settings)
    for _ in range(5):
        with pool.connection() as conn:
            conn.execute("SELECT 1").fetchone()
    # the idle kill: the session broke between two statements, and is restored
    with pool.connection() as conn:
        conn.autocommit = True
        conn.execute("SET application_name = 'ops'")
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        kill_backend(admin, pid)
        wait_for_goodbye(conn)
        assert conn.execute("SELECT current_setting('application_name')").fetchone() == ("ops",)
    # the retry: a serialization failure, once
    runs = []

    def unit(conn: Any) -> int:
        runs.append(1)
        if len(runs) == 1:
            conn.execute("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$")
        return len(runs)

    assert pool.transaction(unit, retry=tether.Retry.fixed(attempts=3, delay_s=0.0)) == 2
    # the pool timeout: both connections held
    first, second = pool.getconn(), pool.getconn()
    with pytest.raises(tether.PoolTimeout):
        pool.getconn(timeout=0.05)
    first.close()
    second.close()
    return pool
