"""PostgreSQL: session effects, the idle goodbye, and disconnect errors."""

from __future__ import annotations

from ._base import BaseDialect
from ._effects_pg import pg_read, pooled_read

# First bytes of backend messages that may arrive on an idle connection
# (protocol: 'E' ErrorResponse, 'N' NoticeResponse, 'A' NotificationResponse,
# 'S' ParameterStatus). A terminated backend sends E (FATAL 57P01) and closes.
_GOODBYE = b"E"

# SQLSTATE classes and codes that mean the connection is gone.
_DISCONNECT_SQLSTATES = {
    "57P01": "admin_shutdown: the backend was terminated",
    "57P02": "crash_shutdown",
    "57P03": "cannot_connect_now: the server is starting or stopping",
    "08000": "connection_exception",
    "08003": "connection_does_not_exist",
    "08006": "connection_failure",
    "08001": "sqlclient_unable_to_establish_sqlconnection",
    "08004": "sqlserver_rejected_establishment_of_sqlconnection",
}


class PostgreSQL(BaseDialect):
    name = "postgresql"
    default_port = 5432
    ping_sql = "SELECT 1"
    # DISCARD ALL: SET SESSION AUTHORIZATION DEFAULT, RESET ALL, DEALLOCATE ALL,
    # CLOSE ALL, UNLISTEN *, advisory unlock all, DISCARD TEMP/PLANS/SEQUENCES.
    reset_sql = ("DISCARD ALL",)
    # Commit safety (pool.transaction): BEGIN and the transaction id (assigned now) in one
    # round trip, and the backend, for asking txid_status() after a lost COMMIT reply.
    begin_sql = "BEGIN; SELECT txid_current(), pg_backend_pid()"
    mark_sql = "SELECT txid_current(), pg_backend_pid()"  # pool.transaction sends it with the BEGIN
    commit_status_sql = "SELECT txid_status(%s)"
    terminate_sql = "SELECT pg_terminate_backend(%s)"
    replays = True

    # What a recovered session must replay, or why it cannot (idle resiliency), and what
    # each statement leaves in the session for the reset: the cached reader itself, so
    # the statement path makes no method call.
    read = staticmethod(pg_read)

    def idle_bytes_mean_dead(self, data: bytes) -> bool:
        return data[:1] == _GOODBYE

    def is_disconnect(self, exc: BaseException) -> bool:
        # A socket that dies without a message carries no SQLSTATE; the driver's
        # transaction status (BROKEN) tells the pool about those.
        return getattr(exc, "sqlstate", None) in _DISCONNECT_SQLSTATES

    def classify(self, exc: BaseException) -> Classification:
        return classify(exc)


dialect = PostgreSQL()


class PostgreSQLBehindTransactionPooler(PostgreSQL):
    """PostgreSQL through PgBouncer's transaction (or statement) pooling: each transaction
    may run on another server connection, so nothing of a session outlives a transaction.

    What a session statement leaves (a SET, a PREPARE, a LISTEN, a temporary table) stays
    on a server connection that now belongs to PgBouncer: idle resiliency cannot bring it
    back (a recovery that finds any raises ``SessionLost`` naming it), and tether's reset
    has nothing of it to undo (``SET LOCAL`` is the form that works here).
    """

    name = "postgresql (transaction pooling)"
    read = staticmethod(pooled_read)


behind_transaction_pooler = PostgreSQLBehindTransactionPooler()


from ._classify_pg import Classification, classify  # noqa: E402 - the table lives in its own module
