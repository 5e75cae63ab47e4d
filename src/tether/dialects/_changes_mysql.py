"""MySQL statements read for the pool's reset: what one leaves in the session, as a reason
a user can read ("SET of a session variable", "temporary table").

A session with any is reset on return (``MySQL.reset_sql``, then the driver's
``COM_RESET_CONNECTION``). Conservative: a user variable read or written counts, since an
assignment (``:=``) cannot be told from a read in the words alone.
"""

from __future__ import annotations

_SESSION_STATEMENTS = {
    "set": "SET of a session variable",
    "use": "USE of another database",
    "prepare": "prepared statement",
    "lock": "LOCK TABLES",
    "handler": "HANDLER open",
    "xa": "XA transaction",
    "begin": "open transaction",
    "start": "open transaction",
    "call": "procedure call (its SETs outlive it in MySQL)",
}
_SESSION_FUNCTIONS = {"get_lock": "user-level lock"}


def statement_change(words: tuple[str, ...]) -> str | None:
    """What the statement of ``words`` leaves in the session, if anything."""
    first, second = words[0], words[1] if len(words) > 1 else ""
    if first == "set" and second == "transaction":
        return None  # SET TRANSACTION without SESSION: the next transaction only
    if first == "start" and second != "transaction":
        return None
    if first in _SESSION_STATEMENTS:
        return _SESSION_STATEMENTS[first]
    if first == "create" and "temporary" in words[1:3]:
        return "temporary table"
    if "into" in words and any(w.startswith("@") for w in words[words.index("into") + 1 :]):
        return "user variable (SELECT INTO @var)"
    for word in words:
        if word in _SESSION_FUNCTIONS:
            return _SESSION_FUNCTIONS[word]
        if word.startswith("@") and not word.startswith("@@"):
            return "user variable (read or written: := cannot be told from a read here)"
    return None
