"""Idle connection resiliency against a real PostgreSQL: a session killed while idle comes
back on a new backend with its state, or ``SessionLost`` says why it cannot."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

import tether
from fix_pool import backend_pid
from tether.testing import EmbeddedPostgres


def kill(admin: EmbeddedPostgres, pid: int) -> None:
    """Terminate one backend from another session and wait until its socket says so."""
    with psycopg.connect(admin.dsn, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            row = other.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
            if row is not None and row[0] == 0:
                break
            time.sleep(0.01)
    time.sleep(0.02)  # the FATAL message and the FIN reach our socket


@pytest.fixture
def pool(make_pool: Callable[..., tether.Pool]) -> tether.Pool:
    return make_pool(min_size=1, max_size=2)


def test_settings_come_back_on_a_new_backend(pool: tether.Pool, pg_admin: EmbeddedPostgres) -> None:
    with pool.connection() as conn:
        conn.autocommit = True
        conn.execute("SET search_path TO pg_catalog, public")
        conn.execute("SET TIME ZONE 'Asia/Tokyo'")
        conn.execute("SET application_name = 'resilient'")
        conn.execute("SET statement_timeout = '7s'")
        conn.execute("SET work_mem = '5MB'")
        conn.execute("SET myapp.tenant = '42'")
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        before = backend_pid(conn)
        kill(pg_admin, before)
        row = conn.execute(
            "SELECT current_setting('search_path'), current_setting('TimeZone'), "
            "current_setting('application_name'), current_setting('statement_timeout'), "
            "current_setting('work_mem'), current_setting('myapp.tenant'), "
            "current_setting('default_transaction_isolation'), pg_backend_pid()"
        ).fetchone()
    assert row is not None
    assert row[:7] == ("pg_catalog, public", "Asia/Tokyo", "resilient", "7s", "5MB", "42", "repeatable read")
    assert row[7] != before
    assert pool.stats().recovered == 1
