"""SQL Server's classifier and dialect, with the four drivers' real exception classes.

Each exception is built as its driver builds it: pymssql's ``(number, message)`` args,
python-tds's own ``_create_exception_by_message``, pyodbc's ``(sqlstate, "[sqlstate]
text (native) (SQLFunctionW)")``, mssql-python's ``sqlstate_to_exception``. The killed-
session cases are the ones SQLSERVER-FACTS.md recorded against a live server.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from fix_system import import_driver
from tether.dialects import get_dialect
from tether.dialects.sqlserver import classify, dialect
from tether.errors import ConnectError
from tether.vocab import Fault

CONNECT, IN_DOUBT, TRANSIENT, FATAL = Fault.CONNECT, Fault.IN_DOUBT, Fault.TRANSIENT, Fault.FATAL

_PIP = {"pymssql": "'tether[pymssql]'", "pytds": "'tether[pytds]'", "pyodbc": "'tether[pyodbc]'",
        "mssql_python": "'tether[mssql-python]'"}  # what installs each

Build = Callable[[Any], BaseException]


def _driver(name: str) -> ModuleType:
    return import_driver(name, _PIP[name])  # pyodbc without libodbc.so.2 names apt-get


def _case(build: Build, fault: Fault, id: str) -> Any:
    return pytest.param(build, fault, id=id)


# -- pymssql: args == (number, b"message"); from connect(), ((number, b"message"),) -------

_DBLIB = "DB-Lib error message {}, severity {}:\n{}\n"
_GENERAL = _DBLIB.format(20018, 16, "General SQL Server error: Check messages from the SQL Server")

PYMSSQL = [
    _case(
        lambda m: m.OperationalError(
            20047, _DBLIB.format(20047, 1, "DBPROCESS is dead or not enabled").encode()
        ),
        CONNECT,
        "20047 killed while idle",
    ),
    _case(
        lambda m: m.OperationalError(
            20017, _DBLIB.format(20017, 9, "Unexpected EOF from the server (127.0.0.1:1433)").encode()
        ),
        IN_DOUBT,
        "20017 killed while busy",
    ),
    _case(lambda m: m.InterfaceError("Not connected to any MS SQL server"), CONNECT, "any later query"),
    _case(lambda m: m.InterfaceError("Connection is closed."), CONNECT, "closed connection"),
    _case(
        lambda m: m.OperationalError(
            1205,
            b"Transaction (Process ID 53) was deadlocked on lock resources with another process and has"
            b" been chosen as the deadlock victim. Rerun the transaction." + _GENERAL.encode(),
        ),
        TRANSIENT,
        "1205 deadlock",
    ),
    _case(
        lambda m: m.OperationalError(
            40613, b"Database 'shop' on server 'x' is not currently available." + _GENERAL.encode()
        ),
        TRANSIENT,
        "40613 Azure unavailable",
    ),
    _case(
        lambda m: m.IntegrityError(
            2627,
            b"Violation of PRIMARY KEY constraint 'PK_t'. Cannot insert duplicate key." + _GENERAL.encode(),
        ),
        FATAL,
        "2627 duplicate key",
    ),
    _case(
        lambda m: m.ProgrammingError(208, b"Invalid object name 'nope'." + _GENERAL.encode()),
        FATAL,
        "208 missing object",
    ),
    _case(
        lambda m: m.OperationalError(
            (
                18456,
                b"Login failed for user 'sa'."
                + _DBLIB.format(20002, 9, "Adaptive Server connection failed").encode(),
            )
        ),
        FATAL,
        "18456 from connect()",
    ),
    _case(
        lambda m: m.OperationalError(
            (
                20009,
                _DBLIB.format(
                    20009, 9, "Unable to connect: Adaptive Server is unavailable or does not exist"
                ).encode()
                + b"Net-Lib error during Connection refused (111)\n",
            )
        ),
        CONNECT,
        "20009 from connect()",
    ),
    _case(lambda m: m.ColumnsWithoutNamesError([0]), FATAL, "as_dict without column names (after running)"),
    _case(
        lambda m: m.OperationalError("Cannot commit transaction: (20006, b'Write failed')"),
        IN_DOUBT,
        "no number",
    ),
]


@pytest.mark.parametrize(("build", "fault"), PYMSSQL)
def test_pymssql(build: Build, fault: Fault) -> None:
    assert classify(build(_driver("pymssql"))).fault is fault


def test_pymssql_internal_exception_carries_the_pair() -> None:
    _mssql = _driver("pymssql")._mssql
    assert (
        classify(_mssql.MSSQLDatabaseException((40501, b"The service is currently busy."))).retry_after_s
        == 10
    )


# -- python-tds: exceptions from the driver's own factory, .number set ------------------


def _pytds_error(number: int, message: str, severity: int = 16) -> Build:
    def build(pytds: Any) -> BaseException:
        msg = {
            "marker": 0xAA,
            "msgno": number,
            "state": 1,
            "severity": severity,
            "sql_state": None,
            "priv_msg_type": 0,
            "message": message,
            "server": "db",
            "proc_name": "",
            "line_number": 1,
        }
        error: BaseException = pytds.tds_base._create_exception_by_message(msg)
        return error

    return build


PYTDS = [
    _case(lambda m: m.tds_base.ClosedConnectionError(), IN_DOUBT, "server closed (idle or busy)"),
    _case(
        lambda m: m.connection.BaseConnection._connection_closed_exception, CONNECT, "closed connection used"
    ),
    _case(lambda m: m.cursor.BaseCursor._cursor_closed_exception, CONNECT, "closed cursor used"),
    _case(lambda m: m.tds_base.InterfaceError("Invalid TDS marker"), IN_DOUBT, "bad stream after sending"),
    _case(_pytds_error(40613, "Database 'shop' is not currently available."), TRANSIENT, "40613"),
    _case(_pytds_error(40501, "The service is currently busy."), TRANSIENT, "40501"),
    _case(_pytds_error(1205, "Transaction was deadlocked"), TRANSIENT, "1205"),
    _case(_pytds_error(1222, "Lock request time out period exceeded."), TRANSIENT, "1222"),
    _case(
        _pytds_error(596, "Cannot continue the execution because the session is in the kill state.", 21),
        IN_DOUBT,
        "596 kill state",
    ),
    _case(_pytds_error(18456, "Login failed for user 'sa'.", 14), FATAL, "18456"),
    _case(_pytds_error(102, "Incorrect syntax near 'SELEC'.", 15), FATAL, "102 syntax"),
    _case(_pytds_error(2601, "Cannot insert duplicate key row", 14), FATAL, "2601"),
    _case(_pytds_error(547, "The INSERT statement conflicted with the FOREIGN KEY constraint"), FATAL, "547"),
    _case(_pytds_error(8134, "Divide by zero error encountered."), FATAL, "8134"),
    _case(_pytds_error(99999, "An error nobody listed"), FATAL, "unlisted number"),
    _case(lambda m: m.tds_base.TimeoutError("timed out"), IN_DOUBT, "socket timeout"),
    _case(lambda m: ConnectionResetError(104, "Connection reset by peer"), IN_DOUBT, "reset"),
]


@pytest.mark.parametrize(("build", "fault"), PYTDS)
def test_python_tds(build: Build, fault: Fault) -> None:
    pytds = _driver("pytds")
    __import__("pytds.connection")
    __import__("pytds.cursor")
    assert classify(build(pytds)).fault is fault


def test_python_tds_wait_the_server_asks_for() -> None:
    verdict = classify(_pytds_error(40501, "The service is currently busy.")(_driver("pytds")))
    assert (verdict.fault, verdict.retry_after_s) == (TRANSIENT, 10.0)


# -- pyodbc: args == (sqlstate, "[sqlstate] text (native) (SQLFunctionW)") ---------------

_FREETDS = "[FreeTDS][SQL Server]"
_MS = "[Microsoft][ODBC Driver 18 for SQL Server]"


def _odbc(cls: str, sqlstate: str, text: str, native: int, function: str = "SQLExecDirectW") -> Build:
    return lambda m: getattr(m, cls)(sqlstate, f"[{sqlstate}] {text} ({native}) ({function})")


PYODBC = [
    _case(_odbc("Error", "HY000", f"{_FREETDS}Unknown error", 0), IN_DOUBT, "FreeTDS killed while idle"),
    _case(
        _odbc("Error", "01000", f"{_FREETDS}Unexpected EOF from the server", 20017),
        IN_DOUBT,
        "FreeTDS killed while busy",
    ),
    _case(
        _odbc("OperationalError", "08S01", f"{_FREETDS}Communication link failure", 0),
        IN_DOUBT,
        "FreeTDS any later query",
    ),
    _case(
        _odbc("OperationalError", "08S01", f"{_MS}TCP Provider: Error code 0x2746", 10054),
        IN_DOUBT,
        "MS driver reset",
    ),
    _case(
        _odbc(
            "OperationalError", "08001", f"{_MS}TCP Provider: Error code 0x2746", 10054, "SQLDriverConnect"
        ),
        CONNECT,
        "reset while connecting",
    ),
    _case(
        _odbc(
            "Error",
            "40001",
            f"{_MS}[SQL Server]Transaction (Process ID 52) was deadlocked on lock resources with another"
            " process and has been chosen as the deadlock victim. Rerun the transaction.",
            1205,
        ),
        TRANSIENT,
        "1205 deadlock",
    ),
    _case(
        _odbc(
            "ProgrammingError",
            "42000",
            f"{_MS}[SQL Server]Database 'shop' on server 'x' is not currently available. Please retry"
            " the connection later. (Microsoft SQL Server, Error: 40613)",
            40613,
            "SQLDriverConnect",
        ),
        TRANSIENT,
        "40613 beats the 42 class",
    ),
    _case(
        _odbc(
            "IntegrityError",
            "23000",
            f"{_MS}[SQL Server]Violation of PRIMARY KEY constraint 'PK_t'. The duplicate key value is (1).",
            2627,
        ),
        FATAL,
        "2627 duplicate",
    ),
    _case(
        _odbc(
            "InterfaceError",
            "28000",
            f"{_MS}[SQL Server]Login failed for user 'sa'.",
            18456,
            "SQLDriverConnect",
        ),
        FATAL,
        "18456 login",
    ),
    _case(_odbc("OperationalError", "HYT00", f"{_MS}Query timeout expired", 0), IN_DOUBT, "HYT00 timeout"),
    _case(_odbc("Error", "08003", f"{_FREETDS}Connection does not exist", 0), CONNECT, "08003"),
    _case(_odbc("Error", "08007", f"{_MS}Connection failure during transaction", 0), IN_DOUBT, "08007"),
    _case(
        _odbc("Error", "08S02", f"{_MS}SMux Provider: Physical connection is not usable", 0),
        IN_DOUBT,
        "08S02",
    ),
    _case(_odbc("Error", "01002", f"{_MS}Disconnect error", 0, "SQLDisconnect"), CONNECT, "01002"),
    _case(
        _odbc(
            "InterfaceError",
            "IM002",
            "[unixODBC][Driver Manager]Data source name not found",
            0,
            "SQLDriverConnect",
        ),
        FATAL,
        "IM002 no driver",
    ),
    _case(lambda m: m.ProgrammingError("HY000", "Attempt to use a closed connection."), CONNECT, "closed"),
    _case(lambda m: m.ProgrammingError("HY000", "Attempt to use a closed cursor."), CONNECT, "closed cursor"),
]


@pytest.mark.parametrize(("build", "fault"), PYODBC)
def test_pyodbc(build: Build, fault: Fault) -> None:
    assert classify(build(_driver("pyodbc"))).fault is fault


# -- mssql-python: no number; its fixed description per SQLSTATE -----------------------


def _mssql_python(sqlstate: str, ddbc_error: str) -> Build:
    return lambda m: m.exceptions.sqlstate_to_exception(sqlstate, ddbc_error)


MSSQL_PYTHON = [
    _case(
        _mssql_python("08S01", "[Microsoft][ODBC Driver 18 for SQL Server]TCP Provider: Error code 0x2746"),
        IN_DOUBT,
        "killed (idle or busy)",
    ),
    _case(
        _mssql_python(
            "40001",
            _MS + "[SQL Server]Transaction (Process ID 52) was deadlocked",
        ),
        TRANSIENT,
        "deadlock",
    ),
    _case(
        _mssql_python("42000", _MS + "[SQL Server]Lock request time out period exceeded."),
        TRANSIENT,
        "lock timeout (told by its text)",
    ),
    _case(
        _mssql_python("42000", _MS + "[SQL Server]canceling statement due to lock timeout"),
        TRANSIENT,
        "Babelfish lock timeout (told by its text)",
    ),
    _case(
        _mssql_python("42000", _MS + "[SQL Server]Le délai d'attente de la demande de verrou a expiré."),
        FATAL,
        "lock timeout in another language: unknown",
    ),
    _case(
        _mssql_python("HYT00", "[Microsoft][ODBC Driver 18 for SQL Server]Query timeout expired"),
        IN_DOUBT,
        "timeout",
    ),
    _case(
        _mssql_python("08001", "[Microsoft][ODBC Driver 18 for SQL Server]TCP Provider: Error code 0x2749"),
        CONNECT,
        "could not connect",
    ),
    _case(
        _mssql_python("08003", "[Microsoft][ODBC Driver 18 for SQL Server]Connection not open"),
        CONNECT,
        "not open",
    ),
    _case(
        _mssql_python(
            "28000", "[Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Login failed for user 'sa'."
        ),
        FATAL,
        "login",
    ),
    _case(
        _mssql_python(
            "23000",
            "[Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Violation of PRIMARY KEY constraint",
        ),
        FATAL,
        "duplicate",
    ),
    _case(
        _mssql_python(
            "42S02", "[Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Invalid object name 'nope'."
        ),
        FATAL,
        "missing",
    ),
    _case(
        _mssql_python("HY000", "[Microsoft][ODBC Driver 18 for SQL Server]General error"),
        IN_DOUBT,
        "general error",
    ),
    _case(
        lambda m: m.exceptions.InterfaceError(
            driver_error="Cannot create cursor on closed connection",
            ddbc_error="Cannot create cursor on closed connection",
        ),
        CONNECT,
        "closed connection",
    ),
    _case(
        lambda m: m.exceptions.ProgrammingError(
            driver_error="Operation cannot be performed: The cursor is closed.", ddbc_error=""
        ),
        CONNECT,
        "closed cursor",
    ),
]


@pytest.mark.parametrize(("build", "fault"), MSSQL_PYTHON)
def test_mssql_python(build: Build, fault: Fault) -> None:
    exc = build(_driver("mssql_python"))
    assert exc is not None
    assert classify(exc).fault is fault


# -- tether's own errors, and not-database errors ----------------------------------------


def test_connect_error_is_connect_unless_the_cause_is_final() -> None:
    pymssql = _driver("pymssql")
    refused = ConnectError("could not connect", host="db", port=1433)
    refused.__cause__ = pymssql.OperationalError((20009, b"Unable to connect"))
    login = ConnectError("could not connect", host="db", port=1433)
    login.__cause__ = pymssql.OperationalError((18456, b"Login failed for user 'sa'."))
    assert (classify(refused).fault, classify(login).fault) == (CONNECT, FATAL)


@pytest.mark.parametrize(
    ("exc", "fault"),
    [
        (ValueError("the application's"), FATAL),
        (TimeoutError("timed out"), IN_DOUBT),
        (BrokenPipeError(), IN_DOUBT),
    ],
    ids=repr,
)
def test_errors_no_driver_raised(exc: BaseException, fault: Fault) -> None:
    assert classify(exc).fault is fault


# -- the dialect ---------------------------------------------------------------------------


def test_dialect_basics() -> None:
    assert get_dialect("sqlserver") is dialect
    assert (dialect.name, dialect.default_port, dialect.ping_sql) == ("sqlserver", 1433, "SELECT 1")
    batch = " ".join(dialect.reset_sql).upper()
    assert "ROLLBACK" in batch
    assert "SET TRANSACTION ISOLATION LEVEL READ COMMITTED" in batch


@pytest.mark.parametrize("data", [b"\x04\x01\x00\x20", b"\xaa", b""])
def test_any_unsolicited_bytes_mean_dead(data: bytes) -> None:
    assert dialect.idle_bytes_mean_dead(data)


def test_classify_method_and_is_disconnect() -> None:
    pymssql = _driver("pymssql")
    killed = pymssql.OperationalError(20017, b"Unexpected EOF from the server")
    deadlock = pymssql.OperationalError(1205, b"deadlock victim")
    failover = pymssql.OperationalError(40197, b"The service has encountered an error")
    duplicate = pymssql.IntegrityError(2627, b"Violation of PRIMARY KEY constraint")
    assert dialect.classify(deadlock) == classify(deadlock)
    found = [dialect.is_disconnect(e) for e in (killed, deadlock, failover, duplicate)]
    assert found == [True, False, True, False]


@pytest.mark.parametrize(
    ("sql", "changes"),
    [
        ("SELECT * FROM t WHERE id = 1", ()),
        ("UPDATE t SET n = n + 1 WHERE id = 1", ()),
        ("DECLARE @x int; SET @x = 1; SELECT @x", ()),
        ("SELECT 1 OPTION (USE HINT ('FORCE_LEGACY_CARDINALITY_ESTIMATION'))", ()),
        ("SET NOCOUNT ON", ("SET of a session option",)),
        ("SELECT 1 SET XACT_ABORT ON", ("SET of a session option",)),
        ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", ("isolation level",)),
        ("USE other", ("USE of another database",)),
        ("CREATE TABLE #t (id int)", ("temporary table or procedure",)),
        ("SELECT * INTO ##shared FROM t", ("temporary table or procedure",)),
        ("BEGIN TRAN", ("open transaction",)),
        ("BEGIN TRANSACTION; UPDATE t SET n = 1", ("open transaction",)),
        ("EXEC sp_getapplock @Resource = 'r', @LockMode = 'Exclusive'", ("application lock",)),
        ("EXECUTE AS USER = 'app'", ("EXECUTE AS impersonation",)),
        ("CREATE PROCEDURE p WITH EXECUTE AS OWNER AS SELECT 1", ()),
        ("DECLARE c CURSOR GLOBAL FOR SELECT 1", ("cursor",)),
        ("EXEC sp_set_session_context @key = N'k', @value = 1", ("session context",)),
        ("SELECT '#not a temp table', [#quoted] FROM t -- SET NOCOUNT ON", ()),
        ("SELECT 'unterminated", ("statement that could not be scanned",)),
    ],
)
def test_session_changes(sql: str, changes: tuple[str, ...]) -> None:
    assert dialect.session_changes(sql) == changes
