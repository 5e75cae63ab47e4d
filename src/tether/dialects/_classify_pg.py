"""PostgreSQL's errors, classified for retry: one table of SQLSTATEs and one ``classify``.

Written for psycopg 3, whose exceptions carry the server's SQLSTATE as ``exc.sqlstate``.
The server's SQLSTATE decides wherever there is one; errors without one come from
psycopg or libpq and are told apart by their class. The module never imports psycopg:
if psycopg is not loaded, no psycopg exception can exist.

What PostgreSQL does when a backend is told to stop, which decides CONNECT versus
IN_DOUBT below (``pg_terminate_backend``, a fast shutdown; see ``die()`` and
``ProcessInterrupts()`` in ``src/backend/tcop/postgres.c``):

- idle backend: it sends ``FATAL 57P01`` at once and exits. The client reads that message
  as the reply to its next query, which the backend never read, let alone ran.
- busy backend: the running query is cancelled, its transaction rolled back, and the same
  FATAL is the reply. Nothing of it committed...
- ...except in one window: interrupts are held while a transaction commits, and served at
  the next check. If that check comes after the commit but before the client has read the
  reply (statistics reporting runs before ReadyForQuery), the client reads CommandComplete
  and then ``FATAL 57P01`` for the same query, and psycopg raises the FATAL: the COMMIT, or
  the autocommit statement, did take effect.

So 57P01 is IN_DOUBT: a unit of work that had not sent COMMIT lost nothing that committed
and can run again; one that had must resolve the outcome (``txid_status``), never re-send.
The pool's zero-round-trip check at checkout finds most idle victims before they are used.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from ..errors import ConnectError
from ..vocab import Classification, Fault

__all__ = ["Classification", "classify"]

CONNECT, IN_DOUBT, TRANSIENT, FATAL = Fault.CONNECT, Fault.IN_DOUBT, Fault.TRANSIENT, Fault.FATAL

# SQLSTATE -> (fault, meaning). Codes from the PostgreSQL manual, appendix A.
_SQLSTATES: dict[str, tuple[Fault, str]] = {
    # -- the server asks for a retry: the transaction was rolled back, run it all again --
    "40001": (TRANSIENT, "serialization_failure: rolled back; run the transaction again"),
    "40P01": (TRANSIENT, "deadlock_detected: rolled back as the victim; run the transaction again"),
    "55P03": (TRANSIENT, "lock_not_available (NOWAIT or lock_timeout): the statement was cancelled"),
    "53200": (TRANSIENT, "out_of_memory: the statement failed; memory pressure may pass"),
    # -- connection refused at startup: no session existed, so nothing ran --
    "53300": (CONNECT, "too_many_connections: refused at login; retry after a pause"),
    "57P03": (CONNECT, "cannot_connect_now: the server is starting, stopping or recovering"),
    "08001": (CONNECT, "sqlclient_unable_to_establish_sqlconnection"),
    "08004": (CONNECT, "sqlserver_rejected_establishment_of_sqlconnection"),
    "08003": (CONNECT, "connection_does_not_exist: nothing was sent"),
    # -- sent while the server was idle-timing the session: the next query was never read --
    "57P05": (CONNECT, "idle_session_timeout: the server closed the idle session"),
    "25P03": (CONNECT, "idle_in_transaction_session_timeout: the transaction was rolled back"),
    # -- the session ended while a request may have been running --
    "57P01": (IN_DOUBT, "admin_shutdown: the backend was terminated (see the module docstring)"),
    "57P02": (IN_DOUBT, "crash_shutdown: the backend quit at once, even after a commit was flushed"),
    "25P04": (IN_DOUBT, "transaction_timeout: the session was ended while the transaction ran"),
    "08000": (IN_DOUBT, "connection_exception"),
    "08006": (IN_DOUBT, "connection_failure"),
    "08007": (IN_DOUBT, "transaction_resolution_unknown"),
    "40003": (IN_DOUBT, "statement_completion_unknown"),
    # -- final: running it again fails again --
    "08P01": (FATAL, "protocol_violation: a client bug"),
    "57014": (FATAL, "query_canceled (statement_timeout or a cancel request): not retried blindly"),
    "57P04": (FATAL, "database_dropped"),
    "53000": (FATAL, "insufficient_resources"),
    "53100": (FATAL, "disk_full: does not clear by itself"),
    "53400": (FATAL, "configuration_limit_exceeded"),
    "28000": (FATAL, "invalid_authorization_specification (no such role, or refused by pg_hba)"),
    "28P01": (FATAL, "invalid_password"),
    "3D000": (FATAL, "invalid_catalog_name: the database does not exist"),
    "40002": (FATAL, "transaction_integrity_constraint_violation (a deferred constraint at COMMIT)"),
}

# Classes (the first two characters) for codes not listed above.
_CLASSES: dict[str, tuple[Fault, str]] = {
    "08": (IN_DOUBT, "connection exception"),
    "22": (FATAL, "data exception"),
    "23": (FATAL, "integrity constraint violation"),
    "28": (FATAL, "invalid authorization"),
    "3D": (FATAL, "invalid catalog name"),
    "42": (FATAL, "syntax error or access rule violation"),
    "53": (FATAL, "insufficient resources"),
}

# Any other SQLSTATE: the server answered with an error, so the statement failed there and
# would fail the same way again.
_OTHER_SQLSTATE = (FATAL, "server error")

# The server's answer to a startup it refuses for good (src/backend/libpq/auth.c and
# utils/init/postinit.c), and libpq's and psycopg's own for a connection that cannot be
# made as asked: no retry mends these, so a checkout fails at once instead of waiting out
# its timeout. libpq keeps a startup error's SQLSTATE to itself (psycopg#1188), so the text
# is read, the server's in English: a server whose lc_messages is another language reads
# as a fault that can heal (the checkout waits, then says so with the message).
_LOGIN_REFUSALS = tuple((re.compile(pattern), meaning) for pattern, meaning in (
    (r"FATAL:  password authentication failed for user", "28P01 invalid_password"),
    (r"FATAL:  \w+ authentication failed for user", "28000 authentication failed (peer, ident, ...)"),
    (r"FATAL:  no pg_hba\.conf entry for", "28000 no pg_hba.conf entry: the server refuses this login"),
    (r"FATAL:  pg_hba\.conf rejects connection", "28000 pg_hba.conf rejects this login"),
    (r'FATAL:  role ".*" does not exist', "28000 the role does not exist"),
    (r'FATAL:  role ".*" is not permitted to log in', "28000 the role may not log in"),
    (r'FATAL:  database ".*" does not exist', "3D000 invalid_catalog_name: the database does not exist"),
    (r"FATAL:  permission denied for database", "42501 no CONNECT privilege on the database"),
    (r"FATAL:  unrecognized configuration parameter", "42704 an unknown startup parameter"),
    (r"FATAL:  invalid value for parameter", "22023 an invalid startup parameter"),
    # PgBouncer's own refusals of a client's login (src/client.c of pgbouncer 1.18)
    (r"FATAL:  no such database: ", "PgBouncer: the database is not in its [databases]"),
    (r"FATAL:  no such user: ", "PgBouncer: the user is unknown to it"),
    (r"FATAL:  (?:password|SASL|SCRAM[^\n]*) authentication failed", "PgBouncer: the password is wrong"),
    (r"FATAL:  unsupported startup parameter", "PgBouncer: a startup parameter it does not pass on"),
    (r"failed to resolve host .*\[Errno -2\]", "the host name does not resolve"),
    (r"server does not support SSL, but SSL was required", "sslmode requires TLS the server lacks"),
    (r"certificate verify failed|SSL error: certificate", "the server's certificate is not trusted"),
    (r"invalid (?:connection option|sslmode value|integer value)", "a malformed connection option"),
))

# psycopg's own message for an operation on a closed connection (``_check_connection_ok``,
# ``FinishedPGconn``): raised before anything is sent. A constant of psycopg, compared
# whole, never server text.
_PSYCOPG_CLOSED = "the connection is closed"
_PSYCOPG_UNRESOLVED = "failed to resolve host"  # its connect(), before libpq: no pgconn yet


def classify(exc: BaseException) -> Classification:
    """What ``exc``, raised by psycopg (or by tether around it), means for a retry.

    Connection failures: tether raises :class:`tether.ConnectError` when it cannot open a
    connection, and that is CONNECT (FATAL if its cause is). psycopg itself gives no
    SQLSTATE for a failed connect (libpq does not expose it, psycopg#1188), so a wrong
    password reads as CONNECT too; the connect-retry policy (count, login timeout) bounds
    it. A raw psycopg ``connect()`` failure is recognised by the half-open ``pgconn`` it
    carries (no backend PID: the startup never finished), not by its text.
    """
    if isinstance(exc, ConnectError):
        return _connect_error(exc)
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate == "08P01":
        text = str(exc)
        for words, fault, meaning in _PGBOUNCER:
            if words in text:
                return Classification(fault, f"SQLSTATE 08P01 {meaning}")
    if isinstance(sqlstate, str) and sqlstate:
        return _by_sqlstate(sqlstate)
    return _without_sqlstate(exc)


def _connect_error(exc: ConnectError) -> Classification:
    cause = exc.__cause__
    if cause is not None and not isinstance(cause, ConnectError):
        found = classify(cause)
        if found.fault is FATAL:
            return found
    return Classification(CONNECT, "could not connect: nothing was sent")


# PgBouncer answers for itself with 08P01 (protocol_violation), which from PostgreSQL means a
# client bug: its own messages say what happened to the query (src/*.c of pgbouncer 1.18).
_PGBOUNCER = (
    ("query_wait_timeout", CONNECT, "PgBouncer: no server connection came free; the query never ran"),
    ("server login has been failing", CONNECT, "PgBouncer: the server refuses its logins for now"),
    ("pgbouncer cannot connect to server", CONNECT, "PgBouncer: the server cannot be reached"),
    ("no more connections allowed", CONNECT, "PgBouncer: max_client_conn reached"),
    ("database removed", IN_DOUBT, "PgBouncer: the database was KILLed while the query may have run"),
    ("server conn crashed", IN_DOUBT, "PgBouncer: its server connection died under the query"),
)


def _by_sqlstate(sqlstate: str) -> Classification:
    fault, meaning = _SQLSTATES.get(sqlstate) or _CLASSES.get(sqlstate[:2]) or _OTHER_SQLSTATE
    return Classification(fault, f"SQLSTATE {sqlstate} {meaning}")


def _without_sqlstate(exc: BaseException) -> Classification:
    psycopg: Any = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(exc, psycopg.Error):
        return _psycopg_error(exc, psycopg)
    if isinstance(exc, OSError):
        return Classification(IN_DOUBT, f"socket error ({type(exc).__name__}): the request may have run")
    return Classification(FATAL, f"not a database error: {type(exc).__name__}")


def _psycopg_error(exc: BaseException, psycopg: Any) -> Classification:
    if isinstance(exc, psycopg.InterfaceError):
        return Classification(CONNECT, "psycopg refused the operation before sending it")
    if isinstance(exc, psycopg.InternalError) and _SEVERAL_RESULTS.match(str(exc)):
        # One command, several results: an error and then the connection's end (PgBouncer's
        # "server conn crashed?" as its server died under a COMMIT). The request was sent.
        return Classification(IN_DOUBT, "several results for one command: the request may have run")
    if not isinstance(exc, psycopg.OperationalError):
        # ProgrammingError, DataError...: raised by psycopg itself (a bad parameter, a
        # value it cannot load), so retrying meets the same.
        return Classification(FATAL, f"psycopg {type(exc).__name__} without a server SQLSTATE")
    if (isinstance(exc, psycopg.errors.ConnectionTimeout) or _never_connected(exc)
            or str(exc).startswith(_PSYCOPG_UNRESOLVED)):
        refused = _refused_at_login(str(exc))
        if refused:
            return Classification(FATAL, f"connect() refused for good: {refused}")
        return Classification(CONNECT, "connect() failed: the session never started")
    if str(exc) == _PSYCOPG_CLOSED:
        return Classification(CONNECT, "the connection was already closed: nothing was sent")
    return Classification(IN_DOUBT, "the connection broke with no reply: the request may have run")


_SEVERAL_RESULTS = re.compile(r"received \d+ results from command ")  # psycopg's _exec_command


def _refused_at_login(text: str) -> str | None:
    return next((meaning for pattern, meaning in _LOGIN_REFUSALS if pattern.search(text)), None)


def _never_connected(exc: BaseException) -> bool:
    # psycopg attaches the PGconn only to errors raised while connecting; its backend PID
    # arrives in the last startup message, so 0 means the session never began.
    pgconn = getattr(exc, "pgconn", None)
    return pgconn is not None and getattr(pgconn, "backend_pid", None) == 0
