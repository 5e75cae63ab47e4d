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
"""

from __future__ import annotations

from typing import Any

from psycopg import pq

from ..vocab._scan import Unscannable, statements

IDLE = int(pq.TransactionStatus.IDLE)
QUIET_SQL = (
    "SELECT pg_current_xact_id_if_assigned() IS NULL"
    " AND current_setting('transaction_isolation') <> 'serializable'"
)
_QUIET_SINCE = 130000  # pg_current_xact_id_if_assigned(): PostgreSQL 13
_NOTIFIES = frozenset({"notify", "pg_notify"})


def opens_with(sql: Any) -> bool:
    """Whether ``sql`` can run in a pipeline behind the BEGIN: one statement, not COPY."""
    words = _one_statement(sql)
    return words is not None and words[0] != "copy"


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
