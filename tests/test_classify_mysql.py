"""MySQL/MariaDB's classifier and dialect, with pymysql's real exception classes.

Server errors are built by pymysql's own ``raise_mysql_exception`` from an ERR packet as
the server sends it; client errors as pymysql raises them (``connections.py``).
"""

from __future__ import annotations

import struct

import pytest

from tether.dialects import get_dialect
from tether.dialects.mysql import classify, dialect
from tether.errors import ConnectError
from tether.vocab import Fault

pymysql = pytest.importorskip("pymysql", reason="pymysql is not installed: pip install 'tether[mysql]'")

CONNECT, IN_DOUBT, TRANSIENT, FATAL = Fault.CONNECT, Fault.IN_DOUBT, Fault.TRANSIENT, Fault.FATAL


def _server_error(code: int, sqlstate: str, message: str) -> BaseException:
    packet = b"\xff" + struct.pack("<h", code) + b"#" + sqlstate.encode() + message.encode()
    with pytest.raises(pymysql.MySQLError) as info:
        pymysql.err.raise_mysql_exception(packet)
    return info.value


@pytest.mark.parametrize(
    ("code", "sqlstate", "fault"),
    [
        (1213, "40001", TRANSIENT),  # deadlock
        (1205, "HY000", TRANSIENT),  # lock wait timeout
        (3572, "HY000", TRANSIENT),  # NOWAIT
        (1040, "08004", CONNECT),  # too many connections
        (4031, "HY000", CONNECT),  # disconnected while idle (MySQL 8.0.24+)
        (1053, "08S01", IN_DOUBT),  # server shutdown
        (1927, "70100", IN_DOUBT),  # connection killed (MariaDB)
        (1045, "28000", FATAL),  # access denied
        (1049, "42000", FATAL),  # unknown database
        (1064, "42000", FATAL),  # syntax
        (1146, "42S02", FATAL),  # no such table
        (1062, "23000", FATAL),  # duplicate entry
        (1452, "23000", FATAL),  # foreign key
        (1317, "70100", FATAL),  # query interrupted
        (1105, "HY000", FATAL),  # unlisted: the server's final answer
    ],
)
def test_server_errors(code: int, sqlstate: str, fault: Fault) -> None:
    exc = _server_error(code, sqlstate, "message from the server")
    assert exc.args[0] == code
    verdict = classify(exc)
    assert (verdict.fault, verdict.retry_after_s) == (fault, None)
    assert str(code) in verdict.reason


@pytest.mark.parametrize(
    ("exc", "fault"),
    [
        # connections.py: _write_bytes, _read_bytes, connect
        (
            pymysql.err.OperationalError(
                2006, "MySQL server has gone away (BrokenPipeError(32, 'Broken pipe'))"
            ),
            CONNECT,
        ),
        (pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query"), IN_DOUBT),
        (
            pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query (timed out)"),
            IN_DOUBT,
        ),
        (
            pymysql.err.OperationalError(2003, "Can't connect to MySQL server on 'db' ([Errno 111] refused)"),
            CONNECT,
        ),
        (pymysql.err.InterfaceError(0, ""), CONNECT),  # a closed connection used
        (pymysql.err.ProgrammingError("Cursor closed"), FATAL),
        (pymysql.err.OperationalError("no code"), IN_DOUBT),
        (ConnectionResetError(104, "Connection reset by peer"), IN_DOUBT),
        (ValueError("the application's"), FATAL),
    ],
    ids=repr,
)
def test_client_errors(exc: BaseException, fault: Fault) -> None:
    assert classify(exc).fault is fault


def test_os_errno_is_not_a_mysql_code() -> None:
    # errno 1045 from the OS must not read as "access denied".
    assert classify(OSError(1045, "some OS error")).fault is IN_DOUBT


def test_connect_error_is_connect_unless_the_cause_is_final() -> None:
    refused = ConnectError("could not connect", host="db", port=3306)
    refused.__cause__ = pymysql.err.OperationalError(2003, "Can't connect to MySQL server")
    denied = ConnectError("could not connect", host="db", port=3306)
    denied.__cause__ = _server_error(1045, "28000", "Access denied for user 'app'@'h'")
    assert (classify(refused).fault, classify(denied).fault) == (CONNECT, FATAL)


def test_dialect() -> None:
    assert get_dialect("mysql") is dialect
    assert (dialect.name, dialect.default_port, dialect.ping_sql) == ("mysql", 3306, "SELECT 1")
    assert dialect.reset_sql[0] == "ROLLBACK"
    assert dialect.idle_bytes_mean_dead(b"\x07\x00\x00\x00\xff\x9f\x0f")  # an ERR packet
    deadlock = _server_error(1213, "40001", "Deadlock found")
    lost = pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query")
    duplicate = _server_error(1062, "23000", "Duplicate entry '1' for key 'PRIMARY'")
    assert dialect.classify(deadlock) == classify(deadlock)
    assert [dialect.is_disconnect(e) for e in (deadlock, lost, duplicate)] == [False, True, False]


@pytest.mark.parametrize(
    ("sql", "changes"),
    [
        ("SELECT * FROM t WHERE id = 1", ()),
        ("UPDATE t SET n = 1", ()),
        ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", ()),
        ("SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE", ("SET of a session variable",)),
        ("SET NAMES utf8mb4", ("SET of a session variable",)),
        ("SET @x = 1", ("SET of a session variable",)),
        ("USE other", ("USE of another database",)),
        ("CREATE TEMPORARY TABLE t (id int)", ("temporary table",)),
        ("START TRANSACTION", ("open transaction",)),
        ("LOCK TABLES t WRITE", ("LOCK TABLES",)),
        ("SELECT GET_LOCK('name', 10)", ("user-level lock",)),
        ("SELECT n INTO @saved FROM t", ("user variable (SELECT INTO @var)",)),
        ("SELECT 'SET x' # USE other", ()),
    ],
)
def test_session_changes(sql: str, changes: tuple[str, ...]) -> None:
    assert dialect.session_changes(sql) == changes
