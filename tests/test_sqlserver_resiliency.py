"""Idle resiliency for SQL Server, through each of the four drivers and the TDS test server:
a session killed while idle comes back on a new spid with its database, SET options and
isolation level; a #temp table or an open transaction raises ``SessionLost``."""

from __future__ import annotations

import pytest

import tether
from fix_pool import wait_for_goodbye
from fix_wait import wait_until
from tdsserver import TdsServer
from test_sqlserver_drivers import VARIANTS, url  # the per-driver URLs, and their skips

ISOLATION = "SELECT transaction_isolation_level FROM sys.dm_exec_sessions WHERE session_id = @@SPID"


def one(conn: tether.Connection, sql: str) -> object:
    cursor = conn.cursor()
    cursor.execute(sql)
    row = cursor.fetchone()
    cursor.close()
    assert row is not None
    return row[0]


def kill_idle(server: TdsServer, spid: int, conn: tether.Connection) -> None:
    server.kill(spid)
    wait_until(lambda: server.session(spid) is None, what=f"session {spid} gone")
    wait_for_goodbye(conn)


@pytest.mark.parametrize("driver", VARIANTS)
def test_database_set_options_and_isolation_come_back(tds_server: TdsServer, driver: str) -> None:
    pool = tether.Pool(url(tds_server, driver), min_size=1, max_size=1, autocommit=True)
    try:
        with pool.connection() as conn:
            cursor = conn.cursor()
            cursor.execute("USE master")
            cursor.execute("SET DATEFIRST 3")
            cursor.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            cursor.close()
            spid = one(conn, "SELECT @@SPID")
            kill_idle(tds_server, int(spid), conn)  # type: ignore[call-overload]
            assert one(conn, "SELECT @@SPID") != spid
            assert one(conn, "SELECT DB_NAME()") == "master"
            assert one(conn, "SELECT @@DATEFIRST") == 3
            assert one(conn, ISOLATION) == 4
        assert pool.stats().recovered == 1
    finally:
        pool.close()


@pytest.mark.parametrize("driver", VARIANTS)
@pytest.mark.parametrize(
    ("statement", "reason"),
    [("CREATE TABLE #work (id INT)", "temporary table #work"), ("BEGIN TRANSACTION", "open transaction")],
)
def test_unrecoverable_state_raises_session_lost(
    tds_server: TdsServer, driver: str, statement: str, reason: str
) -> None:
    pool = tether.Pool(url(tds_server, driver), min_size=1, max_size=1, autocommit=True)
    try:
        with pool.connection() as conn:
            cursor = conn.cursor()
            cursor.execute(statement)
            cursor.execute("SELECT 1")
            cursor.fetchall()
            spid = one(conn, "SELECT @@SPID")
            kill_idle(tds_server, int(spid), conn)  # type: ignore[call-overload]
            with pytest.raises(tether.SessionLost) as caught:
                one(conn, "SELECT 1")
            assert any(reason in r for r in caught.value.reasons), caught.value.reasons
        assert pool.stats().sessions_lost == 1
    finally:
        pool.close()


@pytest.mark.parametrize("driver", VARIANTS)
def test_a_deadlock_victims_unit_of_work_runs_again(tds_server: TdsServer, driver: str) -> None:
    pool = tether.Pool(url(tds_server, driver), min_size=1, max_size=1)
    runs = [0]

    def unit(conn: tether.Connection) -> str:
        runs[0] += 1
        cursor = conn.cursor()
        cursor.execute("INSERT INTO accounts (id, name) VALUES (1, N'a')")
        cursor.close()
        return "done"

    try:
        with pool.connection() as conn:
            cursor = conn.cursor()
            cursor.execute("CREATE TABLE accounts (id INT, name NVARCHAR(50))")
            cursor.close()
        tds_server.fail_batches(1, error=1205, matching="INSERT INTO accounts")  # the deadlock victim
        assert pool.transaction(unit) == "done"
        with pool.connection() as conn:
            assert one(conn, "SELECT COUNT(*) FROM accounts") == 1
        assert runs[0] == 2
    finally:
        pool.close()
