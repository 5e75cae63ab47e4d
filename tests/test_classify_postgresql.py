"""PostgreSQL's classifier: psycopg's real exception classes, and errors captured from a real server."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator

import pytest

from tether.dialects import get_dialect
from tether.dialects._classify_pg import classify
from tether.dialects.postgresql import dialect
from tether.errors import ConnectError, bind
from tether.testing import EmbeddedPostgres, free_port
from tether.vocab import Fault

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'tether[dev]'")

CONNECT, IN_DOUBT, TRANSIENT, FATAL = Fault.CONNECT, Fault.IN_DOUBT, Fault.TRANSIENT, Fault.FATAL


@pytest.mark.parametrize(
    ("sqlstate", "fault"),
    [
        ("40001", TRANSIENT),  # serialization_failure
        ("40P01", TRANSIENT),  # deadlock_detected
        ("55P03", TRANSIENT),  # lock_not_available
        ("53200", TRANSIENT),  # out_of_memory
        ("53300", CONNECT),  # too_many_connections: refused at login
        ("57P03", CONNECT),  # cannot_connect_now
        ("08001", CONNECT),
        ("08004", CONNECT),
        ("08003", CONNECT),
        ("57P05", CONNECT),  # idle_session_timeout
        ("25P03", CONNECT),  # idle_in_transaction_session_timeout
        ("57P01", IN_DOUBT),  # admin_shutdown: may follow a commit
        ("57P02", IN_DOUBT),  # crash_shutdown
        ("08006", IN_DOUBT),
        ("08007", IN_DOUBT),
        ("08000", IN_DOUBT),
        ("40003", IN_DOUBT),
        ("08P01", FATAL),
        ("57014", FATAL),  # query_canceled
        ("53100", FATAL),  # disk_full is not transient
        ("53400", FATAL),
        ("53000", FATAL),
        ("28P01", FATAL),
        ("28000", FATAL),
        ("3D000", FATAL),
        ("42601", FATAL),  # syntax_error
        ("42P01", FATAL),  # undefined_table
        ("42703", FATAL),  # undefined_column
        ("42501", FATAL),  # insufficient_privilege
        ("23505", FATAL),  # unique_violation
        ("23503", FATAL),  # foreign_key_violation
        ("23502", FATAL),  # not_null_violation
        ("22012", FATAL),  # division_by_zero
        ("22P02", FATAL),  # invalid_text_representation
        ("40002", FATAL),
        ("XX000", FATAL),  # internal_error: any other code is the server's final answer
    ],
)
def test_sqlstate_table(sqlstate: str, fault: Fault) -> None:
    exc = psycopg.errors.lookup(sqlstate)("message from the server")
    assert exc.sqlstate == sqlstate
    verdict = classify(exc)
    assert verdict.fault is fault
    assert sqlstate in verdict.reason
    assert verdict.retry_after_s is None


def test_unlisted_code_of_a_listed_class_takes_the_class() -> None:
    # 08 codes psycopg has no class for still carry the SQLSTATE through the base class.
    exc = psycopg.errors.lookup("23P01")("exclusion_violation")
    assert classify(exc).fault is FATAL


@pytest.mark.parametrize(
    ("exc", "fault"),
    [
        (psycopg.OperationalError("server closed the connection unexpectedly"), IN_DOUBT),
        (
            psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"),
            IN_DOUBT,
        ),
        (psycopg.OperationalError("sending query failed: another command is already in progress"), IN_DOUBT),
        (psycopg.OperationalError("connection socket closed"), IN_DOUBT),
        (psycopg.OperationalError("the connection is closed"), CONNECT),
        (psycopg.InterfaceError("cannot execute operations: the connection is in status 1"), CONNECT),
        (psycopg.errors.ConnectionTimeout("connection timeout expired"), CONNECT),
        (psycopg.ProgrammingError("the query has 1 placeholder but 2 parameters were passed"), FATAL),
        (psycopg.DataError("integer out of range"), FATAL),
        (psycopg.InternalError("received 2 results from command 'COMMIT'"), IN_DOUBT),  # PgBouncer, crash
        (psycopg.InternalError("some other internal error"), FATAL),
        (ConnectionResetError(104, "Connection reset by peer"), IN_DOUBT),
        (ValueError("raised by the application"), FATAL),
    ],
    ids=repr,
)
def test_errors_without_a_sqlstate(exc: BaseException, fault: Fault) -> None:
    assert classify(exc).fault is fault


def test_the_dialect_delegates() -> None:
    exc = psycopg.errors.DeadlockDetected("deadlock detected")
    assert dialect.classify(exc) == classify(exc)
    assert get_dialect("postgresql") is dialect


def _tether_connect_error(cause: BaseException) -> BaseException:
    error = bind(ConnectError, psycopg.OperationalError)("could not connect", host="h", port=1)
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("cause", "fault"),
    [
        (psycopg.OperationalError("connection failed: Connection refused"), CONNECT),
        (psycopg.errors.lookup("57P03")("the database system is starting up"), CONNECT),
        (psycopg.errors.lookup("28P01")("password authentication failed"), FATAL),
        (psycopg.errors.lookup("3D000")('database "x" does not exist'), FATAL),
    ],
    ids=repr,
)
def test_tethers_connect_error_is_connect_unless_its_cause_is_final(
    cause: BaseException, fault: Fault
) -> None:
    assert classify(_tether_connect_error(cause)).fault is fault


# -- errors raised by a real server ----------------------------------------------------


def _raised(fn: Callable[[], object]) -> BaseException:
    with pytest.raises(psycopg.Error) as info:
        fn()
    return info.value


@pytest.fixture
def table(pg_dsn: str) -> Iterator[str]:
    name = f"classify_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, n int NOT NULL)")
        conn.execute(f"INSERT INTO {name} VALUES (1, 0), (2, 0)")
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {name}")


def test_real_idle_backend_terminated(pg_admin: EmbeddedPostgres) -> None:
    with psycopg.connect(pg_admin.dsn, autocommit=True) as conn:
        conn.execute("SELECT 1")
        assert pg_admin.terminate_backends() >= 1
        first = _raised(lambda: conn.execute("SELECT 1"))
        later = _raised(lambda: conn.execute("SELECT 1"))
    assert (first.sqlstate, classify(first).fault) == ("57P01", IN_DOUBT)
    assert (later.sqlstate, classify(later).fault) == (None, CONNECT)  # "the connection is closed"


def test_real_busy_backend_terminated(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        exc = _raised(lambda: conn.execute("SELECT pg_terminate_backend(pg_backend_pid())"))
    assert isinstance(exc, psycopg.errors.AdminShutdown)
    assert classify(exc).fault is IN_DOUBT


def test_real_serialization_failure(pg_dsn: str, table: str) -> None:
    with psycopg.connect(pg_dsn) as tx, psycopg.connect(pg_dsn, autocommit=True) as other:
        tx.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
        tx.execute(f"SELECT n FROM {table} WHERE id = 1").fetchall()
        other.execute(f"UPDATE {table} SET n = n + 1 WHERE id = 1")
        exc = _raised(lambda: tx.execute(f"UPDATE {table} SET n = n + 1 WHERE id = 1"))
    assert (exc.sqlstate, classify(exc).fault) == ("40001", TRANSIENT)


def test_real_deadlock(pg_dsn: str, table: str) -> None:
    errors: list[BaseException] = []
    first_locked, second_locked = threading.Event(), threading.Event()

    def worker(mine: int, theirs: int, locked: threading.Event, wait_for: threading.Event) -> None:
        with psycopg.connect(pg_dsn) as conn:
            conn.execute("SET deadlock_timeout = '20ms'")
            conn.execute(f"UPDATE {table} SET n = n + 1 WHERE id = %s", (mine,))
            locked.set()
            assert wait_for.wait(10)
            try:
                conn.execute(f"UPDATE {table} SET n = n + 1 WHERE id = %s", (theirs,))
            except psycopg.Error as exc:
                errors.append(exc)

    threads = [
        threading.Thread(target=worker, args=(1, 2, first_locked, second_locked)),
        threading.Thread(target=worker, args=(2, 1, second_locked, first_locked)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(errors) == 1
    assert (getattr(errors[0], "sqlstate", None), classify(errors[0]).fault) == ("40P01", TRANSIENT)


def test_real_statement_errors(pg_dsn: str, table: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        duplicate = _raised(lambda: conn.execute(f"INSERT INTO {table} VALUES (1, 0)"))
        syntax = _raised(lambda: conn.execute("SELEC 1"))
        missing = _raised(lambda: conn.execute("SELECT * FROM no_such_table_here"))
        conn.execute("SET statement_timeout = '10ms'")
        timeout = _raised(lambda: conn.execute("SELECT pg_sleep(1)"))
    found = {e.sqlstate: classify(e).fault for e in (duplicate, syntax, missing, timeout)}
    assert found == {"23505": FATAL, "42601": FATAL, "42P01": FATAL, "57014": FATAL}


def test_real_connect_failures_that_can_heal_are_connect_and_refusals_are_fatal(
    pg_server: EmbeddedPostgres,
) -> None:
    # psycopg gives no SQLSTATE for a failed connect (psycopg#1188): a refused connection
    # reads as CONNECT (the half-open pgconn it carries says the session never began); the
    # server's refusal of an unknown role or database is read from its FATAL message.
    base = f"postgresql://{{user}}@127.0.0.1:{pg_server.port}/{{db}}"
    no_role = _raised(lambda: psycopg.connect(base.format(user="no_such_role", db="postgres")))
    no_db = _raised(lambda: psycopg.connect(base.format(user=pg_server.user, db="no_such_db")))
    refused = _raised(lambda: psycopg.connect(f"postgresql://u@127.0.0.1:{free_port()}/d"))
    unresolved = _raised(lambda: psycopg.connect("postgresql://u@no-such-host.invalid/d"))
    for exc in (no_role, no_db, refused, unresolved):
        assert exc.sqlstate is None
    assert classify(refused).fault is CONNECT
    assert classify(_tether_connect_error(refused)).fault is CONNECT
    for exc, meaning in ((no_role, "28000"), (no_db, "3D000"), (unresolved, "does not resolve")):
        verdict = classify(exc)
        assert verdict.fault is FATAL and meaning in verdict.reason, exc
        assert classify(_tether_connect_error(exc)).fault is FATAL


def test_real_wrong_password_is_fatal() -> None:
    with EmbeddedPostgres(password="right") as pg:
        wrong = pg.url(password=False).replace(f"{pg.user}@", f"{pg.user}:wrong@")
        exc = _raised(lambda: psycopg.connect(wrong))
    assert exc.sqlstate is None  # libpq keeps the server's 28P01 to itself: its message tells
    verdict = classify(exc)
    assert verdict.fault is FATAL and "28P01" in verdict.reason


@pytest.mark.parametrize(
    ("message", "fault"),
    [
        ("query_wait_timeout", CONNECT),
        ("server login has been failing, try again later (server_login_retry)", CONNECT),
        ("pgbouncer cannot connect to server", CONNECT),
        ("no more connections allowed (max_client_conn)", CONNECT),
        ("database removed", IN_DOUBT),
        ("server conn crashed?", IN_DOUBT),
        ("invalid message length", FATAL),  # an 08P01 from PostgreSQL itself: a client bug
    ],
)
def test_pgbouncers_own_errors_say_what_became_of_the_query(message: str, fault: Fault) -> None:
    # PgBouncer sends all of them as 08P01 (protocol_violation), as psycopg raises them
    # (ProtocolViolation, seen from a real PgBouncer 1.18 in tests/test_embedded_pgbouncer.py).
    assert classify(psycopg.errors.ProtocolViolation(message)).fault is fault
