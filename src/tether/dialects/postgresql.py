"""PostgreSQL: session effects, the idle goodbye, and disconnect errors."""

from __future__ import annotations

from functools import lru_cache

from ..sql import QUOTED, Effect, Unscannable, statements
from ._effects_pg import pg_effects

# Statements whose first word changes session state that outlives the transaction.
# ``SET LOCAL`` and ``SET TRANSACTION`` end with the transaction and are handled below.
_SESSION_STATEMENTS = {
    "set": "SET of a session setting",
    "reset": "RESET of a setting",
    "prepare": "prepared statement",
    "deallocate": "dropped prepared statement",
    "listen": "LISTEN channel",
    "unlisten": "UNLISTEN",
    "load": "loaded library",
    "declare": "cursor (may be WITH HOLD)",
    "discard": "DISCARD",
    "do": "anonymous code block (may do anything)",
    "call": "procedure call (may do anything)",
}

# Functions whose call changes the session (a SELECT is not always harmless).
_SESSION_FUNCTIONS = {
    "set_config": "set_config() of a setting",
    "pg_advisory_lock": "session advisory lock",
    "pg_advisory_lock_shared": "session advisory lock",
    "pg_try_advisory_lock": "session advisory lock",
    "pg_try_advisory_lock_shared": "session advisory lock",
    "dblink_connect": "dblink connection",
}

_TEMP = {"temp", "temporary"}

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


class PostgreSQL:
    name = "postgresql"
    default_port = 5432
    ping_sql = "SELECT 1"
    # DISCARD ALL: SET SESSION AUTHORIZATION DEFAULT, RESET ALL, DEALLOCATE ALL,
    # CLOSE ALL, UNLISTEN *, advisory unlock all, DISCARD TEMP/PLANS/SEQUENCES.
    reset_sql = ("DISCARD ALL",)
    # Commit safety (pool.transaction): BEGIN and the transaction id (assigned now) in one
    # round trip, and the backend, for asking txid_status() after a lost COMMIT reply.
    begin_sql = "BEGIN; SELECT txid_current(), pg_backend_pid()"
    commit_status_sql = "SELECT txid_status(%s)"
    terminate_sql = "SELECT pg_terminate_backend(%s)"

    def session_changes(self, sql: str) -> tuple[str, ...]:
        """What each statement of ``sql`` leaves in the session, if anything."""
        return _session_changes(sql)

    def session_effects(self, sql: str) -> tuple[Effect, ...]:
        """What a recovered session must replay, or why it cannot (idle resiliency)."""
        return pg_effects(sql)

    def idle_bytes_mean_dead(self, data: bytes) -> bool:
        return data[:1] == _GOODBYE

    def is_disconnect(self, exc: BaseException) -> bool:
        # A socket that dies without a message carries no SQLSTATE; the driver's
        # transaction status (BROKEN) tells the pool about those.
        return getattr(exc, "sqlstate", None) in _DISCONNECT_SQLSTATES

    def classify(self, exc: BaseException) -> Classification:
        return classify(exc)


@lru_cache(maxsize=1024)
def _session_changes(sql: str) -> tuple[str, ...]:
    # Cached: the proxy asks for every statement, and applications repeat their texts.
    try:
        parsed = statements(sql, dialect="postgresql")
    except Unscannable:
        return ("statement that could not be scanned",)
    found = (_statement_change(words) for words in parsed)
    return tuple(reason for reason in found if reason)


def _statement_change(words: tuple[str, ...]) -> str | None:
    first = words[0]
    if first == "set" and len(words) > 1 and words[1] in ("local", "transaction", "constraints"):
        return None  # transaction-scoped
    if first in _SESSION_STATEMENTS:
        return _SESSION_STATEMENTS[first]
    if first == "create" and _TEMP & set(words[1:4]):
        return "temporary object"
    if first in ("select", "with") and "into" in words:
        i = words.index("into")
        if _TEMP & set(words[i + 1 : i + 3]):
            return "temporary table (SELECT INTO)"
    for word in words:
        if word != QUOTED and word in _SESSION_FUNCTIONS:
            return _SESSION_FUNCTIONS[word]
    return None


dialect = PostgreSQL()


from ._classify_pg import Classification, classify  # noqa: E402 - the table lives in its own module
