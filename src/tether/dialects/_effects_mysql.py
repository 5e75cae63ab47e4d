"""MySQL (and MariaDB) statements read as session effects: what a recovered session can replay.

Replayable: ``USE``, session variables (``SET [SESSION | LOCAL | @@session. | @@] var = ...``,
one key per variable), ``SET NAMES`` / ``SET CHARACTER SET``, user variables set to constants
(``SET @x = 1``: key ``user:x``), ``SET SESSION TRANSACTION ...`` and ``PREPARE s FROM 'text'``
(``DEALLOCATE PREPARE s`` forgets it). ``SET TRANSACTION`` without SESSION is TX_LOCAL: it
applies to the next transaction only. ``SET GLOBAL`` / ``PERSIST`` is PLAIN: not session state.

Unrecoverable: temporary tables (found again by ``DROP [TEMPORARY] TABLE``), user-level locks
(``GET_LOCK``; ``RELEASE_ALL_LOCKS()`` finds them), ``LOCK TABLES`` (``UNLOCK TABLES``), ``XA``,
``HANDLER ... OPEN``, user variables set from a query or an expression (``SELECT ... INTO @x``,
``@x := ...``: the query may read something else next time), ``PREPARE ... FROM @var``,
``COMMIT/ROLLBACK AND CHAIN | RELEASE``, procedure calls and compound statements (they may do
anything, and unlike SQL Server a MySQL procedure's SETs outlive it), and anything unreadable.

MySQL's session state ignores transactions: a ROLLBACK undoes no SET, no PREPARE, no temporary
table. Every session effect here is ``at_once``. Statements that commit implicitly (DDL,
GRANT, LOCK TABLES, ...) are read as COMMIT first, so the log closes the transaction with them.
``/*! ... */`` comments are executed by MySQL, so their contents are read too.

``mysql_read`` reads each statement once, for this and for the pool's reset (``_changes_mysql``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache

from ..vocab import PLAIN, QUOTED, Effect, Op, Reading, Unscannable, statement_texts, tokens
from ._changes_mysql import statement_change

_UNREADABLE = (Effect(Op.LOST, reason="statement that could not be scanned", at_once=True),)
_MISREAD = (Effect(Op.LOST, reason="statement that could not be read", at_once=True),)
_NESTED = Reading(effects=(Effect(Op.LOST, reason="nested /*! */ comment", at_once=True),),
                  changes=("nested /*! */ comment",))
_UNSCANNABLE = Reading(effects=_UNREADABLE, changes=("statement that could not be scanned",))
_SESSION_OPS = frozenset({Op.REPLAY, Op.FORGET, Op.LOST, Op.FOUND})
_COMMIT = Effect(Op.COMMIT)

# First words of statements that commit an open transaction before they run (MySQL 8.0
# reference, "Statements That Cause an Implicit Commit"); CREATE/DROP are handled apart
# (TEMPORARY does not commit).
_IMPLICIT_COMMIT = frozenset({
    "alter", "rename", "truncate", "install", "uninstall", "grant", "revoke", "analyze", "cache",
    "check", "flush", "optimize", "repair", "reset", "change",
})
_REPLICATION = frozenset({"replica", "slave", "group_replication"})
_ROUTINES = frozenset({"procedure", "function", "trigger", "event"})
_SCOPES = ("global", "session", "local", "persist", "persist_only")
_NOT_SESSION = frozenset({"global", "persist", "persist_only"})

_EXECUTABLE_COMMENT = re.compile(r"/\*M?!(?:\d{5,6})?(.*?)\*/", re.S | re.I)
_ASSIGNMENT = re.compile(
    r"\s*(?:(?P<scope>global|session|local|persist|persist_only)\s+"
    r"|@@(?P<scope2>global|session|local|persist|persist_only)\s*\.\s*|(?P<sys>@@))?"
    r"(?P<user>@)?(?P<name>`(?:[^`]|``)+`|'(?:[^'\\]|\\.|'')+'|\"(?:[^\"\\]|\\.|\"\")+\"|[\w$.]+)"
    r"\s*:?=\s*(?P<rhs>.*)\Z",
    re.S | re.I,
)
_CONSTANT = re.compile(
    r"\s*(?:[-+]?\s*[\d.][\w.+-]*|_?\w*\s*'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"|x'[0-9a-f]*'"
    r"|[a-z_][\w$-]*|%s|%\(\w+\)s|\?)\s*\Z",
    re.S | re.I,
)
_PLACEHOLDER = re.compile(r"%s|%\(\w+\)s|\?")
_USER_ASSIGN = re.compile(r"@(`(?:[^`]|``)+`|'(?:[^'\\]|\\.)+'|[\w$.]+)\s*:=")
_INTO_VARS = re.compile(r"\binto\s+(@[\w$.`]+(?:\s*,\s*@[\w$.`]+)*)", re.I | re.S)


@lru_cache(maxsize=1024)
def mysql_read(sql: str) -> Reading:
    """The effects of each statement in ``sql``, in order, and what each leaves for the
    pool's reset: one scan, one walk (cached: texts repeat)."""
    if "/*" in sql and _EXECUTABLE_COMMENT.search(sql):
        # MySQL and MariaDB run what ``/*! */`` comments hold (mysqldump writes its SET
        # NAMES and CREATE TEMPORARY TABLE so): read that text, for the effects and the
        # reset alike, where the scanner would skip it as a comment.
        inner = _EXECUTABLE_COMMENT.sub(lambda m: f" {m.group(1)} ", sql)
        if "/*" in inner and _EXECUTABLE_COMMENT.search(inner):
            return _NESTED
        return _read(inner)
    return _read(sql)


def mysql_effects(sql: str) -> tuple[Effect, ...]:
    """The effects alone (``mysql_read`` caches them)."""
    return mysql_read(sql).effects


def _read(sql: str) -> Reading:
    try:
        chunks = statement_texts(sql, dialect="mysql")
    except Unscannable:
        return _UNSCANNABLE
    # A routine's body (or a MariaDB BEGIN NOT ATOMIC block) holds semicolons: the whole
    # text is one statement, and the scanner's pieces are not statements.
    decided = _compound_effects(chunks[0][1]) if chunks else None
    out: list[Effect] = []
    changes: list[str] = []
    for text, words in chunks:
        change = statement_change(words)
        if change:
            changes.append(change)
        if decided is None:
            try:
                out.extend(_statement(text, words))
            except Unscannable:
                decided = _UNREADABLE
            except (IndexError, ValueError):  # a reading this module did not foresee: never guess
                decided = _MISREAD
    effects = _folded(out) if decided is None else decided
    return Reading(effects=effects, changes=tuple(dict.fromkeys(changes)))


def _compound_effects(words: tuple[str, ...]) -> tuple[Effect, ...] | None:
    if not _compound(words):
        return None
    if words[0] == "begin":
        return _folded([Effect(Op.LOST, reason="compound statement (BEGIN NOT ATOMIC ... END)")])
    return _folded([_COMMIT, Effect(Op.PLAIN)])


def _folded(out: list[Effect]) -> tuple[Effect, ...]:
    if not any(e.op is not Op.PLAIN for e in out):
        return PLAIN
    return tuple(replace(e, at_once=True) if e.op in _SESSION_OPS else e for e in out)


def _statement(text: str, words: tuple[str, ...]) -> list[Effect]:
    first, rest = words[0], words[1:]
    if first == "set":
        return _set(text, rest)
    if first == "use":
        return [Effect(Op.REPLAY, "database", text) if rest else Effect(Op.LOST, reason="USE without a name")]
    if first in ("start", "begin"):
        if first == "start" and rest[:1] and rest[0] in _REPLICATION:
            return [_COMMIT, Effect(Op.PLAIN)]
        if first == "start" and rest[:1] != ("transaction",):
            return [Effect(Op.PLAIN)]
        if first == "begin" and rest not in ((), ("work",)):
            return [Effect(Op.LOST, reason="BEGIN that could not be read")]
        return [Effect(Op.BEGIN, text=text)]  # it commits an open transaction first
    if first in ("commit", "rollback"):
        return _end(first, rest)
    if first in ("savepoint", "release"):
        return [Effect(Op.PLAIN)]
    if first == "xa":
        if rest[:1] == ("recover",):
            return [Effect(Op.PLAIN)]
        return [Effect(Op.LOST, "xa", reason="XA transaction")]
    if first == "lock":
        if rest[:1] in (("tables",), ("table",)):
            return [_COMMIT, Effect(Op.LOST, "lock_tables", reason="LOCK TABLES")]
        if rest[:1] == ("instance",):
            return [Effect(Op.LOST, "backup_lock", reason="LOCK INSTANCE FOR BACKUP")]
        return [Effect(Op.LOST, reason="LOCK that could not be read")]
    if first == "unlock":
        key = "backup_lock" if rest[:1] == ("instance",) else "lock_tables"
        return [Effect(Op.FOUND, key)]
    if first == "prepare":
        return _prepare(text, rest)
    if first in ("deallocate", "drop") and rest[:1] == ("prepare",):
        key = _named("prepared", rest[1:])
        return [Effect(Op.FORGET, key), Effect(Op.FOUND, key)] if not key.endswith("#") else [
            Effect(Op.LOST, reason="DEALLOCATE PREPARE of a quoted name")]
    if first == "handler":
        return _handler(rest)
    if first == "create":
        return _create(text, rest)
    if first == "drop":
        return _drop(rest)
    if first in _IMPLICIT_COMMIT:
        if first == "check" and rest[:1] != ("table",):
            return [Effect(Op.PLAIN)]
        if first == "reset" and rest[:1] == ("persist",):
            return [Effect(Op.PLAIN)]
        return [_COMMIT, Effect(Op.PLAIN)]
    if first == "stop" and rest[:1] and rest[0] in _REPLICATION:
        return [_COMMIT, Effect(Op.PLAIN)]
    if first == "load" and rest[:1] == ("index",):
        return [_COMMIT, Effect(Op.PLAIN)]
    if first == "call":
        return [Effect(Op.LOST, reason="procedure call (it may change the session)")]
    if first == "show":
        return [Effect(Op.TX_LOCAL, text=text)]
    return _functions(text, words)


def _set(text: str, rest: tuple[str, ...]) -> list[Effect]:
    if not rest:
        return [Effect(Op.LOST, reason="SET that could not be read")]
    head = rest[0]
    if head == "transaction":
        return [Effect(Op.TX_LOCAL, text=text)]  # the next transaction only
    if (head in _NOT_SESSION or head.startswith(("@@global", "@@persist"))) and "," not in text:
        return [Effect(Op.PLAIN)]  # the server's setting, not the session's
    if head in ("session", "local") and rest[1:2] == ("transaction",):
        # SESSION: every later transaction, so the session keeps it (both parts: unkeyed)
        if "," in text:
            key = "var:#"
        else:
            key = "var:transaction_isolation" if "isolation" in rest else "var:transaction_read_only"
        return [Effect(Op.REPLAY, key, text)]
    if head == "password" or rest[:2] == ("default", "role"):
        return [_COMMIT, Effect(Op.PLAIN)] if head == "password" else [Effect(Op.PLAIN)]
    if head == "role":
        return [Effect(Op.REPLAY, "role", text)]
    if head == "statement":
        return [Effect(Op.LOST, reason="SET STATEMENT ... FOR (the statement was not read)")]
    if head == "resource":
        return [Effect(Op.REPLAY, "var:resource_group", text)]
    body = text[_after_first_word(text) :]
    pieces = _split_top(body)
    out: list[Effect] = []
    several = len(pieces) > 1 and bool(_PLACEHOLDER.search(body))
    for piece in pieces:
        effects = _assignment(piece)
        out.extend(effects)
    if several and any(e.op is Op.REPLAY for e in out):
        # Parameters belong to the whole statement: replay it whole, in order.
        lost = [e for e in out if e.op is Op.LOST]
        return [*lost, Effect(Op.REPLAY, "var:#", text)]
    return out


def _assignment(piece: str) -> list[Effect]:
    lowered = piece.strip().lower()
    statement = f"SET {piece.strip()}"
    if lowered.startswith("names ") or lowered.startswith(("character set ", "charset ")):
        return [Effect(Op.REPLAY, "var:names", statement)]
    found = _ASSIGNMENT.match(piece)
    if found is None:
        return [Effect(Op.LOST, reason="SET that could not be read")]
    scope = (found.group("scope") or found.group("scope2") or "").lower()
    if scope in _NOT_SESSION:
        return [Effect(Op.PLAIN)]
    raw_name, rhs = found.group("name"), found.group("rhs")
    quoted = raw_name[0] in "`'\""
    name = raw_name.lower()
    constant = bool(_CONSTANT.match(rhs))
    reads_table = not constant and (" from " in f" {rhs.lower()} " or "select" in rhs.lower())
    if found.group("user") and not found.group("sys") and not scope:
        key = "user:#" if quoted else f"user:{name}"
        shown = raw_name
        if reads_table:
            return [Effect(Op.LOST, key, reason=f"user variable @{shown} set from a query")]
        if not constant:
            return [Effect(Op.LOST, key, reason=f"user variable @{shown} set from an expression")]
        if quoted:
            return [Effect(Op.REPLAY, key, statement)]
        return [Effect(Op.FOUND, key), Effect(Op.REPLAY, key, statement)]
    if found.group("user"):
        return [Effect(Op.LOST, reason="SET that could not be read")]
    if " from " in f" {rhs.lower()} ":
        return [Effect(Op.LOST, reason=f"{name} set from a query")]
    if name == "autocommit":
        on = rhs.strip().lower() in ("1", "on", "true")
        effect = Effect(Op.REPLAY, "var:autocommit", statement)
        return [_COMMIT, effect] if on else [effect]  # turning it on commits
    if quoted:
        return [Effect(Op.REPLAY, "var:#", statement)]
    # An expression (sql_mode = CONCAT(@@sql_mode, ...)) replays in order, never superseded.
    return [Effect(Op.REPLAY, f"var:{name}" if constant else "var:#", statement)]


def _end(first: str, rest: tuple[str, ...]) -> list[Effect]:
    joined = " ".join(rest)
    if ("chain" in rest and "no chain" not in joined) or ("release" in rest and "no release" not in joined):
        if first == "rollback" and rest[:1] == ("to",):
            return [Effect(Op.UNDO_TO)]
        chain = "chain" in rest and "no chain" not in joined
        what = f"{first.upper()} AND CHAIN" if chain else f"{first.upper()} RELEASE (it ends the session)"
        return [Effect(Op.LOST, reason=what)]
    if first == "commit":
        return [Effect(Op.COMMIT)]
    if "to" in rest:
        return [Effect(Op.UNDO_TO)]
    return [Effect(Op.ROLLBACK)]


def _prepare(text: str, rest: tuple[str, ...]) -> list[Effect]:
    key = _named("prepared", rest)
    source = rest[2:3] if rest[1:2] == ("from",) else ()
    if source == (QUOTED,):
        if key.endswith("#"):
            return [Effect(Op.REPLAY, key, text)]
        return [Effect(Op.FOUND, key), Effect(Op.REPLAY, key, text)]
    shown = "" if key.endswith("#") else f" {key.split(':', 1)[1]}"
    return [Effect(Op.LOST, key, reason=f"prepared statement{shown} from a variable")]


def _handler(rest: tuple[str, ...]) -> list[Effect]:
    name = rest[0] if rest else QUOTED
    key = "handler:#" if name == QUOTED else f"handler:{name}"
    if "open" in rest[1:3]:
        shown = "" if name == QUOTED else f" {name}"
        return [Effect(Op.LOST, key, reason=f"HANDLER{shown} open")]
    if "close" in rest[1:3] and name != QUOTED:
        return [Effect(Op.FOUND, key)]
    return [Effect(Op.PLAIN)]


def _create(text: str, rest: tuple[str, ...]) -> list[Effect]:
    if "temporary" in rest[:2]:
        at = rest.index("temporary") + 1
        name = _name_after(rest, at, skip={"table", "if", "not", "exists"})
        shown = "" if name == QUOTED else f" {name}"
        key = "temp:#" if name == QUOTED else f"temp:{name}"
        return [Effect(Op.LOST, key, reason=f"temporary table{shown}")]  # no implicit commit
    return [_COMMIT, Effect(Op.PLAIN), *_functions(text, rest)[1:]]


def _drop(rest: tuple[str, ...]) -> list[Effect]:
    temporary = rest[:1] == ("temporary",)
    kind_at = 1 if temporary else 0
    effects: list[Effect] = [] if temporary else [_COMMIT]
    effects.append(Effect(Op.PLAIN))
    if rest[kind_at : kind_at + 1] in (("table",), ("tables",)):
        names = [w for w in rest[kind_at + 1 :] if w not in ("if", "exists", "restrict", "cascade")]
        # DROP TABLE t drops a temporary t first, if there is one
        effects.extend(Effect(Op.FOUND, f"temp:{w}") for w in names if w != QUOTED)
    return effects


def _functions(text: str, words: tuple[str, ...]) -> list[Effect]:
    """Statements that are not about the session may still change it: locks, := assignments."""
    out: list[Effect] = []
    lowered = text.lower()
    if "get_lock" in words:
        out.append(Effect(Op.LOST, "lock:#", reason="user-level lock (GET_LOCK)"))
    if "release_all_locks" in words:
        out.append(Effect(Op.FOUND, "lock:"))
    if ":=" in text:
        for match in _USER_ASSIGN.finditer(text):
            name = match.group(1).lower()
            key = "user:#" if name[0] in "`'" else f"user:{name}"
            out.append(Effect(Op.LOST, key, reason=f"user variable @{match.group(1)} assigned in a query"))
        if not out:
            out.append(Effect(Op.LOST, reason="assignment (:=) that could not be read"))
    if "into" in words and "@" in lowered:
        found = _INTO_VARS.search(text)
        if found:
            for name in re.findall(r"@(`(?:[^`]|``)+`|[\w$.]+)", found.group(1)):
                key = "user:#" if name[0] == "`" else f"user:{name.lower()}"
                out.append(Effect(Op.LOST, key, reason=f"user variable @{name} set from a query"))
    return [Effect(Op.PLAIN), *out]


def _compound(words: tuple[str, ...]) -> bool:
    """CREATE/ALTER of a procedure, function, trigger or event, or BEGIN NOT ATOMIC."""
    if words[:3] == ("begin", "not", "atomic"):
        return True
    if words[0] not in ("create", "alter"):
        return False
    for word in words[1:12]:
        if word in _ROUTINES:
            return True
        if word in ("or", "replace", "definer", "current_user", "aggregate", "sql", "security",
                    "invoker", QUOTED, "if", "not", "exists") or word.startswith("@"):
            continue
        return False
    return False


def _split_top(body: str) -> list[str]:
    """``body`` cut at commas outside quotes and parentheses."""
    pieces: list[str] = []
    depth, start, i, n = 0, 0, 0, len(body)
    while i < n:
        c = body[i]
        if c in "'\"`":
            j = i + 1
            while j < n:
                if body[j] == "\\" and c != "`":
                    j += 2
                    continue
                if body[j] == c:
                    if j + 1 < n and body[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            pieces.append(body[start:i])
            start = i + 1
        i += 1
    pieces.append(body[start:])
    return [p for p in pieces if p.strip()]


def _after_first_word(text: str) -> int:
    for word, at in tokens(text, "mysql"):
        return at + len(word)
    return len(text)


def _named(family: str, rest: tuple[str, ...]) -> str:
    name = rest[0] if rest else QUOTED
    return f"{family}:#" if name == QUOTED else f"{family}:{name}"


def _name_after(words: tuple[str, ...], at: int, *, skip: set[str]) -> str:
    for word in words[at:]:
        if word not in skip:
            return word
    return QUOTED
