# Generated from test_twins_async.py by tools/async_to_sync.py: edit that file instead.
"""Behaviours both pools share, written once (``tools/async_to_sync.py`` makes the
threaded twin of this module, ``test_twins.py``).

Each test pins a place where the hand-kept threaded and asyncio code had drifted apart
before both were generated from one source, settled one way; each would have failed on
one of the two front ends then. (The fourth drift, the stuck-reset watchdog, was one of
mechanism only: both front ends now sever from the maintenance, and
``test_faults_async.py`` pins the outcome for each pool and driver.)
"""

from __future__ import annotations

from typing import Any

import pytest

import tether
from fix_twins import run, thread
from test_resiliency import kill
from tether import Pool
from tether.drivers.psycopg import driver
from tether.testing import EmbeddedPostgres


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """The calls the pools make to the psycopg driver's ``reset`` and ``restore`` (which still run)."""
    calls: list[tuple[str, Any]] = []
    for name in ("reset", "restore"):
        real = getattr(driver, name)

        def spying(raw: Any, arg: Any, _real: Any = real, _name: str = name) -> Any:
            calls.append((_name, arg))
            return _real(raw, arg)

        monkeypatch.setattr(driver, name, spying)
    return calls


def test_a_changed_session_is_reset_through_the_driver(pg_dsn: str, spy: list[tuple[str, Any]]) -> None:
    # Drift 1: the threaded pool reset through driver.reset(), the asyncio one ran the
    # dialect's reset SQL itself (a driver with a better reset was skipped).
    def body(pool: Pool) -> None:
        with pool.connection() as conn:
            conn.execute("SET search_path TO pg_catalog")
        with pool.connection() as conn:  # one connection: after the background reset
            cursor = conn.execute("SHOW search_path")
            assert cursor.fetchone() == ('"$user", public',)
        assert spy == [("reset", ("SET of a session setting",))]

    run(pg_dsn, body, min_size=1, max_size=1)


def test_client_settings_come_back_through_the_driver(pg_dsn: str, spy: list[tuple[str, Any]]) -> None:
    # Drift 2: client settings were put back by write_setting in one, driver.restore in the other.
    def body(pool: Pool) -> None:
        with pool.connection() as conn:
            conn.autocommit = True
        with pool.connection() as conn:
            assert conn.raw.autocommit is False
        assert spy == [("restore", {"autocommit": False})]

    run(pg_dsn, body, min_size=1, max_size=1)


def test_a_lost_session_is_closed_at_once_and_discarded_on_return(pg_admin: EmbeddedPostgres) -> None:
    # Drift 3: the threaded proxy closed a lost session's connection at once, the asyncio
    # one left it open until the return.
    def body(pool: Pool) -> None:
        with pool.connection() as conn:
            conn.autocommit = True
            conn.execute("CREATE TEMP TABLE t1 (a int)")
            pid = conn.raw.info.backend_pid
            thread(kill, pg_admin, pid, conn)
            with pytest.raises(tether.SessionLost):
                conn.execute("SELECT 1")
            assert conn.raw.closed  # at once, before the connection goes back
        with pool.connection() as conn:
            assert conn.raw.info.backend_pid != pid
        stats = pool.stats()
        assert stats.sessions_lost == 1 and stats.discarded_dead == 1

    run(pg_admin.dsn, body, min_size=1, max_size=1)
