"""PostgreSQL statements read for the pool's reset: what one leaves in the session beyond
its transaction, as a reason a user can read ("SET of a session setting").

A session with any is reset on return (``DISCARD ALL``). Conservative: a statement that
may do anything (DO, CALL) counts as a change.
"""

from __future__ import annotations

from ..vocab import QUOTED

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


def statement_change(words: tuple[str, ...]) -> str | None:
    """What the statement of ``words`` leaves in the session, if anything."""
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
