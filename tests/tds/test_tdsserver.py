"""The TDS test server as the real drivers see it: logins, batches, transactions, resets and
every fault of the control API, through python-tds, pymssql, pyodbc (FreeTDS and Microsoft's
ODBC 18) and mssql-python. The exception classes asserted here are what each driver raised
against this server; they match SQLSERVER-FACTS.md where that records them.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fix_pool import local_socket_fd, wait_for_goodbye
from fix_tds import DRIVERS
from fix_wait import wait_until
from tdsserver import TdsServer
from tdsserver._engine import run_batch
from tdsserver._session import Catalog, Reply, Session

Connect = Callable[..., Any]
DRIVER_NAMES = list(DRIVERS)
PARAM = {"pytds": "%s", "pymssql": "%s"}  # the others use qmark

# How a dead connection surfaces: (class name, text in repr) for the first query after the
# server closed an idle session, and for a query the server read and never answered.
BROKEN_IDLE = {
    "pytds": ("ClosedConnectionError", "Server closed connection"),
    "pymssql": ("OperationalError", "20047"),
    "pyodbc-freetds": ("Error", "HY000"),
    "pyodbc-msodbc": ("OperationalError", "08S01"),
    "mssql-python": ("OperationalError", "Communication link failure"),
}
BROKEN_BUSY = {
    "pytds": ("ClosedConnectionError", "Server closed connection"),
    "pymssql": ("OperationalError", "20017"),
    "pyodbc-freetds": ("Error", "01000"),
    "pyodbc-msodbc": ("OperationalError", "08S01"),
    "mssql-python": ("OperationalError", "Communication link failure"),
}
SESSION_ISOLATION = ("SELECT transaction_isolation_level FROM sys.dm_exec_sessions "
                     "WHERE session_id = @@SPID")


def query(conn: Any, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    cur = conn.cursor()
    try:
        if params:
            cur.execute(sql, params)
        else:
            cur.execute(sql)
        return [tuple(row) for row in cur.fetchall()] if cur.description else []
    finally:
        cur.close()


def scalar(conn: Any, sql: str, *params: Any) -> Any:
    return query(conn, sql, *params)[0][0]


def carries(exc: BaseException | None, number: int) -> bool:
    """Does the driver's exception (or its cause) carry this SQL Server error number?"""
    while exc is not None:
        if number in (getattr(exc, "number", None), getattr(exc, "msg_no", None)) or str(number) in repr(exc):
            return True
        exc = exc.__cause__
    return False


# mssql-python's exceptions keep the message and a SQLSTATE-derived class, never the number.
MESSAGE_OF = {40613: "is not currently available", 18456: "Login failed for user", 40501: "currently busy",
              1205: "chosen as the deadlock victim"}


def assert_error(exc: BaseException, number: int, driver: str) -> None:
    if driver == "mssql-python":
        assert MESSAGE_OF[number] in str(exc), repr(exc)
    else:
        assert carries(exc, number), repr(exc)


def assert_broken(exc: BaseException, expected: tuple[str, str]) -> None:
    name, text = expected
    assert type(exc).__name__ == name, repr(exc)
    assert text in repr(exc)


@pytest.fixture(params=DRIVER_NAMES)
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def admin(tds_connect: Connect) -> Any:
    """A second session (python-tds, autocommit) for looking at or acting on the first."""
    return tds_connect("pytds")


@pytest.fixture
def shared_table(admin: Any) -> Iterator[str]:
    query(admin, "DROP TABLE IF EXISTS items")
    query(admin, "CREATE TABLE items (id INT, name NVARCHAR(50))")
    yield "items"
    query(admin, "DROP TABLE IF EXISTS items")


# --- every driver: login, batches, parameters ------------------------------------------------


def test_login_and_select(tds_server: TdsServer, tds_connect: Connect, driver: str) -> None:
    conn = tds_connect(driver)
    assert query(conn, "SELECT 1") == [(1,)]
    spid = scalar(conn, "SELECT @@SPID")
    info = tds_server.session(spid)
    assert info is not None and info.user == "sa" and info.database == "shop"
    assert query(conn, "SELECT DB_NAME() AS db, N'héllo' AS s, NULL AS n, 2147483648 AS big") == [
        ("shop", "héllo", None, 2147483648)]
    assert tds_server.stats.logins == 1


def test_parameters(tds_connect: Connect, driver: str) -> None:
    conn = tds_connect(driver)
    mark = PARAM.get(driver, "?")
    assert query(conn, f"SELECT {mark} + 1, {mark}", 41, "text") == [(42, "text")]


def test_client_port_matches_the_session(tds_server: TdsServer, tds_connect: Connect, driver: str) -> None:
    conn = tds_connect(driver)
    port = scalar(conn, "SELECT client_tcp_port FROM sys.dm_exec_connections WHERE session_id = @@SPID")
    info = tds_server.session(scalar(conn, "SELECT @@SPID"))
    assert info is not None and info.client_port == port


def test_transactions_with_autocommit_off(tds_connect: Connect, driver: str, admin: Any,
                                          shared_table: str) -> None:
    conn = tds_connect(driver, autocommit=False)
    query(conn, "INSERT INTO items (id, name) VALUES (1, N'a'), (2, N'b')")
    assert scalar(conn, "SELECT @@TRANCOUNT") == 1
    conn.rollback()
    assert scalar(admin, "SELECT COUNT(*) FROM items") == 0
    query(conn, "INSERT INTO items (id, name) VALUES (3, N'c')")
    conn.commit()
    assert query(admin, "SELECT * FROM items") == [(3, "c")]


def test_isolation_level_persists_across_commit(tds_connect: Connect, driver: str) -> None:
    conn = tds_connect(driver, autocommit=False)
    query(conn, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
    conn.commit()
    conn.rollback()
    assert scalar(conn, SESSION_ISOLATION) == 4


def test_every_request_counts_its_packets(tds_server: TdsServer, tds_connect: Connect, driver: str) -> None:
    conn = tds_connect(driver)
    spid = scalar(conn, "SELECT @@SPID")
    before = tds_server.session(spid)
    assert query(conn, "SELECT 1") == [(1,)]
    after = tds_server.session(spid)
    assert before is not None and after is not None
    assert (after.packets_in - before.packets_in, after.packets_out - before.packets_out) == (1, 1)
    assert after.requests - before.requests == 1


def test_executemany(tds_connect: Connect, driver: str, admin: Any, shared_table: str) -> None:
    """python-tds: one sp_executesql per row; FreeTDS/ODBC 18: sp_prepexec; mssql-python:
    sp_prepare, then sp_execute calls batched in one RPC message; pymssql: plain batches."""
    conn = tds_connect(driver)
    mark = PARAM.get(driver, "?")
    cur = conn.cursor()
    cur.executemany(f"INSERT INTO items (id, name) VALUES ({mark}, {mark})", [(1, "a"), (2, "b"), (3, None)])
    cur.close()
    assert query(admin, "SELECT id, name FROM items ORDER BY id") == [(1, "a"), (2, "b"), (3, None)]


def test_requests_carry_the_transaction_descriptor(tds_server: TdsServer, tds_connect: Connect,
                                                   driver: str) -> None:
    """Every driver sends back, in ALL_HEADERS, the descriptor the server's ENVCHANGE gave it."""
    conn = tds_connect(driver, autocommit=False)
    spid = scalar(conn, "SELECT @@SPID")
    info = tds_server.session(spid)
    assert info is not None and info.tran_count == 1 and info.transaction_descriptor != 0
    last = [r for r in tds_server.requests(spid) if r.kind == "batch"][-1]
    assert last.descriptor == info.transaction_descriptor


def test_several_result_sets_and_row_counts(tds_connect: Connect, driver: str, shared_table: str) -> None:
    """DONE tokens carry MORE between statements and COUNT with the row count (not under NOCOUNT)."""
    conn = tds_connect(driver)
    cur = conn.cursor()
    cur.execute("SELECT 1 AS a; SELECT N'x' AS b, 2 AS c")
    assert [tuple(r) for r in cur.fetchall()] == [(1,)]
    assert cur.nextset()
    assert [tuple(r) for r in cur.fetchall()] == [("x", 2)]
    assert not cur.nextset()
    cur.execute("INSERT INTO items (id, name) VALUES (1, N'a'), (2, N'b')")
    assert cur.rowcount == 2
    cur.execute("SET NOCOUNT ON; UPDATE items SET name = N'z'")
    assert cur.rowcount == (0 if driver == "pyodbc-freetds" else -1)  # FreeTDS says 0 without a count
    cur.close()


def test_long_values_and_many_packets(tds_server: TdsServer, tds_connect: Connect, driver: str) -> None:
    """nvarchar(max) both ways (PLP), a request and an answer of many packets each."""
    conn = tds_connect(driver)
    mark = PARAM.get(driver, "?")
    long = "é" * 6000 + driver
    query(conn, "CREATE TABLE #big (id INT, s NVARCHAR(MAX))")
    query(conn, f"INSERT INTO #big (id, s) VALUES ({mark}, {mark})", 0, long)
    query(conn, "INSERT INTO #big (id, s) VALUES " + ", ".join(f"({i}, N'{i:050}')" for i in range(1, 301)))
    spid = scalar(conn, "SELECT @@SPID")
    before = tds_server.session(spid)
    rows = query(conn, "SELECT id, s FROM #big ORDER BY id")
    after = tds_server.session(spid)
    assert len(rows) == 301 and rows[0] == (0, long) and rows[300] == (300, f"{300:050}")
    assert before is not None and after is not None and after.packets_out - before.packets_out > 5


# --- every driver: faults ----------------------------------------------------------------------


@pytest.mark.parametrize("driver", [d for d in DRIVER_NAMES if d != "pytds"])
def test_reject_logins(tds_server: TdsServer, tds_connect: Connect, driver: str) -> None:
    tds_server.reject_logins(1, error=40613)
    with pytest.raises(Exception) as info:
        tds_connect(driver)
    assert_error(info.value, 40613, driver)
    assert query(tds_connect(driver), "SELECT 1") == [(1,)]
    assert (tds_server.stats.rejected_logins, tds_server.stats.logins) == (1, 1)


def test_pytds_retries_rejected_logins_by_itself(tds_server: TdsServer, tds_connect: Connect) -> None:
    """python-tds retries any login error but 18456 & co. until login_timeout (even with
    disable_connect_retry, which only makes the first attempt take all of it), then raises a
    bare TimeoutError whose __cause__ is the server's error."""
    tds_server.reject_logins(1, error=40613)
    assert query(tds_connect("pytds"), "SELECT 1") == [(1,)]
    assert (tds_server.stats.rejected_logins, tds_server.stats.logins) == (1, 1)
    tds_server.reject_logins(1, error=40613)
    with pytest.raises(TimeoutError) as info:
        tds_connect("pytds", disable_connect_retry=True, login_timeout=0.3)
    assert carries(info.value, 40613)


def test_wrong_password(tds_server: TdsServer, tds_connect: Connect, driver: str) -> None:
    with pytest.raises(Exception) as info:
        tds_connect(driver, password="wrong")
    if driver == "pymssql":
        # pymssql reports DB-Lib's 20018 "Check messages from the SQL Server" with the severity
        # (14) but neither the text nor the number: its first arg is the last message number
        # FreeTDS saw in this process, which may be an earlier connection's.
        assert "severity 14" in repr(info.value)
    else:
        assert "Login failed for user 'sa'" in repr(info.value)
        assert_error(info.value, 18456, driver)


def test_fail_batches(tds_server: TdsServer, tds_connect: Connect, driver: str) -> None:
    conn = tds_connect(driver)
    tds_server.fail_batches(1, error=40501)
    with pytest.raises(Exception) as info:
        query(conn, "SELECT 1")
    assert_error(info.value, 40501, driver)
    assert query(conn, "SELECT 2") == [(2,)]
    assert tds_server.stats.failed_requests == 1


def test_fail_batches_and_close(tds_server: TdsServer, tds_connect: Connect, driver: str) -> None:
    conn = tds_connect(driver)
    tds_server.fail_batches(1, error=40501, close=True)
    with pytest.raises(Exception) as info:
        query(conn, "SELECT 1")
    assert_error(info.value, 40501, driver)
    with pytest.raises(Exception):  # noqa: B017 -- each driver's own "connection is gone" error
        query(conn, "SELECT 1")
    wait_until(lambda: not tds_server.sessions(), what="the server to end the session")


def test_deadlock_rolls_the_transaction_back(tds_server: TdsServer, tds_connect: Connect, driver: str,
                                             admin: Any, shared_table: str) -> None:
    conn = tds_connect(driver, autocommit=False)
    query(conn, "INSERT INTO items (id, name) VALUES (1, N'a')")
    tds_server.fail_batches(1, error=1205)
    with pytest.raises(Exception) as info:
        query(conn, "SELECT 1")
    assert_error(info.value, 1205, driver)
    assert scalar(admin, "SELECT COUNT(*) FROM items") == 0


def test_kill_idle_session(tds_server: TdsServer, tds_connect: Connect, driver: str) -> None:
    conn = tds_connect(driver)
    spid = scalar(conn, "SELECT @@SPID")
    client = local_socket_fd(tds_server.session(spid).client_port)
    assert tds_server.kill(spid)
    wait_until(lambda: tds_server.session(spid) is None, what=f"session {spid} gone")
    wait_for_goodbye(client)
    # Had the query raced the FIN, FreeTDS would report the busy case (01000, 20017) instead.
    with pytest.raises(Exception) as info:
        query(conn, "SELECT 1")
    assert_broken(info.value, BROKEN_IDLE[driver])
    assert tds_server.stats.kills == 1


def test_close_idle_spares_busy_sessions(tds_server: TdsServer, tds_connect: Connect, driver: str) -> None:
    idle, busy = tds_connect(driver), tds_connect("pytds")
    idle_spid, busy_spid = scalar(idle, "SELECT @@SPID"), scalar(busy, "SELECT @@SPID")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            query(busy, "WAITFOR DELAY '00:00:10'")
        except Exception as exc:  # the kill that ends the test
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    try:
        wait_until(lambda: any(s.busy for s in tds_server.sessions()), what="the WAITFOR running")
        assert tds_server.close_idle() == [idle_spid]
        wait_until(lambda: tds_server.session(idle_spid) is None, what=f"session {idle_spid} gone")
        spared = tds_server.session(busy_spid)
        assert spared is not None and spared.busy and not spared.closing
    finally:
        tds_server.kill(busy_spid)  # ends the WAITFOR at once
        worker.join(5)
    assert len(errors) == 1
    with pytest.raises(Exception) as info:
        query(idle, "SELECT 1")
    assert_broken(info.value, BROKEN_IDLE[driver])


def test_close_busy(tds_server: TdsServer, tds_connect: Connect, driver: str) -> None:
    conn = tds_connect(driver)
    tds_server.close_busy(1)
    with pytest.raises(Exception) as info:
        query(conn, "SELECT 1")
    assert_broken(info.value, BROKEN_BUSY[driver])
    assert tds_server.stats.busy_closes == 1
    assert query(tds_connect(driver), "SELECT 1") == [(1,)]  # only the next request


def test_kill_from_another_session_interrupts_waitfor(tds_server: TdsServer, tds_connect: Connect,
                                                      driver: str, admin: Any) -> None:
    conn = tds_connect(driver)
    spid = scalar(conn, "SELECT @@SPID")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            query(conn, "WAITFOR DELAY '00:00:10'")
        except Exception as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    try:
        wait_until(lambda: bool((info := tds_server.session(spid)) and info.busy), what="the WAITFOR running")
        query(admin, f"KILL {spid}")
    finally:
        worker.join(5)
    assert not worker.is_alive() and len(errors) == 1
    assert_broken(errors[0], BROKEN_BUSY[driver])


def _set_query_timeout(driver: str, conn: Any) -> dict[str, Any]:
    if driver in ("pyodbc-freetds", "pyodbc-msodbc", "mssql-python"):
        conn.timeout = 1
    return {}


def test_delay_and_query_timeout_send_an_attention(tds_server: TdsServer, tds_connect: Connect,
                                                   driver: str) -> None:
    timeouts: dict[str, dict[str, Any]] = {"pytds": {"timeout": 0.5}, "pymssql": {"timeout": 1}}
    options = timeouts.get(driver, {})
    conn = tds_connect(driver, **options)
    _set_query_timeout(driver, conn)
    tds_server.delay(5)
    started = time.monotonic()
    with pytest.raises(Exception) as info:
        query(conn, "SELECT 1")
    assert time.monotonic() - started < 3
    tds_server.delay(0)
    if driver == "pymssql":
        # pymssql gives up on the connection at a timeout instead of cancelling the request.
        assert carries(info.value, 20003), repr(info.value)
        assert tds_server.stats.attentions == 0
        # DB-Library's query timeout is process-wide: put its default (none) back, or every
        # later pymssql connection in this process times out after 1 s on its own.
        tds_connect(driver)._conn.query_timeout = 0
        return
    assert "imeout" in repr(info.value) or isinstance(info.value, TimeoutError)
    assert query(conn, "SELECT 2") == [(2,)]  # the attention was acknowledged: the session goes on
    assert tds_server.stats.attentions >= 1


def test_route_to(tds_server: TdsServer, tds_connect: Connect, driver: str) -> None:
    with TdsServer(users={"sa": "Secret-pw1"}) as target:
        tds_server.route_to(target.host, target.port, n=1)
        conn = tds_connect(driver)
        spid = scalar(conn, "SELECT @@SPID")
        assert tds_server.stats.routed == 1 and tds_server.stats.logins == 0
        assert target.stats.logins == 1 and target.session(spid) is not None
        conn.close()


# --- session resets ------------------------------------------------------------------------------

SET_UP_STATE = ("CREATE TABLE #tmp (id INT); SET DATEFIRST 3; "
                "SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED; "
                "EXEC sp_set_session_context @key = N'k', @value = 5")
READ_STATE = ("SELECT @@SPID, @@DATEFIRST, OBJECT_ID('tempdb..#tmp'), SESSION_CONTEXT(N'k'), "
              "transaction_isolation_level FROM sys.dm_exec_sessions WHERE session_id = @@SPID")


def test_reset_flag_leaves_the_isolation_level(tds_server: TdsServer, tds_connect: Connect) -> None:
    """Microsoft's driver resets lazily (status bit 0x08 on the next request, no extra round trip)
    and SQL Server's reset keeps the isolation level: READ UNCOMMITTED leaks to the next user."""
    conn = tds_connect("pyodbc-msodbc")
    query(conn, SET_UP_STATE)
    spid = scalar(conn, "SELECT @@SPID")
    before = tds_server.session(spid)
    conn.set_attr(1246, 1)  # SQL_COPT_SS_RESET_CONNECTION
    assert query(conn, READ_STATE) == [(spid, 7, None, None, 1)]
    after = tds_server.session(spid)
    assert before is not None and after is not None
    assert (after.packets_in - before.packets_in, after.packets_out - before.packets_out) == (1, 1)
    assert after.resets == 1 and tds_server.stats.reset_flags == 1
    assert [r.status & 0x08 for r in tds_server.requests(spid) if r.kind == "batch"][-1] == 0x08


@pytest.fixture
def mssql_python_pooling() -> Iterator[None]:
    """mssql-python's own pool on for one test, as the driver has it by default, whatever
    an earlier test left (tether turns it off: it pools the connections itself)."""
    from mssql_python.pooling import PoolingManager

    was_off = PoolingManager.is_initialized() and not PoolingManager.is_enabled()
    PoolingManager.enable()
    yield
    if was_off:
        PoolingManager.disable()


@pytest.mark.usefixtures("mssql_python_pooling")
def test_mssql_python_pool_resets_and_sets_read_committed(tds_server: TdsServer,
                                                          tds_connect: Connect) -> None:
    first = tds_connect("mssql-python")
    query(first, SET_UP_STATE)
    spid = scalar(first, "SELECT @@SPID")
    first.close()  # back to mssql-python's pool
    again = tds_connect("mssql-python")
    # The same session, reset; isolation READ COMMITTED only because the driver sends it itself.
    assert query(again, READ_STATE) == [(spid, 7, None, None, 2)]
    assert tds_server.stats.reset_flags == 1
    assert any("READ COMMITTED" in r.text and r.status & 0x08 for r in tds_server.requests(spid))


def test_pytds_pool_resets_with_sp_reset_connection(tds_server: TdsServer, tds_connect: Connect) -> None:
    first = tds_connect("pytds", pooling=True)
    query(first, SET_UP_STATE)
    spid = scalar(first, "SELECT @@SPID")
    first.close()
    again = tds_connect("pytds", pooling=True)
    assert query(again, READ_STATE) == [(spid, 7, None, None, 1)]
    assert tds_server.stats.reset_rpcs == 1 and tds_server.stats.reset_flags == 0


def test_freetds_rejects_the_reset_attribute(tds_connect: Connect) -> None:
    conn = tds_connect("pyodbc-freetds")
    with pytest.raises(Exception, match="HY092"):
        conn.set_attr(1246, 1)


# --- the engine (through python-tds) -----------------------------------------------------------


@pytest.fixture
def tds(tds_connect: Connect) -> Any:
    return tds_connect("pytds")


def test_session_variables_and_set_options(tds: Any) -> None:
    assert query(tds, "SELECT @@DATEFIRST, @@LANGUAGE, @@LOCK_TIMEOUT, @@TRANCOUNT") == [
        (7, "us_english", -1, 0)]
    query(tds, "SET NOCOUNT ON; SET XACT_ABORT ON\nSET LOCK_TIMEOUT 500 SET LANGUAGE British")
    options = scalar(tds, "SELECT @@OPTIONS")
    assert options & 512 and options & 16384  # NOCOUNT, XACT_ABORT
    assert query(tds, "SELECT @@DATEFIRST, @@LANGUAGE, @@LOCK_TIMEOUT") == [(1, "british", 500)]
    assert "SQL Server" in scalar(tds, "SELECT @@VERSION")
    assert scalar(tds, "SELECT SERVERPROPERTY('EngineEdition')") == 3


def test_use_database_and_unknown_database(tds: Any) -> None:
    query(tds, "USE tempdb")
    assert scalar(tds, "SELECT DB_NAME()") == "tempdb"
    with pytest.raises(Exception) as info:
        query(tds, "USE nowhere")
    assert carries(info.value, 911)


def test_syntax_error_keeps_the_session(tds: Any) -> None:
    with pytest.raises(Exception) as info:
        query(tds, "SELECT (1")
    assert carries(info.value, 102) and "Incorrect syntax near '1'" in repr(info.value)
    assert scalar(tds, "SELECT 1") == 1


def test_tables_and_transactions(tds: Any, admin: Any) -> None:
    query(tds, "CREATE TABLE #t (id INT, name NVARCHAR(50)); "
               "INSERT INTO #t (id, name) VALUES (1, 'a'), (2, 'b')")
    assert query(tds, "SELECT name FROM #t WHERE id = 2") == [("b",)]
    with pytest.raises(Exception) as info:
        query(admin, "SELECT * FROM #t")  # temp tables are private to their session
    assert carries(info.value, 208)
    query(tds, "BEGIN TRAN; UPDATE #t SET name = 'z' WHERE id = 1; DELETE FROM #t WHERE id = 2")
    assert query(tds, "SELECT * FROM #t") == [(1, "z")]
    query(tds, "IF @@TRANCOUNT > 0 ROLLBACK")
    assert query(tds, "SELECT id, name FROM #t ORDER BY id") == [(1, "a"), (2, "b")]
    assert scalar(tds, "SELECT COUNT(*) FROM #t WHERE name = 'A'") == 1  # case-insensitive collation


def test_session_context_and_applock(tds: Any) -> None:
    cur = tds.cursor()
    cur.execute("EXEC sp_set_session_context @key = N'tenant', @value = N'acme'")
    cur.callproc("sp_set_session_context", ("user", 42))  # as an RPC
    cur.close()
    assert query(tds, "SELECT SESSION_CONTEXT(N'tenant'), SESSION_CONTEXT(N'user')") == [("acme", 42)]
    query(tds, "EXEC sp_getapplock @Resource = 'r', @LockMode = 'Exclusive', @LockOwner = 'Session'")


def test_print_and_raiserror(tds: Any) -> None:
    with pytest.raises(Exception) as info:
        query(tds, "RAISERROR('custom %s', 16, 1, 'x')")
    assert carries(info.value, 50000) and "custom x" in repr(info.value)


def test_kill_errors(tds: Any) -> None:
    with pytest.raises(Exception) as info:
        query(tds, "KILL @@SPID")
    assert carries(info.value, 6104)
    with pytest.raises(Exception) as info:
        query(tds, "KILL 9999")
    assert carries(info.value, 6106)


def test_implicit_transactions(tds: Any, tds_server: TdsServer) -> None:
    query(tds, "SET IMPLICIT_TRANSACTIONS ON")
    assert scalar(tds, "SELECT @@TRANCOUNT") == 0  # a SELECT without a table starts nothing
    query(tds, "CREATE TABLE #t (id INT)")
    assert scalar(tds, "SELECT @@TRANCOUNT") == 0  # neither does a temp table
    query(tds, "CREATE TABLE implicit_t (id INT)")
    assert scalar(tds, "SELECT @@TRANCOUNT") == 1
    query(tds, "ROLLBACK")
    with pytest.raises(Exception) as info:
        query(tds, "SELECT * FROM implicit_t")
    assert carries(info.value, 208)


def test_rollback_without_transaction(tds: Any) -> None:
    with pytest.raises(Exception) as info:
        query(tds, "ROLLBACK")
    assert carries(info.value, 3903)
    query(tds, "IF @@TRANCOUNT > 0 ROLLBACK")  # the idiom is harmless


def test_session_info(tds: Any, tds_server: TdsServer) -> None:
    query(tds, "CREATE TABLE #a (id INT); EXEC sp_getapplock @Resource = 'job', @LockMode = 'Exclusive', "
               "@LockOwner = 'Session'; EXEC sp_set_session_context @key = N'tenant', @value = 7; "
               "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; USE master; BEGIN TRAN")
    info = tds_server.session(scalar(tds, "SELECT @@SPID"))
    assert info is not None
    assert (info.temp_tables, info.applocks, info.context) == (("#a",), ("job",), (("tenant", 7),))
    assert (info.isolation_level, info.database, info.tran_count, info.app) == (5, "master", 1, "pytds")
    assert not info.busy and not info.encrypted


def test_global_temp_tables_are_shared_until_their_session_ends(tds: Any, admin: Any,
                                                                 tds_server: TdsServer) -> None:
    query(tds, "CREATE TABLE ##g (id INT); INSERT INTO ##g (id) VALUES (1)")
    assert query(admin, "SELECT id FROM ##g") == [(1,)]
    spid = scalar(tds, "SELECT @@SPID")
    tds.close()
    # a session leaves sessions() cleaned up
    wait_until(lambda: tds_server.session(spid) is None, what=f"session {spid} gone")
    assert scalar(admin, "SELECT OBJECT_ID('tempdb..##g')") is None


def test_a_closed_session_rolls_its_transaction_back(tds_server: TdsServer, tds_connect: Connect,
                                                     driver: str, admin: Any, shared_table: str) -> None:
    conn = tds_connect(driver, autocommit=False)
    spid = scalar(conn, "SELECT @@SPID")
    query(conn, "INSERT INTO items (id, name) VALUES (1, N'a')")
    assert scalar(admin, "SELECT COUNT(*) FROM items") == 1
    tds_server.kill(spid)
    # a session leaves sessions() rolled back
    wait_until(lambda: tds_server.session(spid) is None, what=f"session {spid} gone")
    assert scalar(admin, "SELECT COUNT(*) FROM items") == 0


def test_info_messages(tds_connect: Connect) -> None:
    cur = tds_connect("pyodbc-msodbc").cursor()
    cur.execute("PRINT 'hello'")
    assert [text for _state, text in cur.messages] == [
        "[Microsoft][ODBC Driver 18 for SQL Server][SQL Server]hello"]
    cur.close()


def test_what_drivers_send_at_login(tds_server: TdsServer, tds_connect: Connect) -> None:
    """The requests each driver makes on its own while connecting (autocommit on)."""
    seen: dict[str, list[str]] = {}
    for driver in DRIVER_NAMES:
        tds_server.clear()
        conn = tds_connect(driver)
        spid = scalar(conn, "SELECT @@SPID")
        seen[driver] = [r.text for r in tds_server.requests(spid) if r.kind in ("batch", "rpc", "tm")][:-1]
    assert seen["pytds"] == []
    assert seen["pymssql"][0].startswith("SET ARITHABORT ON;SET CONCAT_NULL_YIELDS_NULL ON;")
    assert seen["pymssql"][1:] == ["use [shop]"]
    # pyodbc asks for type info (SQLGetTypeInfo: 4 calls) on the first connect with a given
    # connection string in the process, then caches it: so 4 calls or none.
    assert [t.split()[0] for t in seen["pyodbc-freetds"]] in (["sp_datatype_info_100"] * 4, [])
    assert [t.split("(")[0] for t in seen["pyodbc-msodbc"]] in (["sp_datatype_info_100"] * 4, [])
    assert seen["mssql-python"] == []


def test_server_properties_can_look_like_azure() -> None:
    azure = "Microsoft SQL Azure (RTM) - 12.0.2000.8"
    with TdsServer(server_properties={"EngineEdition": 5, "Edition": "SQL Azure"}, version=azure) as srv:
        conn = DRIVERS["pytds"](srv)
        try:
            assert query(conn, "SELECT SERVERPROPERTY('EngineEdition'), SERVERPROPERTY('edition'), "
                               "@@VERSION") == [(5, "SQL Azure", azure)]
        finally:
            conn.close()


def test_stop_closes_everything() -> None:
    srv = TdsServer().start()
    prefix = f"tds-{srv.port}-"
    conn = DRIVERS["pytds"](srv)
    try:
        assert scalar(conn, "SELECT 1") == 1
        assert [t for t in threading.enumerate() if t.name.startswith(prefix)]
        srv.stop()
        assert not [t for t in threading.enumerate() if t.name.startswith(prefix)]
        with pytest.raises(Exception, match="closed"):
            query(conn, "SELECT 1")
    finally:
        conn.close()


# --- TLS -----------------------------------------------------------------------------------------

ENCRYPT_OPTION = "SELECT encrypt_option FROM sys.dm_exec_connections WHERE session_id = @@SPID"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for localhost/127.0.0.1: (certfile, keyfile)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    directory = tmp_path_factory.mktemp("tds-tls")
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return str(certfile), str(keyfile)


@pytest.fixture(scope="module")
def tls_server(certificate: tuple[str, str]) -> Iterator[TdsServer]:
    with TdsServer(users={"sa": "Secret-pw1"}, tls=certificate) as srv:
        yield srv


TLS_DRIVERS = ["pymssql", "pyodbc-freetds", "pyodbc-msodbc", "mssql-python"]


@pytest.mark.parametrize("driver", TLS_DRIVERS)
def test_tls_all_the_way(tls_server: TdsServer, driver: str) -> None:
    tls_server.clear()
    conn = DRIVERS[driver](tls_server, encrypt=True)
    try:
        assert query(conn, ENCRYPT_OPTION) == [("TRUE",)]
        info = tls_server.session(scalar(conn, "SELECT @@SPID"))
        assert info is not None and info.encrypted and info.login_encrypted
    finally:
        conn.close()


@pytest.mark.parametrize("driver", TLS_DRIVERS)
def test_tls_for_the_login_only(tls_server: TdsServer, driver: str) -> None:
    """Without encryption asked for, these drivers offer ENCRYPT_OFF: TLS for LOGIN7, then clear."""
    tls_server.clear()
    conn = DRIVERS[driver](tls_server)
    try:
        assert query(conn, ENCRYPT_OPTION) == [("FALSE",)]
        info = tls_server.session(scalar(conn, "SELECT @@SPID"))
        assert info is not None and not info.encrypted and info.login_encrypted
    finally:
        conn.close()


def test_pytds_without_pyopenssl_stays_in_the_clear(tls_server: TdsServer) -> None:
    tls_server.clear()
    conn = DRIVERS["pytds"](tls_server)
    try:
        assert query(conn, ENCRYPT_OPTION) == [("FALSE",)]
        assert [r.text for r in tls_server.requests() if r.kind == "prelogin"] == ["encryption=2"]
    finally:
        conn.close()


@pytest.mark.parametrize("driver", TLS_DRIVERS)
def test_encryption_required_by_the_client_but_not_offered(tds_server: TdsServer, driver: str) -> None:
    with pytest.raises(Exception) as info:
        DRIVERS[driver](tds_server, encrypt=True)
    assert type(info.value).__name__ == "OperationalError"
    assert tds_server.stats.logins == 0


@pytest.mark.parametrize("driver", ["pyodbc-msodbc", "mssql-python"])
def test_tds8_strict_encryption(tls_server: TdsServer, certificate: tuple[str, str], driver: str) -> None:
    """Encrypt=strict: TLS (with ALPN tds/8.0) before anything else, then PRELOGIN and LOGIN7 inside."""
    tls_server.clear()
    conn = DRIVERS[driver](tls_server, encrypt="strict", certificate=certificate[0])
    try:
        assert query(conn, ENCRYPT_OPTION) == [("TRUE",)]
        assert [r.text for r in tls_server.requests() if r.kind == "prelogin"] == ["encryption=2 strict"]
    finally:
        conn.close()


def _prelogin(sock: socket.socket, encryption: int) -> int:
    """Send a PRELOGIN asking for that ENCRYPTION value; the server's ENCRYPTION answer."""
    table = struct.pack(">BHHBHHB", 0, 11, 6, 1, 17, 1, 0xFF)
    body = table + bytes([16, 0, 0, 0, 0, 0, encryption])
    sock.sendall(struct.pack(">BBHHBB", 0x12, 1, 8 + len(body), 0, 1, 0) + body)
    payload = _read_packet(sock)[1]
    pos = 0
    while payload[pos] != 0xFF:
        token, offset, _length = struct.unpack_from(">BHH", payload, pos)
        if token == 1:
            return int(payload[offset])
        pos += 5
    raise AssertionError("no ENCRYPTION option in the answer")


def _read_packet(sock: socket.socket) -> tuple[int, bytes]:
    def exact(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "server closed the connection"
            data += chunk
        return data

    header = exact(8)
    return header[0], exact(struct.unpack(">H", header[2:4])[0] - 8)


def test_raw_prelogin_and_tls_handshake(tls_server: TdsServer, certificate: tuple[str, str]) -> None:
    """What a TLS probe does: PRELOGIN with ENCRYPT_ON, then the handshake inside PRELOGIN packets."""
    with socket.create_connection((tls_server.host, tls_server.port), timeout=5) as sock:
        assert _prelogin(sock, 1) == 1  # ENCRYPT_ON
        context = ssl.create_default_context(cafile=certificate[0])
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
        while True:
            try:
                tls.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            data = outgoing.read()
            if data:
                sock.sendall(struct.pack(">BBHHBB", 0x12, 1, 8 + len(data), 0, 1, 0) + data)
            if done:
                break
            ptype, payload = _read_packet(sock)
            assert ptype == 0x12
            incoming.write(payload)
        assert tls.version() == "TLSv1.2"
        peer = tls.getpeercert(binary_form=True)
        assert peer is not None
        with open(certificate[0]) as pem:
            assert peer == ssl.PEM_cert_to_DER_cert(pem.read())


@pytest.mark.parametrize(("server_tls", "asked", "answer"), [
    (False, 1, 2), (False, 0, 2), (False, 2, 2), (True, 2, 2), (True, 0, 0), (True, 1, 1), (True, 3, 1)])
def test_prelogin_encryption_answers(tds_server: TdsServer, tls_server: TdsServer, server_tls: bool,
                                     asked: int, answer: int) -> None:
    srv = tls_server if server_tls else tds_server
    with socket.create_connection((srv.host, srv.port), timeout=5) as sock:
        assert _prelogin(sock, asked) == answer


# --- the engine without a network ------------------------------------------------------------


class _Host:
    """Just enough of a connection for a Session."""

    spid = 60
    client_port = 50000
    encrypted = False

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    def kill_other(self, spid: int) -> bool:
        return False

    def all_sessions(self) -> list[Any]:
        return []


@pytest.mark.parametrize("keep_transaction", [True, False])
def test_reset_keeps_the_transaction_only_with_skiptran(keep_transaction: bool) -> None:
    """Status 0x10 (RESETCONNECTIONSKIPTRAN) resets everything but the open transaction."""
    catalog = Catalog(("master", "shop"))
    session = Session(_Host(), catalog, "sa", "shop", "test", "host")
    session.login_done()
    reply = Reply("TEST")
    run_batch(session, reply, "CREATE TABLE t (id INT); CREATE TABLE #tmp (id INT); SET DATEFIRST 2; "
                              "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; BEGIN TRAN; "
                              "INSERT INTO t VALUES (1)")
    assert b"\xaa" not in reply.render()  # no ERROR token
    session.reset(Reply("TEST"), keep_transaction=keep_transaction)
    rows = len(catalog.tables[("shop", "t")].rows)
    assert (session.trancount, rows) == ((1, 1) if keep_transaction else (0, 0))
    assert (session.temp_tables, session.opts.datefirst, session.isolation) == ({}, 7, 4)


# --- session recovery (opt-in) -------------------------------------------------------------------


@pytest.fixture(scope="module")
def recovering_server() -> Iterator[TdsServer]:
    with TdsServer(users={"sa": "Secret-pw1"}, session_recovery=True) as srv:
        yield srv


@pytest.mark.parametrize("driver", ["pyodbc-msodbc", "mssql-python"])
def test_session_recovery_hides_an_idle_kill(recovering_server: TdsServer, driver: str) -> None:
    """With the feature acknowledged (as SQL Server does), ODBC 18 reconnects a killed idle
    session by itself (ConnectRetryCount=1 by default) and restores its database."""
    srv = recovering_server
    srv.clear()
    conn = DRIVERS[driver](srv)
    try:
        query(conn, "USE master")
        spid = scalar(conn, "SELECT @@SPID")
        client = local_socket_fd(srv.session(spid).client_port)
        # Timing window: the driver recovers only a session it deems idle. A query sent within
        # a few ms of the last one is given up as in doubt (08S01 or IMC06) even with the FIN
        # already on its socket, so the session idles first, as an idle kill needs.
        time.sleep(0.1)
        srv.kill(spid)
        wait_until(lambda: srv.session(spid) is None, what=f"session {spid} gone")
        wait_for_goodbye(client)
        new_spid, database = query(conn, "SELECT @@SPID, DB_NAME()")[0]
        assert new_spid != spid and database == "master"
        info = srv.session(new_spid)
        assert info is not None and info.recovered and srv.stats.recovered_logins == 1
    finally:
        conn.close()


@pytest.mark.parametrize("driver", ["pyodbc-msodbc", "mssql-python"])
def test_temp_tables_make_a_session_unrecoverable(recovering_server: TdsServer, driver: str) -> None:
    srv = recovering_server
    srv.clear()
    conn = DRIVERS[driver](srv)
    try:
        query(conn, "CREATE TABLE #t (id INT)")  # SESSIONSTATE: no longer recoverable
        spid = scalar(conn, "SELECT @@SPID")
        client = local_socket_fd(srv.session(spid).client_port)
        time.sleep(0.1)  # as above: recoverable now, were it not for the temp table
        srv.kill(spid)
        wait_until(lambda: srv.session(spid) is None, what=f"session {spid} gone")
        wait_for_goodbye(client)
        with pytest.raises(Exception) as info:
            query(conn, "SELECT 1")
        assert_broken(info.value, BROKEN_IDLE[driver])
        assert srv.stats.recovered_logins == 0
    finally:
        with contextlib.suppress(Exception):
            conn.close()
