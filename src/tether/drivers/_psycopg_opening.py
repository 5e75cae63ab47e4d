"""When psycopg's BEGIN may travel with the first statement, and the quiet check behind it.

In a pipeline psycopg sends every statement with the extended protocol, which takes one
statement per message; outside one, a statement without parameters goes as a simple
query, which may hold several. So only a text the scanner reads as exactly one statement
is pipelined, and never a COPY (libpq cannot leave pipeline mode with a COPY's data
pending). Anything else goes as psycopg sends it: the old three round trips, same results.

The quiet check asks the server, in the same round trip, whether the transaction has a
transaction id yet (any write, row lock or temporary table assigns one) and whether it
runs SERIALIZABLE (whose COMMIT may fail for what was only read). No id and not
serializable: its COMMIT cannot fail but for a broken connection, so the pool may send it
off the caller's path. A NOTIFY gets no id until COMMIT; a statement that names one keeps
the COMMIT on the caller's path (where the application learns whether it went out).

The server answers in order. When the first answer, BEGIN's, is the server's goodbye (a
FATAL of class 57P: the backend was terminated, shut down, or timed out while idle), the
server never began the transaction and ran nothing behind it: the session ended before
the borrower's statement was read (``refused``). Any other first answer proves nothing
about the statement (a kill during it ends the session the same way, after BEGIN's
answer), and neither does a connection that closes without a message.

In autocommit nothing goes ahead of a statement, so nothing tells that goodbye from a
kill during it. Where the proxy asks (a far server, idle resiliency on), an empty
statement leads instead of the BEGIN, in the same pipeline and round trip: its answer is
the first, and the same reasoning holds. The pipeline makes one implicit transaction of
the two, committed at the Sync, as autocommit would commit the statement alone; so only
statements that may run in a transaction block are led (``guarded``).
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg
from psycopg import generators, pq
from psycopg._preparing import Prepare
from psycopg._queries import PostgresClientQuery

from ..vocab._scan import Unscannable, statements

IDLE = int(pq.TransactionStatus.IDLE)
QUIET_SQL = (
    "SELECT pg_current_xact_id_if_assigned() IS NULL"
    " AND current_setting('transaction_isolation') <> 'serializable'"
)
_QUIET = QUIET_SQL.encode()
_SYNC = pq.ExecStatus.PIPELINE_SYNC
_FAILED = pq.ExecStatus.FATAL_ERROR
_SQLSTATE = pq.DiagnosticField.SQLSTATE
_QUIET_SINCE = 130000  # pg_current_xact_id_if_assigned(): PostgreSQL 13
_NOTIFIES = frozenset({"notify", "pg_notify"})
# SQLSTATE class 57P, "operator intervention" that ends the session: 57P01 admin shutdown
# (pg_terminate_backend, a fast shutdown), 57P02 crash shutdown, 57P03 cannot connect now,
# 57P04 database dropped, 57P05 idle session timeout.
_GOODBYE = "57P"
# In autocommit the lead is an empty statement: its answer (EmptyQueryResponse) comes first.
AUTOCOMMIT_LEAD = b""
_IN_ANY_TRANSACTION = frozenset({"select", "insert", "update", "delete", "with", "values", "table", "merge"})


def opens_with(sql: Any) -> bool:
    """Whether ``sql`` can run in a pipeline behind the BEGIN: one statement, not COPY."""
    words = _one_statement(sql)
    return words is not None and words[0] != "copy"


def guarded(sql: Any) -> bool:
    """Whether ``sql``, in autocommit, can run in a pipeline behind the empty lead: one
    statement that may run inside the implicit transaction the pipeline makes of both (not
    VACUUM, CREATE DATABASE, CREATE INDEX CONCURRENTLY, a CALL that commits...)."""
    words = _one_statement(sql)
    return words is not None and words[0] in _IN_ANY_TRANSACTION


def plain(cursor: Any, base: type) -> bool:
    """A client-side cursor whose ``execute`` is psycopg's own (``base``'s): psycopg's, its
    ClientCursor or RawCursor, or a subclass that only adds methods (Django's)."""
    return isinstance(cursor, base) and type(cursor).execute is base.execute  # type: ignore[attr-defined]


def quiet_check(raw: Any, sql: Any) -> bool:
    """Whether to ask the quiet question after ``sql``: a PostgreSQL that has the function
    (not CockroachDB, which reports ``crdb_version``), and no NOTIFY named in the text."""
    pgconn = raw.pgconn
    if pgconn.server_version < _QUIET_SINCE or pgconn.parameter_status(b"crdb_version") is not None:
        return False
    words = _one_statement(sql)
    return words is not None and _NOTIFIES.isdisjoint(words)


def _one_statement(sql: Any) -> tuple[str, ...] | None:
    if type(sql) is not str:  # bytes, psycopg.sql.Composed: sent as psycopg sends them
        return None
    try:
        found = statements(sql)
    except Unscannable:
        return None
    return found[0] if len(found) == 1 and found[0] else None


# -- the pipeline, on libpq (psycopg's internals for what its execute does around it) --------


def start(raw: Any, cursor: Any, sql: str, params: Any, binary: bool | None, mark: str | None,
          check: bool) -> tuple[Any, int, tuple[Any, Any, bytes]]:
    """Queue the lead (BEGIN; in autocommit an empty statement), [mark], the statement
    (prepared as psycopg would prepare it, counted as psycopg counts it), [the quiet check]
    and a Sync: libpq, the number of answers to expect, and what psycopg's prepared-statement
    cache must learn from the statement's. The connection's lock is held."""
    raw._check_connection_ok()
    autocommit = raw._autocommit
    raw._autocommit = True  # the cursor's start adds no BEGIN of its own (and makes no I/O)
    try:
        for _ in cursor._start_query(sql):  # resets the cursor for a new statement
            raise AssertionError("psycopg's cursor waited on the server in autocommit mode")
    finally:
        raw._autocommit = autocommit
    query = cursor._convert_query(sql, params)
    fmt = cursor.format if binary is None else (pq.Format.BINARY if binary else pq.Format.TEXT)
    prep, name = cursor._get_prepared(query, None)
    pgconn = raw.pgconn
    pgconn.enter_pipeline_mode()
    send = pgconn.send_query_params
    send(AUTOCOMMIT_LEAD if autocommit else raw._get_tx_start_command(), None)
    if mark:
        send(mark.encode(), None)
    if type(query) is PostgresClientQuery:  # a ClientCursor's: the values are in the text
        send(query.query, None, result_format=fmt)
    elif prep is Prepare.NO:
        send(query.query, query.params, param_formats=query.formats, param_types=query.types,
             result_format=fmt)
    else:
        if prep is Prepare.SHOULD:
            cursor._send_prepare(name, query)  # an answer of its own
        cursor._send_query_prepared(name, query, binary=binary)
    key = raw._prepared.maybe_add_to_cache(query, prep, name)
    if check:
        send(_QUIET, None)
    pgconn.pipeline_sync()
    answers = 2 + bool(mark) + (prep is Prepare.SHOULD) + check
    return pgconn, answers, (key, prep, name)


def exchange(pgconn: Any, commands: int, found: list[list[Any]]) -> Any:
    """psycopg's generator protocol (``conn.wait``): send, then each statement's results,
    up to the Sync's, into ``found`` (which keeps what came before a failure)."""
    yield from generators.send(pgconn)
    for _ in range(commands + 1):
        results = yield from generators.fetch_many(pgconn)
        if results and results[0].status == _SYNC:
            break
        found.append(results)
    return found


def refused(found: list[list[Any]]) -> bool:
    """Whether BEGIN's answer, the first, was the server's goodbye: nothing behind it ran."""
    if not found or not found[0]:
        return False
    first = found[0][0]
    return first.status == _FAILED and goodbye_code(first.error_field(_SQLSTATE))


def goodbye(exc: BaseException) -> bool:
    """Whether psycopg's error is the server's goodbye (a SQLSTATE of class 57P)."""
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(_GOODBYE)


def goodbye_code(sqlstate: bytes | None) -> bool:
    return sqlstate is not None and sqlstate.decode("ascii", "replace").startswith(_GOODBYE)


def leave(pgconn: Any) -> None:
    """Out of pipeline mode; where results were left unread (an interrupted wait) libpq
    refuses, the transaction status reads ACTIVE, and the pool discards the connection."""
    if pgconn.status != pq.ConnStatus.BAD:
        with contextlib.suppress(psycopg.OperationalError):
            pgconn.exit_pipeline_mode()


def settle(cursor: Any, sql: str, found: list[list[Any]], prepared: tuple[Any, Any, bytes], *,
           mark: bool, check: bool) -> tuple[tuple[Any, ...] | None, bool]:
    """The first error raised as psycopg raises it (BEGIN's, the marker's, the prepare's, the
    statement's), the statement's results given to its cursor and psycopg's cache told;
    the marker and the quiet answer."""
    for results in found:  # in order: the first error is the one psycopg would raise
        if any(result.status == _FAILED for result in results):
            cursor._check_results(results)
    key, prep, name = prepared
    before = 1 + mark + (prep is Prepare.SHOULD)
    if len(found) != before + 1 + check:  # a server or proxy that ended the session mid-way
        raise psycopg.OperationalError(
            f"the server answered {len(found)} of {before + 1 + check} statements; the connection is lost")
    results = found[before]
    if key is not None:
        cursor._conn._prepared.validate(key, prep, name, results)
    cursor._check_results(results)
    cursor._set_results(results)
    cursor._last_query = sql
    marker = None
    if mark:
        row = found[1][0]
        marker = (int(row.get_value(0, 0)), int(row.get_value(0, 1)))
    quiet = check and found[-1][0].status == pq.ExecStatus.TUPLES_OK and found[-1][0].get_value(0, 0) == b"t"
    return marker, quiet
