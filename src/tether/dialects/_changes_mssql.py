"""SQL Server statements read for the pool's reset: what a batch leaves in the session, as
reasons a user can read ("SET of a session option", "temporary table or procedure").

A session with any is reset on return (``SQLServer.reset_sql`` and the driver's own
reset, ``drivers/_mssql_reset.py``, which reads them). T-SQL needs no semicolons, so one
scanner statement may hold several: each is read word by word.
"""

from __future__ import annotations

# Options a SET may change for the rest of the session (a SET inside an UPDATE is followed
# by a column name instead, and a SET @variable is local to its batch).
# fmt: off
_SET_OPTIONS = frozenset({
    "nocount", "xact_abort", "transaction", "lock_timeout", "deadlock_priority", "language",
    "dateformat", "datefirst", "rowcount", "textsize", "arithabort", "arithignore",
    "quoted_identifier", "concat_null_yields_null", "implicit_transactions", "context_info",
    "identity_insert", "statistics", "fmtonly", "noexec", "parseonly", "numeric_roundabort",
    "cursor_close_on_commit", "query_governor_cost_limit", "forceplan", "no_browsetable",
    "remote_proc_transactions", "ansi_defaults", "ansi_nulls", "ansi_null_dflt_on",
    "ansi_null_dflt_off", "ansi_padding", "ansi_warnings", "showplan_all", "showplan_text",
    "showplan_xml", "offsets",
})
# fmt: on

_SESSION_PROCEDURES = {
    "sp_getapplock": "application lock",
    "sp_set_session_context": "session context",
    "sp_setapprole": "application role",
}


def statement_changes(words: tuple[str, ...]) -> list[str]:
    """What the statements in ``words`` leave in the session, in order (repeats included)."""
    found = []
    for i, word in enumerate(words):
        after = words[i + 1] if i + 1 < len(words) else ""
        before = words[i - 1] if i else ""
        if word.startswith("#"):
            found.append("temporary table or procedure")
        elif word == "set" and (after in _SET_OPTIONS or (i == 0 and after and not after.startswith("@"))):
            found.append("isolation level" if after == "transaction" else "SET of a session option")
        elif word == "use" and after not in ("plan", "hint", ""):
            found.append("USE of another database")
        elif word == "begin" and after in ("tran", "transaction", "distributed"):
            found.append("open transaction")
        elif word in ("exec", "execute") and after == "as" and before != "with":
            found.append("EXECUTE AS impersonation")
        elif word == "cursor" and "declare" in words[:i]:
            found.append("cursor")
        elif word in _SESSION_PROCEDURES:
            found.append(_SESSION_PROCEDURES[word])
    return found
