"""tether's PyMySQL driver against a real MariaDB on 127.0.0.1: pooling, the session reset,
dead idle connections, idle resiliency, and a unit of work that deadlocks once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tether
from fix_pool import socket_fd, wait_for_goodbye
from fix_wait import wait_until
from tether.dsn import parse
from tether.session._watchdog import GRACE_S
from tether.testing import EmbeddedMariaDB
from tether.vocab import TxStatus

pytest_plugins = ["fix_mysql"]
pymysql = pytest.importorskip("pymysql", reason="PyMySQL is not installed: pip install 'tether[dev]'")

from fix_mysql import MYSQL_PASSWORD  # noqa: E402  # after the skip: it imports tether.testing's MariaDB

OTHER_DATABASE = "tether_other"


@pytest.fixture(scope="module")
def server(mariadb: EmbeddedMariaDB) -> EmbeddedMariaDB:
    mariadb.execute(f"CREATE DATABASE IF NOT EXISTS {OTHER_DATABASE}")
    mariadb.execute("CREATE TABLE IF NOT EXISTS tether.items (id INT PRIMARY KEY, n INT) ENGINE=InnoDB")
    return mariadb


@pytest.fixture
def make_pool(server: EmbeddedMariaDB) -> Iterator[Callable[..., tether.Pool]]:
    made: list[tether.Pool] = []

    def make(dsn: str | None = None, *, wait: bool = True, **settings: Any) -> tether.Pool:
        settings.setdefault("min_size", 1)
        settings.setdefault("max_size", 1)
        settings.setdefault("timeout", 5.0)
        pool = tether.Pool(dsn or server.url(), **settings)
        made.append(pool)
        if wait:
            pool.wait(10.0)
        return pool

    yield make
    for pool in made:
        pool.close()


def connection_id(conn: Any) -> int:
    row = conn.execute("SELECT CONNECTION_ID()").fetchone()
    assert row is not None
    return int(row[0])


def kill(server: EmbeddedMariaDB, thread_id: int, conn: Any) -> None:
    """KILL one session from another, wait until the server has let it go and until
    ``conn``'s socket (a borrowed connection, or ``socket_fd`` of one) has the FIN."""
    server.execute(f"KILL {thread_id:d}")
    listed = f"SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = {thread_id:d}"
    wait_until(lambda: not server.execute(listed), what=f"session {thread_id} gone after KILL")
    wait_for_goodbye(conn)


# -- pooling and the reset -----------------------------------------------------------------


def test_a_pool_hands_out_the_same_working_connection(make_pool: Callable[..., tether.Pool]) -> None:
    pool = make_pool()
    with pool.connection() as conn:
        first = connection_id(conn)
        assert conn.execute("SELECT 1 + 1").fetchone() == (2,)
        assert conn.execute("SELECT DATABASE()").fetchone() == ("tether",)
    with pool.connection() as conn:
        assert connection_id(conn) == first
    stats = pool.stats()
    assert stats.discarded_dead == 0


def test_the_transaction_status_is_read_from_the_server_flags(make_pool: Callable[..., tether.Pool]) -> None:
    pool = make_pool()
    driver = pool._driver
    with pool.connection() as conn:  # autocommit off: a SELECT of an InnoDB table begins one
        conn.execute("SELECT 1")
        assert driver.tx_status(conn.raw) is TxStatus.IDLE
        conn.execute("SELECT * FROM items").fetchall()  # ended by an EOF packet, not an OK
        assert driver.tx_status(conn.raw) is TxStatus.IN_TRANSACTION
        conn.rollback()
        assert driver.tx_status(conn.raw) is TxStatus.IDLE
        conn.raw.autocommit(True)
        assert driver.autocommit(conn.raw) is True
        conn.execute("BEGIN")  # an SQL-level BEGIN in autocommit mode is seen too: exact
        assert driver.tx_status(conn.raw) is TxStatus.IN_TRANSACTION
        conn.execute("COMMIT")
        assert driver.tx_status(conn.raw) is TxStatus.IDLE
        conn.raw.autocommit(False)


def test_a_returned_session_is_reset_off_the_callers_path(make_pool: Callable[..., tether.Pool]) -> None:
    pool = make_pool()
    sent: list[tuple[str, int]] = []  # (thread, command byte) of every command PyMySQL sends
    with pool.connection() as conn:
        first = connection_id(conn)
        raw = conn.raw
        send = raw._execute_command

        def spy(command: int, sql: Any) -> Any:
            sent.append((threading.current_thread().name, command))
            return send(command, sql)

        raw._execute_command = spy
        conn.execute("CREATE TEMPORARY TABLE scratch (a INT)")
        conn.execute("SET @v = 7")
        conn.execute("SET SESSION sql_mode = 'ANSI'")
        conn.execute("SET SESSION wait_timeout = 123")
        conn.execute(f"USE {OTHER_DATABASE}")
        conn.commit()
        sent.clear()
        me = threading.current_thread().name
    assert not [c for thread, c in sent if thread == me], "the caller's return sent something"
    with pool.connection() as conn:
        assert not [c for thread, c in sent if thread == me]
        reset_by = [thread for thread, command in sent if command == 0x1F]
        assert reset_by and reset_by[0] != me  # COM_RESET_CONNECTION, on a reset worker
        assert connection_id(conn) == first  # reset, not replaced
        global_mode = conn.execute("SELECT @@GLOBAL.sql_mode").fetchone()
        row = conn.execute("SELECT @v, @@SESSION.sql_mode, @@SESSION.wait_timeout = @@GLOBAL.wait_timeout, "
                           "DATABASE(), @@autocommit, @@character_set_client").fetchone()
        assert row == (None, global_mode[0], 1, "tether", 0, "utf8mb4")
        with pytest.raises(pymysql.err.ProgrammingError) as caught:
            conn.execute("SELECT * FROM scratch")
        assert caught.value.args[0] == 1146  # the temporary table went with the reset
    raw._execute_command = send


def test_what_an_executable_comment_left_is_reset_too(make_pool: Callable[..., tether.Pool]) -> None:
    # mysqldump writes session statements inside /*! */ comments, which the server runs.
    pool = make_pool(max_size=1)
    with pool.connection() as conn:
        first = connection_id(conn)
        conn.execute("/*!40101 CREATE TEMPORARY TABLE dumped (a INT) */")
        conn.execute("/*!40101 SET @from_dump = 1 */")
    with pool.connection() as conn:
        assert connection_id(conn) == first  # the same connection, reset
        assert conn.execute("SELECT @from_dump").fetchone() == (None,)
        with pytest.raises(pymysql.err.ProgrammingError) as caught:
            conn.execute("SELECT * FROM dumped")
        assert caught.value.args[0] == 1146  # the temporary table went with the reset


def test_a_killed_idle_connection_is_replaced_at_checkout(
    make_pool: Callable[..., tether.Pool], server: EmbeddedMariaDB
) -> None:
    pool = make_pool(maintenance_interval=60.0)  # the checkout, not the sweep, must find it
    with pool.connection() as conn:
        first = connection_id(conn)
        idle_socket = socket_fd(conn)  # still this connection's once it is back in the pool
    kill(server, first, idle_socket)
    with pool.connection() as conn:
        assert connection_id(conn) != first
        assert conn.execute("SELECT 1").fetchone() == (1,)
    stats = pool.stats()
    assert stats.discarded_dead == 1 and stats.recovered == 0


# -- idle resiliency --------------------------------------------------------------------------


def test_the_session_comes_back_on_a_new_connection(
    make_pool: Callable[..., tether.Pool], server: EmbeddedMariaDB
) -> None:
    pool = make_pool()
    with pool.connection() as conn:
        conn.execute(f"USE {OTHER_DATABASE}")
        conn.execute("SET SESSION sql_mode = 'ANSI_QUOTES,NO_ZERO_DATE'")
        conn.execute("SET @x = 5")
        conn.execute("SET time_zone = '+03:00'")
        before = connection_id(conn)
        kill(server, before, conn)
        row = conn.execute("SELECT DATABASE(), @@SESSION.sql_mode, @x, @@SESSION.time_zone, "
                           "CONNECTION_ID()").fetchone()
    assert row is not None
    assert row[:4] == (OTHER_DATABASE, "ANSI_QUOTES,NO_ZERO_DATE", 5, "+03:00")
    assert row[4] != before
    stats = pool.stats()
    assert stats.recovered == 1 and stats.sessions_lost == 0


def test_a_transaction_that_only_set_things_is_replayed_statement_by_statement(
    make_pool: Callable[..., tether.Pool], server: EmbeddedMariaDB
) -> None:
    pool = make_pool()
    with pool.connection() as conn:
        conn.execute("SET @x = 5")
        conn.execute("START TRANSACTION")
        conn.execute("SET @y = 6")
        conn.execute("SHOW VARIABLES LIKE 'tx_read_only'").fetchall()
        before = conn.raw.thread_id()  # read client-side: a query would end "only set things"
        kill(server, before, conn)
        row = conn.execute("SELECT @x, @y, @@in_transaction, CONNECTION_ID() <> %s", (before,)).fetchone()
        assert row == (5, 6, 1, 1)  # START TRANSACTION and SHOW were replayed, one query each
        conn.commit()
    assert pool.stats().recovered == 1


@pytest.mark.parametrize(
    ("statements", "reason"),
    [
        (["CREATE TEMPORARY TABLE t1 (a INT)"], "temporary table t1"),
        (["INSERT INTO items VALUES (100, 1)"], "open transaction"),
    ],
)
def test_unrecoverable_state_raises_session_lost_naming_it(
    make_pool: Callable[..., tether.Pool], server: EmbeddedMariaDB, statements: list[str], reason: str
) -> None:
    pool = make_pool()
    with pool.connection() as conn:
        for sql in statements:
            conn.execute(sql)
        kill(server, connection_id(conn), conn)
        with pytest.raises(tether.SessionLost) as caught:
            conn.execute("SELECT 1")
        assert caught.value.reasons == (reason,)
        assert reason in str(caught.value)
        assert isinstance(caught.value, pymysql.err.OperationalError)
        with pytest.raises(tether.SessionLost):  # and again: it never continues silently
            conn.execute("SELECT 1")
    stats = pool.stats()
    assert stats.sessions_lost == 1 and stats.recovered == 0
    with pool.connection() as conn:  # the lost one was discarded, not handed out again
        assert conn.execute("SELECT COUNT(*) FROM items WHERE id = 100").fetchone() == (0,)


def test_no_recovery_with_connect_retry_count_0(
    make_pool: Callable[..., tether.Pool], server: EmbeddedMariaDB
) -> None:
    pool = make_pool(connect_retry_count=0)
    with pool.connection() as conn:
        conn.execute("SET @x = 1")
        kill(server, connection_id(conn), conn)
        with pytest.raises(pymysql.err.OperationalError) as caught:
            conn.execute("SELECT 1")
        assert not isinstance(caught.value, tether.SessionLost)
        assert caught.value.args[0] == 2013  # PyMySQL: lost connection during query
    assert pool.stats().recovered == 0


# -- a unit of work -----------------------------------------------------------------------------


def test_a_deadlocked_unit_of_work_runs_again(
    make_pool: Callable[..., tether.Pool], server: EmbeddedMariaDB
) -> None:
    server.execute("DELETE FROM tether.items")
    server.execute("INSERT INTO tether.items VALUES " + ", ".join(f"({i}, 0)" for i in range(1, 11)))
    pool = make_pool()
    rival = pymysql.connect(host=server.host, port=server.port, user="root", password=MYSQL_PASSWORD,
                            database="tether", autocommit=False)
    rival_waits = ("SELECT 1 FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'"
                   f" AND trx_mysql_thread_id = {rival.thread_id():d}")
    retries: list[tether.RetryDetails] = []
    rival_errors: list[BaseException] = []

    def rival_takes_row_1() -> None:
        try:
            with rival.cursor() as cur:
                cur.execute("UPDATE items SET n = n + 100 WHERE id = 1")  # waits for the unit's lock
            rival.commit()
        except BaseException as exc:
            rival_errors.append(exc)

    def unit(conn: tether.Connection) -> int:
        conn.execute("UPDATE items SET n = n + 1 WHERE id = 1")
        if not retries:  # the first run: the rival holds rows 2..10 and waits for row 1
            with rival.cursor() as cur:
                cur.execute("UPDATE items SET n = n + 100 WHERE id >= 2")  # heavier: never the victim
            waiting = threading.Thread(target=rival_takes_row_1)
            waiting.start()
            wait_until(lambda: server.execute(rival_waits), what="the rival waiting for row 1's lock")
            try:
                conn.execute("UPDATE items SET n = n + 1 WHERE id = 2")  # the cycle: 1213 here
            finally:
                waiting.join(10)
        else:
            conn.execute("UPDATE items SET n = n + 1 WHERE id = 2")
        row = conn.execute("SELECT n FROM items WHERE id = 1").fetchone()
        assert row is not None
        return int(row[0])

    try:
        result = pool.transaction(unit, on_retry=retries.append)
    finally:
        rival.close()
    assert [r.error.args[0] for r in retries] == [1213]  # type: ignore[attr-defined]
    assert not rival_errors
    assert result == 101  # the rival's +100 committed after the victim rolled back, then the rerun's +1
    assert server.execute("SELECT n FROM tether.items WHERE id = 2") == [(101,)]


# -- configuration --------------------------------------------------------------------------------


def test_an_unknown_option_is_refused_by_name(server: EmbeddedMariaDB) -> None:
    from tether.drivers.pymysql import driver

    with pytest.raises(tether.ConfigError, match="'frobnicate'") as caught:
        driver.connect(parse(server.url() + "?frobnicate=1"), timeout_s=1.0, autocommit=False)
    assert caught.value.key == "frobnicate"
    with pytest.raises(tether.ConfigError, match="ssl_mode"):
        driver.connect(parse(server.url() + "?ssl_mode=sometimes"), timeout_s=1.0, autocommit=False)


def test_a_failed_login_never_shows_the_password(make_pool: Callable[..., tether.Pool],
                                                 server: EmbeddedMariaDB) -> None:
    wrong = server.url().replace(MYSQL_PASSWORD, "Wr0ng-" + MYSQL_PASSWORD)
    pool = make_pool(wrong, min_size=0, connect_retry_count=0, wait=False)
    with pytest.raises(tether.ConnectError) as caught:
        pool.getconn(timeout=5)
    text = f"{caught.value} {caught.value.__cause__!r} {pool!r} {pool.spec!r}"
    assert MYSQL_PASSWORD not in text
    assert "1045" in text


def test_tls_modes(mariadb_tls: EmbeddedMariaDB, make_pool: Callable[..., tether.Pool]) -> None:
    cert = mariadb_tls._tmp_dir() / "server.crt"
    for query in ("ssl_mode=REQUIRED", f"ssl_mode=VERIFY_IDENTITY&ssl_ca={cert}"):
        pool = make_pool(mariadb_tls.url() + "?" + query)
        with pool.connection() as conn:
            cipher = conn.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'").fetchone()
            assert cipher is not None and cipher[1]
    untrusted = make_pool(mariadb_tls.url() + "?ssl_mode=VERIFY_CA", min_size=0, connect_retry_count=0,
                          wait=False)
    with pytest.raises(tether.ConnectError, match="certificate verify failed"):
        untrusted.getconn(timeout=30)  # final: at once, not after the checkout's timeout


# -- client-side settings -------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["method", "attribute"])
def test_autocommit_set_by_the_borrower_is_put_back(make_pool: Callable[..., tether.Pool], how: str) -> None:
    pool = make_pool()
    with pool.connection() as conn:
        first = connection_id(conn)
        if how == "method":
            conn.autocommit(True)  # PyMySQL's own call
        else:
            conn.autocommit = True  # the PEP 249 extension psycopg users write
        assert conn.execute("SELECT @@autocommit").fetchone() == (1,)
    with pool.connection() as conn:
        assert connection_id(conn) == first
        assert conn.execute("SELECT @@autocommit").fetchone() == (0,)
        assert pool._driver.autocommit(conn.raw) is False


def test_autocommit_set_by_the_borrower_survives_an_idle_break(
    make_pool: Callable[..., tether.Pool], server: EmbeddedMariaDB
) -> None:
    pool = make_pool()
    with pool.connection() as conn:
        conn.autocommit(True)
        before = connection_id(conn)
        kill(server, before, conn)
        assert conn.execute("SELECT @@autocommit, CONNECTION_ID() <> %s", (before,)).fetchone() == (1, 1)


# -- the command timeout ------------------------------------------------------------------


@pytest.mark.parametrize("sql", ["SELECT SLEEP(30)", "SELECT BENCHMARK(2000000000, MD5('x'))"])
def test_a_slow_statement_is_stopped_by_kill_query_and_the_session_goes_on(
    make_pool: Callable[..., tether.Pool], sql: str
) -> None:
    # SLEEP() answers a KILL QUERY with a row (1) as if it had finished; BENCHMARK() with an
    # error: both are a timeout to the caller, never a result.
    pool = make_pool(command_timeout=0.5)
    with pool.connection() as conn:
        session = connection_id(conn)
        started = time.monotonic()
        with pytest.raises(tether.CommandTimeout) as caught:
            conn.execute(sql)
        assert time.monotonic() - started <= 0.5 + GRACE_S + 0.5
        assert not caught.value.severed and "cancelled" in str(caught.value)
        assert connection_id(conn) == session  # KILL QUERY left the session alone
    assert pool.stats().discarded_dead == 0
