"""SQL Server and Azure SQL: error classification, session reset, session effects.

One table of SQL Server error numbers and one of ODBC SQLSTATEs decide what an error
means for a retry. The numbers come from each Python driver's own exception shape:

- pymssql: ``exc.args == (number, b"message")``; from ``connect()``, the same pair
  wrapped in one more tuple. Numbers 20000-20999 are FreeTDS DB-Library's own (sybdb.h).
- python-tds (``pytds``): ``exc.number`` on ``DatabaseError``; ``ClosedConnectionError``
  when the server closed the socket.
- pyodbc: ``exc.args == (sqlstate, message)``. The native number is read from the
  message, and only from the place pyodbc itself writes it: the first diagnostic record
  is formatted as ``"[SQLSTATE] text (native) (SQLFunctionW)"`` (pyodbc ``errors.cpp``).
- mssql-python: no number at all (its C++ layer reads and drops SQLGetDiagRec's native
  error); its ``driver_error`` is a fixed description per SQLSTATE, from the driver's own
  table (``mssql_python.exceptions.sqlstate_to_exception``), which is inverted here to
  recover the SQLSTATE.

Reading a driver's message is confined to this module, to the driver's own constants and
format, and never decides on the server's free text, with one exception: Babelfish's
generic error 33557097, whose text is PostgreSQL's fixed message (``_BABELFISH_MESSAGES``).
Nothing here imports a driver: one that is not loaded cannot have raised anything.

When a session is killed (SQLSERVER-FACTS.md), the drivers differ in whether they can tell
an idle session (nothing reached the server: CONNECT) from a busy one (IN_DOUBT): pymssql
can (20047 before sending, 20017 while waiting for a reply); python-tds, pyodbc and
mssql-python cannot, so theirs are IN_DOUBT.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..errors import ConnectError
from ..vocab import Classification, Fault
from ._base import BaseDialect
from ._effects_mssql import mssql_read, mssql_read_azure

CONNECT, IN_DOUBT, TRANSIENT, FATAL = Fault.CONNECT, Fault.IN_DOUBT, Fault.TRANSIENT, Fault.FATAL

# SQL Server error number -> (fault, meaning). Sources: Azure SQL's transient-error
# documentation, SqlClient's default transient list, Microsoft JDBC's additions, and
# FreeTDS DB-Library's numbers for pymssql.
_NUMBERS: dict[int, tuple[Fault, str]] = {
    # -- the server asks for a retry (Azure reconfiguration, throttling, lock conflicts) --
    40613: (TRANSIENT, "database not currently available (Azure failover or reconfiguration)"),
    40197: (TRANSIENT, "the service had an error processing the request (Azure reconfiguration)"),
    40501: (TRANSIENT, "the service is busy: retry after 10 seconds"),
    40540: (TRANSIENT, "the service had an error processing the request"),
    40143: (TRANSIENT, "the service had an error processing the request (replica)"),
    49918: (TRANSIENT, "not enough resources to process the request"),
    49919: (TRANSIENT, "too many create or update operations in progress"),
    49920: (TRANSIENT, "too many operations in progress"),
    10928: (TRANSIENT, "resource limit reached (sessions or workers)"),
    10929: (TRANSIENT, "resource minimum guarantee not met; the server is too busy"),
    42108: (TRANSIENT, "serverless pool is paused"),
    42109: (TRANSIENT, "serverless pool is warming up"),
    40020: (TRANSIENT, "the database is in transition and transactions are being terminated"),
    40166: (TRANSIENT, "Azure reconfiguration (in Microsoft JDBC's transient list)"),
    4221: (TRANSIENT, "login to a readable secondary timed out waiting for versioning"),
    615: (TRANSIENT, "could not find the database ID: it may be offline"),
    926: (TRANSIENT, "the database cannot be opened (marked suspect, or recovering)"),
    # 4060 is also what a misspelt database name gives; it is transient only while a
    # database starts (Azure lists it), and the retry policy's attempts bound the cost.
    4060: (TRANSIENT, "cannot open the database requested by the login (transient only while it starts)"),
    1204: (TRANSIENT, "the server could not obtain a lock resource"),
    1205: (TRANSIENT, "deadlock victim: the transaction was rolled back"),
    1222: (TRANSIENT, "lock request timeout: the statement (not the transaction) was cancelled"),
    3960: (TRANSIENT, "snapshot isolation update conflict: the transaction was rolled back"),
    41301: (TRANSIENT, "In-Memory OLTP: a dependent transaction failed to commit"),
    41302: (TRANSIENT, "In-Memory OLTP: update conflict"),
    41305: (TRANSIENT, "In-Memory OLTP: repeatable read validation failure"),
    41325: (TRANSIENT, "In-Memory OLTP: serializable validation failure"),
    41839: (TRANSIENT, "In-Memory OLTP: too many commit dependencies"),
    # -- the link failed: SqlClient and JDBC retry these, but they also end requests in
    #    flight, so the request may have run. Raised while connecting, tether wraps them
    #    in ConnectError, which is CONNECT. --
    233: (IN_DOUBT, "no process on the other end of the pipe (connection dropped)"),
    997: (IN_DOUBT, "connection error during login or a request (overlapped I/O)"),
    10053: (IN_DOUBT, "connection aborted by the local host"),
    10054: (IN_DOUBT, "connection reset by the remote host"),
    10060: (IN_DOUBT, "network timeout"),
    64: (IN_DOUBT, "the network name is no longer available"),
    596: (IN_DOUBT, "the session is in the kill state"),
    # FreeTDS DB-Library (pymssql): the socket failed around a request.
    20017: (IN_DOUBT, "unexpected EOF from the server (the session died during a request)"),
    20004: (IN_DOUBT, "read from the server failed"),
    20006: (IN_DOUBT, "write to the server failed (part of the request may have gone)"),
    20003: (IN_DOUBT, "the server timed out (query timeout)"),
    20020: (IN_DOUBT, "bad token from the server: the stream is out of sync"),
    # FreeTDS DB-Library: refused before anything was sent.
    20047: (CONNECT, "DBPROCESS is dead: DB-Library knew before sending"),
    20009: (CONNECT, "unable to connect: the server is unavailable or does not exist"),
    20002: (CONNECT, "the connection to the server failed"),
    20008: (CONNECT, "unable to open a socket"),
    20013: (CONNECT, "unknown host name"),
    # -- final: running it again fails again --
    18456: (FATAL, "login failed"),
    18452: (FATAL, "login from an untrusted domain"),
    18486: (FATAL, "login failed: the account is locked"),
    18487: (FATAL, "login failed: the password has expired"),
    18488: (FATAL, "login failed: the password must be changed"),
    20014: (FATAL, "incorrect password (DB-Library)"),
    911: (FATAL, "the database does not exist"),
    4064: (FATAL, "cannot open the login's default database"),
    208: (FATAL, "invalid object name"),
    207: (FATAL, "invalid column name"),
    2812: (FATAL, "stored procedure not found"),
    102: (FATAL, "syntax error"),
    156: (FATAL, "syntax error near a keyword"),
    2627: (FATAL, "unique or primary key constraint violation"),
    2601: (FATAL, "duplicate key in a unique index"),
    547: (FATAL, "foreign key or check constraint violation"),
    515: (FATAL, "NULL into a NOT NULL column"),
    8152: (FATAL, "string or binary data would be truncated"),
    2628: (FATAL, "string or binary data would be truncated"),
    245: (FATAL, "conversion failed"),
    8114: (FATAL, "error converting data type"),
    8134: (FATAL, "divide by zero"),
    229: (FATAL, "permission denied on an object"),
    230: (FATAL, "permission denied on a column"),
    262: (FATAL, "permission denied in the database"),
    3902: (FATAL, "COMMIT TRANSACTION with no BEGIN TRANSACTION"),
    3903: (FATAL, "ROLLBACK TRANSACTION with no BEGIN TRANSACTION"),
    9002: (FATAL, "the transaction log is full"),
    1105: (FATAL, "a filegroup is full"),
    50000: (FATAL, "raised by the application (RAISERROR or THROW)"),
}

# Waits the server asks for, in seconds.
_RETRY_AFTER_S = {40501: 10.0}

# Errors after which the session is still usable: the pool keeps the connection.
_SESSION_SURVIVES = frozenset({1204, 1205, 1222, 3960, 41301, 41302, 41305, 41325, 41839})

# ODBC SQLSTATE -> (fault, meaning), for errors without a number in the table above.
_SQLSTATES: dict[str, tuple[Fault, str]] = {
    "08S01": (IN_DOUBT, "communication link failure"),
    "08007": (IN_DOUBT, "connection failure during a transaction"),
    "08S02": (IN_DOUBT, "the physical connection is not usable"),
    "HYT00": (IN_DOUBT, "timeout expired (the statement may have run)"),
    "HYT01": (IN_DOUBT, "connection timeout expired during a request"),
    "40003": (IN_DOUBT, "statement completion unknown"),
    "08001": (CONNECT, "the client could not establish a connection"),
    "08003": (CONNECT, "the connection is not open: nothing was sent"),
    "08004": (CONNECT, "the server rejected the connection"),
    "01002": (CONNECT, "error while disconnecting: the connection is gone"),
    "40001": (TRANSIENT, "serialization failure or deadlock: rolled back"),
    "08002": (FATAL, "connection name in use"),
    "28000": (FATAL, "invalid authorization (login failed)"),
    "HY008": (FATAL, "operation cancelled"),
}

# SQLSTATE classes for codes not listed above.
_SQLSTATE_CLASSES: dict[str, tuple[Fault, str]] = {
    "08": (IN_DOUBT, "connection exception"),
    "22": (FATAL, "data exception"),
    "23": (FATAL, "integrity constraint violation"),
    "28": (FATAL, "invalid authorization"),
    "42": (FATAL, "syntax error or access violation"),
    "IM": (FATAL, "ODBC driver manager: driver or data source not found"),
}

# The drivers' own messages for an operation on a closed connection or cursor, raised
# before anything is sent; compared whole. (python-tds raises shared instances, compared
# by identity in _pytds_closed.)
_CLOSED_MESSAGES = frozenset(
    {
        # pymssql (InterfaceError)
        "Not connected to any MS SQL server",
        "Connection is closed.",
        "Cursor is closed.",
        # pyodbc (ProgrammingError, args[1])
        "Attempt to use a closed connection.",
        "Attempt to use a closed cursor.",
        "The cursor's connection has been closed.",
        # mssql-python (driver_error)
        "Connection is closed",
        "Cannot create cursor on closed connection",
        "Cannot commit on a closed connection",
        "Cannot rollback on a closed connection",
        "Operation cannot be performed: The cursor is closed.",
    }
)

# pyodbc's first diagnostic record ends "(native) (SQLFunctionW)".
_PYODBC_NATIVE = re.compile(r"\((-?\d+)\) \((SQL\w+)\)")


# -- Babelfish for PostgreSQL -----------------------------------------------------------------
# Babelfish (Aurora PostgreSQL's SQL Server compatibility, 4.2) where it differs from SQL
# Server (SQLSERVER-FACTS.md), and what tether does about each. One row per difference;
# ``Babelfish.traits`` and ``is_babelfish`` below are how code reads it.


@dataclass(frozen=True, slots=True)
class Traits:
    """What a SQL Server-compatible server does, where servers differ."""

    # @@TEXTSIZE exists (Babelfish: "function sys.textsize() does not exist", 33557097).
    # tether: the login capture of FreeTDS and pymssql leaves TEXTSIZE out (DEBUG log).
    textsize: bool = True
    # SET LANGUAGE N'us_english' parses (Babelfish: a syntax error; us_english and
    # [us_english] work). tether: always writes SET LANGUAGE [name].
    language_n_literal: bool = True
    # The TDS reset flag 0x10 (RESETCONNECTIONSKIPTRAN) is honoured (Babelfish: refused by
    # design, and the session ended). tether: 0x08 and the restore batch instead.
    reset_skip_tran: bool = True
    # With implicit transactions (autocommit off), a transaction begins at the first
    # statement that needs one (Babelfish: at login and after every commit, eagerly).
    eager_implicit_transactions: bool = False
    # SET TRANSACTION ISOLATION LEVEL inside a transaction that has read is allowed
    # (Babelfish: refused with 33557097, "escape_hatch_set_transaction_isolation_level").
    isolation_after_read: bool = True
    # The error numbers of a lock timeout and of a deadlock victim. Babelfish reports a
    # lock timeout as its generic 33557097 with PostgreSQL's message (read through
    # _BABELFISH_MESSAGES into 1222); a deadlock as 1205, as SQL Server.
    lock_timeout_error: int = 1222
    deadlock_error: int = 1205


SQLSERVER_TRAITS = Traits()
BABELFISH_TRAITS = Traits(textsize=False, language_n_literal=False, reset_skip_tran=False,
                          eager_implicit_transactions=True, isolation_after_read=False,
                          lock_timeout_error=33557097)  # fmt: skip

BABELFISH_GENERIC = 33557097  # whatever PostgreSQL raised that Babelfish maps to no SQL Server number
# Babelfish's generic error, by PostgreSQL's (fixed, C-locale) message -> the SQL Server
# number it stands for, so that the table above decides. Read only for BABELFISH_GENERIC.
_BABELFISH_MESSAGES = {
    "canceling statement due to lock timeout": 1222,  # PostgreSQL 55P03, lock_timeout
}


# The server's own text -> its number, for mssql-python, which reports no number: SQL
# Server's us_english text (a session whose language is another gets its own, which stays
# unknown: FATAL) and Babelfish's PostgreSQL text. Only what a retry must tell apart.
_NUMBERS_BY_TEXT = {
    "Lock request time out period exceeded": 1222,
    **_BABELFISH_MESSAGES,
}


def is_babelfish(version: str | None) -> bool:
    """Whether ``@@VERSION``'s text names Babelfish (``SERVERPROPERTY('Babelfish')`` is 1
    there too; NULL on SQL Server)."""
    return bool(version) and str(version).lstrip().lower().startswith("babelfish")


def traits_of(version: str | None) -> Traits:
    """The differences of the server whose ``@@VERSION`` is ``version``."""
    return BABELFISH_TRAITS if is_babelfish(version) else SQLSERVER_TRAITS


def classify(exc: BaseException) -> Classification:
    """What ``exc``, raised by a SQL Server driver (or by tether around one), means for a
    retry. tether's :class:`~tether.ConnectError` is CONNECT unless its cause is final."""
    if isinstance(exc, ConnectError):
        return _connect_error(exc)
    if _closed_before_sending(exc):
        return Classification(CONNECT, "the connection was already closed: nothing was sent")
    if _pytds_class(exc, "tds_base", "ClosedConnectionError"):
        return Classification(IN_DOUBT, "the server closed the connection (python-tds: idle or busy)")
    number, sqlstate = _codes(exc)
    by_state = _SQLSTATES.get(sqlstate or "") or _SQLSTATE_CLASSES.get((sqlstate or "")[:2])
    if number in _NUMBERS:
        fault, meaning = _NUMBERS[number]
        if not (fault is IN_DOUBT and by_state and by_state[0] is CONNECT):
            return Classification(fault, f"error {number}: {meaning}", _RETRY_AFTER_S.get(number))
        # A network error while the driver was still connecting (SQLSTATE 08001): the
        # connection never existed, so no request did either.
    if by_state is not None:
        return Classification(by_state[0], f"SQLSTATE {sqlstate}: {by_state[1]}")
    if number:
        return Classification(FATAL, f"error {number}: the server answered with an error")
    return _without_codes(exc, sqlstate)


def refused(exc: BaseException) -> bool:
    """The server answered a request with an error number and the session goes on: what
    a query the server cannot run (a missing function) raises."""
    return _codes(exc)[0] is not None and not dialect.is_disconnect(exc)


def _connect_error(exc: ConnectError) -> Classification:
    cause = exc.__cause__
    if cause is not None and not isinstance(cause, ConnectError):
        found = classify(cause)
        if found.fault is FATAL:
            return found
    return Classification(CONNECT, "could not connect: nothing was sent")


def _codes(exc: BaseException) -> tuple[int | None, str | None]:
    """The SQL Server error number and the ODBC SQLSTATE, as far as the driver tells."""
    args = exc.args
    if _is(exc, "pyodbc", "Error"):
        if len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
            return _pyodbc_native(args[0], args[1]), args[0]
        return None, None
    if _is(exc, "mssql_python.exceptions", "Exception"):
        sqlstate = _mssql_python_sqlstates().get(getattr(exc, "driver_error", None))
        return _number_by_text(getattr(exc, "ddbc_error", None)), sqlstate
    number = getattr(exc, "number", None)  # python-tds, and pymssql's _mssql exceptions
    if isinstance(number, int) and number and not isinstance(exc, OSError):
        text = args[0] if args and isinstance(args[0], str) else getattr(exc, "message", None)
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        return _babelfish_number(number, text), None
    if (_is(exc, "pymssql", "Error") or _is(exc, "pymssql._mssql", "MSSQLException")) and args:
        pair = args[0] if isinstance(args[0], tuple) and args[0] else args
        first = pair[0]
        text = pair[1] if len(pair) > 1 else None
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        return (_babelfish_number(first, text) if isinstance(first, int) else None), None
    return None, None


def _pyodbc_native(sqlstate: str, message: str) -> int | None:
    if not message.startswith(f"[{sqlstate}]"):
        return None  # raised by pyodbc itself, not from a diagnostic record
    match = _PYODBC_NATIVE.search(message)
    if not match:
        return None
    # The server's text follows the last "[...]" of the driver's prefix ("[FreeTDS][SQL Server]").
    return _babelfish_number(int(match.group(1)), message[: match.start()].rsplit("]", 1)[-1])


def _number_by_text(ddbc_error: object) -> int | None:
    """mssql-python drops the server's error number; where the server's text (after the
    driver's "[Microsoft][SQL Server]") is one of _NUMBERS_BY_TEXT, its number."""
    if not isinstance(ddbc_error, str) or "[SQL Server]" not in ddbc_error:
        return None
    said = ddbc_error.rsplit("]", 1)[-1]
    return next((n for text, n in _NUMBERS_BY_TEXT.items() if said.startswith(text)), None)


def _babelfish_number(number: int, text: object) -> int:
    """The SQL Server number that Babelfish's generic error stands for, by PostgreSQL's
    message at the start of the server's text; any other number as it is."""
    if number != BABELFISH_GENERIC or not isinstance(text, str):
        return number
    return next((n for said, n in _BABELFISH_MESSAGES.items() if text.startswith(said)), number)


@lru_cache(maxsize=1)
def _mssql_python_sqlstates() -> dict[object, str]:
    """mssql-python's fixed description of each SQLSTATE we know, back to the SQLSTATE."""
    module: Any = sys.modules.get("mssql_python.exceptions")
    if module is None:
        return {}
    found: dict[object, str] = {}
    for sqlstate in (*_SQLSTATES, "42000", "23000", "22000", "28000"):
        exc = module.sqlstate_to_exception(sqlstate, "")
        if exc is not None:
            found[exc.driver_error] = sqlstate
    return found


def _closed_before_sending(exc: BaseException) -> bool:
    if _pytds_closed(exc):
        return True
    if _is(exc, "pymssql", "InterfaceError"):
        said = exc.args[0] if exc.args else None
    elif _is(exc, "pyodbc", "Error"):
        said = exc.args[1] if len(exc.args) >= 2 else None
    elif _is(exc, "mssql_python.exceptions", "Exception"):
        said = getattr(exc, "driver_error", None)
    else:
        return False
    return isinstance(said, str) and said in _CLOSED_MESSAGES


def _pytds_closed(exc: BaseException) -> bool:
    connection: Any = sys.modules.get("pytds.connection")
    cursor: Any = sys.modules.get("pytds.cursor")
    return (connection is not None and exc is connection.BaseConnection._connection_closed_exception) or (
        cursor is not None and exc is cursor.BaseCursor._cursor_closed_exception
    )


def _without_codes(exc: BaseException, sqlstate: str | None) -> Classification:
    """No number and no SQLSTATE we know: the exception's class decides."""
    where = f"SQLSTATE {sqlstate}: " if sqlstate else ""
    if isinstance(exc, OSError):  # python-tds's socket errors and timeouts
        return Classification(IN_DOUBT, f"socket error ({type(exc).__name__}): the request may have run")
    if _broken_link_class(exc):
        return Classification(IN_DOUBT, f"{where}the driver failed without a server error number")
    return Classification(FATAL, f"{where}{type(exc).__name__} without a retryable error number")


def _broken_link_class(exc: BaseException) -> bool:
    # The drivers' generic classes, for failures with no server reply: pyodbc's base Error
    # (FreeTDS reports a session killed while idle as HY000 "Unknown error", native 0),
    # OperationalError everywhere, and python-tds's InterfaceError (a malformed stream,
    # after the request was sent).
    for module in ("pyodbc", "pymssql", "pytds", "mssql_python.exceptions"):
        if _is(exc, module, "OperationalError"):
            return True
    pyodbc: Any = sys.modules.get("pyodbc")
    if pyodbc is not None and type(exc) in (pyodbc.Error, pyodbc.DatabaseError):
        return True
    return _pytds_class(exc, "tds_base", "InterfaceError") or _pytds_class(exc, "tds_base", "Error")


def _is(exc: BaseException, module_name: str, class_name: str) -> bool:
    module = sys.modules.get(module_name)
    cls = getattr(module, class_name, None) if module is not None else None
    return isinstance(cls, type) and isinstance(exc, cls)


def _pytds_class(exc: BaseException, submodule: str, class_name: str) -> bool:
    module = sys.modules.get(f"pytds.{submodule}")
    cls = getattr(module, class_name, None) if module is not None else None
    if not isinstance(cls, type) or not isinstance(exc, cls):
        return False
    return class_name != "Error" or type(exc) is cls  # the base class only as itself


class SQLServer(BaseDialect):
    name = "sqlserver"
    default_port = 1433
    traits = SQLSERVER_TRAITS
    ping_sql = "SELECT 1"
    # One batch, one round trip. The driver's own reset (the TDS reset flag, or
    # sp_reset_connection) drops temp tables and restores SET options but leaves the
    # isolation level (SQLSERVER-FACTS.md), so it is set here explicitly.
    reset_sql: tuple[str, ...] = (
        "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION;"
        " SET TRANSACTION ISOLATION LEVEL READ COMMITTED;"
        " SET XACT_ABORT OFF; SET IMPLICIT_TRANSACTIONS OFF; SET NOCOUNT OFF;"
        " SET ROWCOUNT 0; SET LOCK_TIMEOUT -1; SET DEADLOCK_PRIORITY NORMAL",
    )
    replays = True

    # What a recovered session must replay, or why it cannot (idle resiliency), and what
    # the batch leaves in the session for the reset: the cached reader itself. On Azure
    # SQL Database a USE cannot be replayed: ``mssql_read_azure`` reads it so.
    read = staticmethod(mssql_read)

    def idle_bytes_mean_dead(self, data: bytes) -> bool:
        # TDS is strictly request-reply: a server sends nothing unsolicited to an idle
        # session, so any bytes (or EOF) mean it is going away.
        return True

    def is_disconnect(self, exc: BaseException) -> bool:
        verdict = classify(exc)
        if verdict.fault in (CONNECT, IN_DOUBT):
            return True
        return verdict.fault is TRANSIENT and _codes(exc)[0] not in _SESSION_SURVIVES

    def classify(self, exc: BaseException) -> Classification:
        return classify(exc)


class AzureSQL(SQLServer):
    """Azure SQL endpoints: a session that ran ``USE`` cannot be rebuilt (a reconnect
    lands in the login database, and Azure SQL Database cannot switch)."""

    read = staticmethod(mssql_read_azure)


class Babelfish(SQLServer):
    """Babelfish for PostgreSQL: SQL Server's rules with the differences of ``traits``
    (the error numbers are read for every SQL Server connection, whatever the server)."""

    traits = BABELFISH_TRAITS


dialect = SQLServer()
azure = AzureSQL()
babelfish = Babelfish()
