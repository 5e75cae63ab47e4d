"""MySQL and MariaDB: error classification, session reset, session effects.

The error number comes from the driver's exception: pymysql and mysqlclient (MySQLdb)
raise ``args == (code, message)``; mysql-connector and MariaDB Connector/Python carry
``exc.errno``. Codes below 2000 are the server's; 2000-2999 are the client library's
(CR_*), which pymysql reproduces. Nothing here imports a driver.

Which client errors mean "not sent": every client raises 2006 (server has gone away) when
it could not write the command (pymysql ``_write_bytes``; libmysqlclient and Connector/C
when the write, or the write after a reconnect, fails, or the connection was already
gone), and the server never runs an incomplete command packet. 2013 (lost connection
during query) is raised while waiting for the reply: the command was sent and may have
run, including a COMMIT. A session killed while idle and then used gives 2013 too when
the write still succeeded, so pymysql cannot tell idle from busy there: IN_DOUBT.
"""

from __future__ import annotations

import sys

from ..errors import ConnectError
from ..vocab import Classification, Fault
from ._base import BaseDialect, unmendable_connect
from ._effects_mysql import mysql_read

CONNECT, IN_DOUBT, TRANSIENT, FATAL = Fault.CONNECT, Fault.IN_DOUBT, Fault.TRANSIENT, Fault.FATAL

# Error code -> (fault, meaning). MySQL's and MariaDB's error references.
_CODES: dict[int, tuple[Fault, str]] = {
    # -- the server asks for a retry --
    1213: (TRANSIENT, "ER_LOCK_DEADLOCK: the transaction was rolled back"),
    # innodb_rollback_on_timeout is off by default: only the statement was rolled back,
    # and the unit of work rolls back the rest before running again.
    1205: (TRANSIENT, "ER_LOCK_WAIT_TIMEOUT: lock wait timeout exceeded"),
    3572: (TRANSIENT, "ER_LOCK_NOWAIT: a NOWAIT lock was not available"),
    1637: (TRANSIENT, "ER_TOO_MANY_CONCURRENT_TRXS"),
    3100: (TRANSIENT, "ER_TRANSACTION_ROLLBACK_DURING_COMMIT: Group Replication conflict, rolled back"),
    # -- refused at login, or refused before sending: nothing ran --
    1040: (CONNECT, "ER_CON_COUNT_ERROR: too many connections"),
    1203: (CONNECT, "ER_TOO_MANY_USER_CONNECTIONS"),
    1043: (CONNECT, "ER_HANDSHAKE_ERROR: bad handshake"),
    2002: (CONNECT, "CR_CONNECTION_ERROR: cannot connect through the socket"),
    2003: (CONNECT, "CR_CONN_HOST_ERROR: cannot connect to the host"),
    2005: (CONNECT, "CR_UNKNOWN_HOST"),
    2012: (CONNECT, "CR_SERVER_HANDSHAKE_ERR"),
    2006: (CONNECT, "CR_SERVER_GONE_ERROR: the command could not be written (see the docstring)"),
    # MySQL 8.0.24+ sends 4031 before closing a session idle past wait_timeout: the next
    # command reads it as its reply, and was never run.
    4031: (CONNECT, "ER_CLIENT_INTERACTION_TIMEOUT: disconnected while idle"),
    # -- the session ended while a command may have been running --
    2013: (IN_DOUBT, "CR_SERVER_LOST: lost connection during query"),
    2055: (IN_DOUBT, "CR_SERVER_LOST_EXTENDED: lost connection"),
    1053: (IN_DOUBT, "ER_SERVER_SHUTDOWN: the server is shutting down"),
    1927: (IN_DOUBT, "ER_CONNECTION_KILLED (MariaDB): the connection was killed"),
    3169: (IN_DOUBT, "ER_SESSION_WAS_KILLED"),
    # -- final: running it again fails again --
    1045: (FATAL, "ER_ACCESS_DENIED_ERROR: wrong user or password"),
    1044: (FATAL, "ER_DBACCESS_DENIED_ERROR"),
    1049: (FATAL, "ER_BAD_DB_ERROR: unknown database"),
    1129: (FATAL, "ER_HOST_IS_BLOCKED: needs FLUSH HOSTS"),
    1130: (FATAL, "ER_HOST_NOT_PRIVILEGED"),
    1064: (FATAL, "ER_PARSE_ERROR: syntax error"),
    1146: (FATAL, "ER_NO_SUCH_TABLE"),
    1054: (FATAL, "ER_BAD_FIELD_ERROR: unknown column"),
    1062: (FATAL, "ER_DUP_ENTRY: duplicate key"),
    1451: (FATAL, "ER_ROW_IS_REFERENCED_2: foreign key"),
    1452: (FATAL, "ER_NO_REFERENCED_ROW_2: foreign key"),
    1048: (FATAL, "ER_BAD_NULL_ERROR: column cannot be null"),
    1406: (FATAL, "ER_DATA_TOO_LONG"),
    1366: (FATAL, "ER_TRUNCATED_WRONG_VALUE_FOR_FIELD"),
    1690: (FATAL, "ER_DATA_OUT_OF_RANGE"),
    1142: (FATAL, "ER_TABLEACCESS_DENIED_ERROR"),
    1317: (FATAL, "ER_QUERY_INTERRUPTED: KILL QUERY, not retried blindly"),
    3024: (FATAL, "ER_QUERY_TIMEOUT: max_execution_time exceeded"),
    1969: (FATAL, "ER_STATEMENT_TIMEOUT (MariaDB): max_statement_time exceeded"),
    2014: (FATAL, "CR_COMMANDS_OUT_OF_SYNC: a client bug"),
}

_CANNOT_CONNECT = frozenset({2002, 2003, 2005})

# Errors after which the session is still usable.
_SESSION_SURVIVES = frozenset({1213, 1205, 3572, 1637, 3100})


def classify(exc: BaseException) -> Classification:
    """What ``exc``, raised by a MySQL driver (or by tether around one), means for a retry.
    tether's :class:`~tether.ConnectError` is CONNECT unless its cause is final."""
    if isinstance(exc, ConnectError):
        return _connect_error(exc)
    code = _code(exc)
    if code in _CANNOT_CONNECT:  # PyMySQL wraps the socket's error: a resolver or TLS answer may be final
        unmendable = unmendable_connect(exc)
        if unmendable:
            return Classification(FATAL, f"error {code}: {unmendable}")
    if code in _CODES:
        fault, meaning = _CODES[code]
        return Classification(fault, f"error {code} {meaning}")
    if code == 0 and _is(exc, "pymysql", "InterfaceError"):
        # pymysql's InterfaceError(0, "") when a closed connection is used: nothing sent.
        return Classification(CONNECT, "the connection was already closed: nothing was sent")
    if code:
        return Classification(FATAL, f"error {code}: the server answered with an error")
    if isinstance(exc, OSError):
        return Classification(IN_DOUBT, f"socket error ({type(exc).__name__}): the request may have run")
    if any(_is(exc, m, "OperationalError") for m in ("pymysql", "MySQLdb", "mysql.connector", "mariadb")):
        return Classification(IN_DOUBT, "the driver failed without an error code")
    return Classification(FATAL, f"{type(exc).__name__} without a retryable error code")


def _connect_error(exc: ConnectError) -> Classification:
    cause = exc.__cause__
    if cause is not None and not isinstance(cause, ConnectError):
        found = classify(cause)
        if found.fault is FATAL:
            return found
    return Classification(CONNECT, "could not connect: nothing was sent")


def _code(exc: BaseException) -> int | None:
    if isinstance(exc, OSError):
        return None  # its errno is the operating system's, not MySQL's
    errno = getattr(exc, "errno", None)  # mysql-connector, MariaDB Connector/Python
    if isinstance(errno, int) and errno:
        return errno
    args = exc.args
    if args and isinstance(args[0], int) and not isinstance(args[0], bool):
        return args[0] if _is_mysql_driver_error(exc) else None
    return None


def _is_mysql_driver_error(exc: BaseException) -> bool:
    return _is(exc, "pymysql", "MySQLError") or _is(exc, "MySQLdb", "MySQLError")


def _is(exc: BaseException, module_name: str, class_name: str) -> bool:
    module = sys.modules.get(module_name)
    cls = getattr(module, class_name, None) if module is not None else None
    return isinstance(cls, type) and isinstance(exc, cls)


class MySQL(BaseDialect):
    name = "mysql"
    default_port = 3306
    ping_sql = "SELECT 1"
    # ROLLBACK here; the session reset itself is the protocol's COM_RESET_CONNECTION
    # (temporary tables, user variables, prepared statements, locks, and session
    # variables back to their global values, the isolation level among them), which has
    # no SQL form and is sent by the driver module right after.
    reset_sql = ("ROLLBACK",)
    replays = True

    # What a recovered session must replay, or why it cannot (idle resiliency), and what
    # each statement leaves in the session for the reset: the cached reader itself.
    read = staticmethod(mysql_read)

    def idle_bytes_mean_dead(self, data: bytes) -> bool:
        # The protocol is request-reply: the only unsolicited packets are the error the
        # server sends before closing (MySQL 8.0.24+: 4031 idle timeout; 1053 shutdown).
        # MariaDB 10.11 sends nothing to an idle session it kills (KILL, shutdown): a FIN
        # alone, which the probe reads as CLOSED; past wait_timeout it resets the link.
        return True

    def is_disconnect(self, exc: BaseException) -> bool:
        verdict = classify(exc)
        if verdict.fault in (CONNECT, IN_DOUBT):
            return True
        return verdict.fault is TRANSIENT and _code(exc) not in _SESSION_SURVIVES

    def classify(self, exc: BaseException) -> Classification:
        return classify(exc)


dialect = MySQL()
