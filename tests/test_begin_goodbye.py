"""The idle kill whose goodbye is still on the wire when the borrow's first statement goes.

A backend terminated while idle sends ``FATAL 57P01`` and exits. Behind a slow link that
message may still be on its way when the pool's checkout check (no round trip) finds the
socket quiet; the borrower's first statement then meets it. In transaction mode the
statement travels behind psycopg's BEGIN, and the server answers in order: a goodbye
that answers the BEGIN proves nothing behind it ran, so tether runs the statement again,
once, on a recovered session. A kill *during* a statement also ends in 57P01, after the
BEGIN's answer: that error reaches the application and nothing is run twice.

The race is made deterministic with the WAN emulator: 100 ms each way, the backend
terminated and gone from ``pg_stat_activity`` (its goodbye sent), then the borrow.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

import tether
from fix_wait import wait_until
from tether.session import _proxy
from tether.testing import EmbeddedPostgres

Admin = psycopg.Connection[tuple[object, ...]]
TABLE = "begin_goodbye_rows"


@pytest.fixture
def table(pg_admin: EmbeddedPostgres) -> Iterator[str]:
    pg_admin.execute(f"DROP TABLE IF EXISTS {TABLE}")
    pg_admin.execute(f"CREATE TABLE {TABLE} (x int)")
    yield TABLE
    pg_admin.execute(f"DROP TABLE IF EXISTS {TABLE}")


@pytest.fixture
def admin(pg_admin: EmbeddedPostgres) -> Iterator[Admin]:
    """A connection of its own, straight to the server: a kill and its check cost a few ms."""
    with psycopg.connect(pg_admin.dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture(params=["far", "near"])
def distance(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Far: BEGIN rides with the statement (one pipeline). Near: BEGIN goes alone first."""
    if request.param == "near":
        monkeypatch.setattr(_proxy, "FAR_S", 3600.0)  # no round trip is that long
    return str(request.param)


@pytest.fixture
def pool(wan_url: str, distance: str) -> Iterator[tether.Pool]:
    with tether.Pool(wan_url, min_size=1, max_size=1, timeout=10.0, maintenance_interval=60) as made:
        made.wait(10.0)
        with made.connection() as conn:  # a first round trip tells far from near
            conn.execute("SELECT 1")
        assert _lease(made).far is (distance == "far")
        yield made


def _lease(pool: tether.Pool) -> tether.session.Lease:
    with pool.connection() as conn:
        lease: tether.session.Lease = tether.session.lease_of(conn)
    return lease


def idle_pid(pool: tether.Pool) -> int:
    """The pooled connection's backend, once it is idle in the pool (its background end done)."""
    wait_until(lambda: pool.stats().idle == 1 and pool.stats().resetting == 0, what="the connection idle")
    with pool.connection() as conn:
        pid: int = conn.raw.info.backend_pid
        conn.rollback()
    wait_until(lambda: pool.stats().idle == 1 and pool.stats().resetting == 0, what="the connection idle")
    return pid


def kill_idle(admin: Admin, pid: int) -> None:
    """Terminate the idle backend and wait until it is gone: its goodbye has been sent.
    (Not ``pg_terminate_backend(pid, timeout)``: it polls every 100 ms, longer than the
    goodbye takes to cross the link.)"""
    assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
    wait_until(lambda: not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchall(),
               interval=0.002, what=f"backend {pid} gone")


def count(admin: Admin) -> int:
    row = admin.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
    assert row is not None
    return int(row[0])


def test_a_read_meeting_the_goodbye_gets_its_row(
    pool: tether.Pool, pg_admin: EmbeddedPostgres, admin: Admin
) -> None:
    before = pool.stats()
    kill_idle(admin, idle_pid(pool))
    with pool.connection() as conn:
        assert conn.execute("SELECT %s::int + 1", (41,)).fetchone() == (42,)
        assert conn.raw.info.backend_pid in pg_admin.backend_pids()  # a new session
    after = pool.stats()
    assert after.recovered == before.recovered + 1  # the goodbye met the statement, not the checkout
    assert after.discarded_dead == before.discarded_dead


def test_a_write_meeting_the_goodbye_runs_once(
    pool: tether.Pool, pg_admin: EmbeddedPostgres, admin: Admin, table: str
) -> None:
    kill_idle(admin, idle_pid(pool))
    with pool.connection() as conn:
        assert conn.execute(f"INSERT INTO {table} VALUES (1) RETURNING x").fetchone() == (1,)
    assert count(admin) == 1
    assert pool.stats().recovered == 1


def test_pool_transaction_meeting_the_goodbye_runs_its_function_once(
    pool: tether.Pool, pg_admin: EmbeddedPostgres, admin: Admin, table: str
) -> None:
    calls: list[int] = []

    def work(conn: tether.Connection) -> int:
        calls.append(1)
        conn.execute(f"INSERT INTO {table} VALUES (%s)", (7,))
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        return int(row[0])

    kill_idle(admin, idle_pid(pool))
    assert pool.transaction(work, retry=False) == 1  # no retry: only the BEGIN's goodbye is resent
    assert calls == [1]
    assert count(admin) == 1
    assert pool.stats().recovered == 1


def test_a_session_setting_comes_back_before_the_resent_statement(pool: tether.Pool, admin: Admin) -> None:
    with pool.connection() as conn:
        conn.execute("SET application_name = 'goodbye test'")
        conn.commit()
        pid = conn.raw.info.backend_pid
        kill_idle(admin, pid)  # the goodbye is on the wire while the borrow goes on
        row = conn.execute("SELECT current_setting('application_name')").fetchone()
        assert row == ("goodbye test",)  # replayed on the new session, then the statement
        assert conn.raw.info.backend_pid != pid


def test_without_idle_resiliency_the_goodbye_reaches_the_application(
    wan_url: str, admin: Admin, distance: str
) -> None:
    with tether.Pool(wan_url, min_size=1, max_size=1, timeout=10.0, maintenance_interval=60,
                     connect_retry_count=0) as pool:
        pool.wait(10.0)
        with pool.connection() as conn:
            conn.execute("SELECT 1")
        kill_idle(admin, idle_pid(pool))
        with pytest.raises(psycopg.OperationalError), pool.connection() as conn:
            conn.execute("SELECT 1")
        assert pool.stats().recovered == 0


def _kill_when_sleeping(pg_admin: EmbeddedPostgres, pid: int) -> threading.Thread:
    # The thread's own admin connections (EmbeddedPostgres.execute): the test's is not shared.
    def kill() -> None:
        wait_until(lambda: pg_admin.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event = 'PgSleep'", (pid,)),
            timeout=10.0, what=f"backend {pid} in pg_sleep")
        pg_admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def test_a_statement_killed_while_running_is_not_run_again(
    pool: tether.Pool, pg_admin: EmbeddedPostgres, admin: Admin, table: str
) -> None:
    # The borrow's first statement (BEGIN rides with it, or goes just before it): killed
    # during its sleep, after its INSERT ran. Its transaction rolls back; no second run.
    pid = idle_pid(pool)
    killer = _kill_when_sleeping(pg_admin, pid)
    sql = f"WITH ins AS (INSERT INTO {table} VALUES (1) RETURNING x) SELECT x, pg_sleep(30) FROM ins"
    with pytest.raises(psycopg.OperationalError), pool.connection() as conn:
        conn.execute(sql)
    killer.join(10.0)
    assert count(admin) == 0
    assert pool.stats().recovered == 0


def test_an_autocommit_write_killed_after_it_committed_is_not_run_again(
    pool: tether.Pool, pg_admin: EmbeddedPostgres, admin: Admin, table: str
) -> None:
    pid = idle_pid(pool)
    killer = _kill_when_sleeping(pg_admin, pid)
    with pytest.raises(psycopg.OperationalError), pool.connection() as conn:
        conn.autocommit = True
        conn.execute(f"INSERT INTO {table} VALUES (1)")
        conn.execute("SELECT pg_sleep(30)")
    killer.join(10.0)
    assert count(admin) == 1  # the INSERT committed once; nothing ran it again
    assert pool.stats().recovered == 0


def test_a_rollback_meeting_the_goodbye_is_done_by_the_sessions_end(pool: tether.Pool, admin: Admin) -> None:
    # SQLAlchemy rolls back as a Session closes: the kill may land between the read and it.
    with pool.connection() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        pid = conn.raw.info.backend_pid
        kill_idle(admin, pid)  # idle in transaction; its goodbye on the wire
        conn.rollback()  # the ROLLBACK meets the goodbye: the transaction ended with the session
        assert conn.raw.info.transaction_status != psycopg.pq.TransactionStatus.INTRANS
        assert conn.execute("SELECT 2").fetchone() == (2,)  # on a recovered session
        assert conn.raw.info.backend_pid != pid
    assert pool.stats().recovered == 1


# -- autocommit (Django's default): an empty statement leads, on far servers ----------------


@pytest.mark.parametrize("cursor_class", [psycopg.Cursor, psycopg.ClientCursor])
def test_an_autocommit_write_meeting_the_goodbye_runs_once(
    pool: tether.Pool, admin: Admin, table: str, distance: str, cursor_class: type
) -> None:
    with pool.connection() as conn:  # autocommit, and a first round trip to tell far from near
        conn.autocommit = True
        conn.raw.cursor_factory = cursor_class  # ClientCursor: Django's (client-side binding)
        conn.execute("SELECT 1")
        pid = conn.raw.info.backend_pid
        kill_idle(admin, pid)
        if distance == "near":  # nothing leads: the goodbye reaches the application
            with pytest.raises(psycopg.OperationalError):
                conn.execute(f"INSERT INTO {table} VALUES (%s)", (1,))
            assert count(admin) == 0
            return
        assert conn.execute(f"INSERT INTO {table} VALUES (%s) RETURNING x", (1,)).fetchone() == (1,)
        assert conn.raw.info.backend_pid != pid
    assert count(admin) == 1  # committed once, by the pipeline's implicit transaction
    assert pool.stats().recovered == 1


def test_an_autocommit_statement_that_no_transaction_may_hold_goes_alone(
    pool: tether.Pool, admin: Admin, table: str
) -> None:
    with pool.connection() as conn:
        conn.autocommit = True
        conn.execute("SELECT 1")
        conn.execute(f"CREATE INDEX CONCURRENTLY {table}_x ON {table} (x)")  # refused in a pipeline
        conn.execute(f"INSERT INTO {table} VALUES (%s)", (2,))
    assert count(admin) == 1
