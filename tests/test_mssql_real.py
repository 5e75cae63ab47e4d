"""Against a real SQL Server or Azure SQL, when ``TETHER_TEST_MSSQL`` holds an ADO
connection string (``Server=tcp:host,1433;Database=...;User ID=...;Password=...;
Encrypt=...``); skipped otherwise. The login needs ``ALTER ANY CONNECTION`` for ``KILL``
(those tests skip, saying so, without it). Each installed driver is tried.

The PostgreSQL suite's scenarios, for SQL Server: an idle session killed from another
connection comes back on a new spid with its database, SET options and isolation level;
a returned connection's temp table, DATEFIRST and isolation level are gone for the next
borrower; a transient error (a lock timeout, 1222) makes a unit of work run again.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import uuid
from collections.abc import Iterator

import pytest

import tether
from fix_pool import wait_for_goodbye
from fix_wait import wait_until

ADO = os.environ.get("TETHER_TEST_MSSQL", "")
DRIVERS = [name for name in ("mssql_python", "pyodbc", "pymssql", "pytds") if importlib.util.find_spec(name)]
ISOLATION = "SELECT transaction_isolation_level FROM sys.dm_exec_sessions WHERE session_id = @@SPID"

pytestmark = pytest.mark.skipif(not ADO, reason="TETHER_TEST_MSSQL is not set (an ADO connection string)")


def one(conn: tether.Connection, sql: str) -> object:
    cursor = conn.cursor()
    cursor.execute(sql)
    row = cursor.fetchone()
    cursor.close()
    assert row is not None
    return row[0]


def run(conn: tether.Connection, *statements: str) -> None:
    cursor = conn.cursor()
    for sql in statements:
        cursor.execute(sql)
    cursor.close()


@pytest.fixture(params=DRIVERS)
def pool(request: pytest.FixtureRequest) -> Iterator[tether.Pool]:
    if request.param == "mssql_python":
        import mssql_python

        mssql_python.pooling(enabled=False)  # tether pools; the driver's own pool stays off
    made = tether.Pool(ADO, driver=request.param, min_size=1, max_size=1, autocommit=True)
    yield made
    made.close()


@pytest.fixture
def admin() -> Iterator[tether.Pool]:
    made = tether.Pool(ADO, min_size=0, max_size=1, autocommit=True)
    yield made
    made.close()


def kill(admin: tether.Pool, spid: object, victim: tether.Connection) -> None:
    """KILL ``spid`` from the admin pool, wait until the server has let the session go and
    until ``victim``'s socket has the FIN."""
    number = int(spid)  # type: ignore[call-overload]
    with admin.connection() as conn:
        try:
            run(conn, f"KILL {number}")
        except Exception as exc:
            pytest.skip(f"KILL needs ALTER ANY CONNECTION: {exc}")
        listed = f"SELECT COUNT(*) FROM sys.dm_exec_sessions WHERE session_id = {number}"
        wait_until(lambda: one(conn, listed) == 0, timeout=10, interval=0.05, what=f"session {number} gone")
    wait_for_goodbye(victim)


def test_a_killed_idle_session_comes_back_with_its_state(pool: tether.Pool, admin: tether.Pool) -> None:
    with pool.connection() as conn:
        database = one(conn, "SELECT DB_NAME()")
        run(conn, f"USE [{database}]", "SET DATEFIRST 3", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        spid = one(conn, "SELECT @@SPID")
        kill(admin, spid, conn)
        assert one(conn, "SELECT @@SPID") != spid
        assert one(conn, "SELECT DB_NAME()") == database
        assert one(conn, "SELECT @@DATEFIRST") == 3
        assert one(conn, ISOLATION) == 4
    assert pool.stats().recovered == 1


def test_the_next_borrower_gets_a_clean_session(pool: tether.Pool) -> None:
    with pool.connection() as conn:
        run(conn, "CREATE TABLE #mine (id INT)", "SET DATEFIRST 3")
        run(conn, "SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED")
    with pool.connection() as conn:
        assert one(conn, "SELECT OBJECT_ID('tempdb..#mine')") is None
        assert one(conn, "SELECT @@DATEFIRST") == 7
        assert one(conn, ISOLATION) == 2


def test_a_lock_timeout_makes_the_unit_of_work_run_again(pool: tether.Pool, admin: tether.Pool) -> None:
    table = f"tether_lock_{uuid.uuid4().hex[:8]}"
    with admin.connection() as conn:
        run(conn, f"CREATE TABLE {table} (id INT PRIMARY KEY, n INT)", f"INSERT INTO {table} VALUES (1, 0)")
    blocker = admin.getconn()
    release = threading.Timer(1.0, blocker.rollback)  # timing window: the lock is held for 1 s
    try:
        blocker.autocommit = False
        run(blocker, f"UPDATE {table} SET n = n + 100 WHERE id = 1")  # holds the row lock
        release.start()
        runs = [0]

        def unit(conn: tether.Connection) -> None:
            runs[0] += 1
            run(conn, "SET LOCK_TIMEOUT 300", f"UPDATE {table} SET n = n + 1 WHERE id = 1")

        pool.transaction(unit, retry=tether.Retry.fixed(attempts=20, delay_s=0.2))
        assert runs[0] >= 2
    finally:
        if release.ident is not None:  # started: wait for its rollback, then close
            release.join(10)
        blocker.close()
        with admin.connection() as conn:
            assert one(conn, f"SELECT n FROM {table} WHERE id = 1") == 1
            run(conn, f"DROP TABLE {table}")
