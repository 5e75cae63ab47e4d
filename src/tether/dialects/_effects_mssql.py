"""SQL Server (T-SQL) statements read as session effects: what a recovered session can replay.

Replayable: ``USE``, the session SET options (``SET ANSI_NULLS ON``, ``SET DATEFIRST 1``,
``SET LANGUAGE``, several options in one ``SET ANSI_NULLS, ANSI_WARNINGS ON`` ...),
``SET TRANSACTION ISOLATION LEVEL`` (session-scoped in SQL Server: it outlives commits and
rollbacks, so it is REPLAY, not TX_LOCAL), ``SET CONTEXT_INFO`` and
``sp_set_session_context`` of constants or parameters.

Only #temp tables follow the transaction: everything else here outlives a ROLLBACK in
SQL Server (``at_once``), SET options and the isolation level included.

Unrecoverable: #temporary and ##global temporary tables and procedures (found again by
their DROP), global cursors (found by DEALLOCATE), application locks owned by the session,
``EXECUTE AS``, ``SET IDENTITY_INSERT ... ON``, open symmetric/master keys, trace flags, XML
document handles, OLE objects, application roles, SET options that turn execution off
(SHOWPLAN_*, NOEXEC, PARSEONLY, FMTONLY: replaying them would stop the replay itself),
anything set from a variable (the variable is gone on replay) and anything unreadable.

T-SQL needs no semicolons, so one scanner statement may hold several; each chunk is read
word by word and a session statement is cut out of it by its own grammar (a SET option
takes one value, USE one name). The body of CREATE PROCEDURE/FUNCTION/TRIGGER/VIEW does
not run when it is created: such a batch is PLAIN. After IF/WHILE/TRY/GOTO/RETURN in a
batch, whether a later statement ran is unknown: a replayable one there is LOST.

Stored procedures and dynamic SQL (``EXEC proc``, ``EXEC (@sql)``, ``sp_executesql``) are
PLAIN. Choice and reason: SQL Server undoes a module's SET options, isolation level, USE
and #temp tables when it returns, so most of what a procedure does to the session does not
outlive it; refusing every procedure would make recovery useless for procedure-heavy
applications. What does outlive a procedure and tether cannot see: application locks
with ``@LockOwner = 'Session'``, ``sp_set_session_context``, ``SET CONTEXT_INFO``, ##global
temp tables, GLOBAL cursors and open keys made inside it. (SqlClient recovers those because
its recovery is server-side; tether replays client-side.) A transaction a procedure leaves
open shows in the driver's transaction status.

On Azure SQL Database a new connection cannot ``USE`` another database: use
``mssql_read_azure``, which reads USE as LOST. Both read each statement once, for this and
for the pool's reset (``_changes_mssql``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache

from ..vocab import PLAIN, QUOTED, Effect, Op, Reading, Unscannable, statement_texts, tokens
from ._changes_mssql import statement_changes

Token = tuple[str, int]  # a word (or QUOTED) and where it starts in the chunk

_UNREADABLE = (Effect(Op.LOST, reason="statement that could not be scanned", at_once=True),)
_MISREAD = (Effect(Op.LOST, reason="statement that could not be read", at_once=True),)
_UNSCANNABLE = Reading(effects=_UNREADABLE, changes=("statement that could not be scanned",))
_SESSION_OPS = frozenset({Op.REPLAY, Op.FORGET, Op.LOST, Op.FOUND})
_AZURE_USE = "USE of another database (Azure SQL cannot switch databases on reconnect)"

# SET options a session keeps, switched ON or OFF (several may share one SET).
_ON_OFF = frozenset({
    "ansi_defaults", "ansi_null_dflt_off", "ansi_null_dflt_on", "ansi_nulls", "ansi_padding",
    "ansi_warnings", "arithabort", "arithignore", "concat_null_yields_null", "cursor_close_on_commit",
    "forceplan", "implicit_transactions", "nocount", "numeric_roundabort", "quoted_identifier",
    "remote_proc_transactions", "xact_abort", "no_browsetable",
})
# ... the ones that stop execution or must be alone in their batch: replaying them would
# break the replay, so ON is LOST (keyed) and OFF finds it again.
_LOST_WHEN_ON = {
    "showplan_text": "SET SHOWPLAN_TEXT ON", "showplan_all": "SET SHOWPLAN_ALL ON",
    "showplan_xml": "SET SHOWPLAN_XML ON", "noexec": "SET NOEXEC ON", "parseonly": "SET PARSEONLY ON",
    "fmtonly": "SET FMTONLY ON",
}
# SET options that take one value (a number, a word, a literal).
_VALUED = frozenset({
    "datefirst", "dateformat", "language", "lock_timeout", "textsize", "deadlock_priority", "rowcount",
    "query_governor_cost_limit", "context_info", "fips_flagger",
})
_STATISTICS = frozenset({"io", "time", "xml", "profile"})
_SET_OPTIONS = _ON_OFF | _VALUED | frozenset(_LOST_WHEN_ON) | {"transaction", "identity_insert", "statistics"}

_ISOLATION = frozenset({"read", "uncommitted", "committed", "repeatable", "snapshot", "serializable"})
_TRAN = frozenset({"tran", "transaction"})
# Words that begin a statement: where a session statement's optional parts stop.
_STARTERS = frozenset({
    "select", "insert", "update", "delete", "merge", "set", "use", "declare", "exec", "execute",
    "create", "alter", "drop", "truncate", "begin", "commit", "rollback", "save", "if", "else",
    "while", "return", "print", "raiserror", "throw", "waitfor", "grant", "revoke", "deny", "dbcc",
    "open", "close", "fetch", "deallocate", "with", "goto", "break", "continue", "bulk", "backup",
    "restore", "kill", "revert", "checkpoint", "reconfigure", "end", "go", "readtext", "writetext",
    "updatetext", "receive", "send", "enable", "disable", "shutdown",
})
# After one of these in a batch, whether a later statement ran is not known.
_CONTROL = frozenset({"if", "else", "while", "goto", "return", "try", "catch", "break", "continue"})
_OBJECT_KINDS = frozenset({
    "table", "procedure", "proc", "view", "index", "function", "trigger", "schema", "database",
    "type", "sequence", "synonym", "user", "role", "default", "rule", "statistics", "column",
    "constraint", "assembly", "login", "queue", "service",
})
_MODULES = frozenset({"procedure", "proc", "function", "trigger", "view"})

_PROC_LOST = {
    "sp_xml_preparedocument": ("xml:#", "XML document handle (sp_xml_preparedocument)"),
    "sp_oacreate": ("ole:#", "OLE object (sp_OACreate)"),
    "sp_setapprole": ("approle", "application role (sp_setapprole)"),
    "sp_cursoropen": ("cursor:#", "API server cursor (sp_cursoropen)"),
    "sp_cursorprepare": ("cursor:#", "API server cursor (sp_cursorprepare)"),
    "sp_cursorprepexec": ("cursor:#", "API server cursor (sp_cursorprepexec)"),
    "sp_prepare": ("prepared:#", "prepared statement handle (sp_prepare)"),
    "sp_prepexec": ("prepared:#", "prepared statement handle (sp_prepexec)"),
    "sp_bindsession": ("bound", "bound session (sp_bindsession)"),
}
_PROC_FOUND = {"sp_unsetapprole": "approle"}
_SESSION_PROCS = frozenset(_PROC_LOST) | frozenset(_PROC_FOUND) | {"sp_getapplock", "sp_set_session_context"}

_LITERAL = r"n?'((?:[^']|'')*)'"
_CONTEXT_KEY = re.compile(r"@key\s*=\s*" + _LITERAL, re.I | re.S)
_FIRST_LITERAL = re.compile(r"\s*" + _LITERAL, re.I | re.S)
_VARIABLE = re.compile(r"@@?\w+\b(?!\s*=)")  # @x or @@x not followed by "=" (not a parameter name)
_NAMED_ARG = re.compile(r"\s*@\w+\s*=")
_TRANSACTION_OWNER = re.compile(r"@lockowner\s*=\s*n?'transaction'", re.I)


@lru_cache(maxsize=1024)
def mssql_read(sql: str) -> Reading:
    """The effects of each statement in ``sql``, in order, and what the batch leaves for
    the pool's reset: one scan, one walk (cached: texts repeat)."""
    return _read(sql, azure=False)


@lru_cache(maxsize=1024)
def mssql_read_azure(sql: str) -> Reading:
    """As ``mssql_read``, for Azure SQL Database: ``USE`` cannot be replayed there."""
    return _read(sql, azure=True)


def mssql_effects(sql: str) -> tuple[Effect, ...]:
    """The effects alone (``mssql_read`` caches them)."""
    return mssql_read(sql).effects


def mssql_effects_azure(sql: str) -> tuple[Effect, ...]:
    """The effects alone, on Azure SQL Database (``mssql_read_azure`` caches them)."""
    return mssql_read_azure(sql).effects


def _read(sql: str, *, azure: bool) -> Reading:
    try:
        chunks = statement_texts(sql, dialect="sqlserver")
    except Unscannable:
        return _UNSCANNABLE
    batch = _Batch(azure)
    changes: list[str] = []
    for n, (text, words) in enumerate(chunks):
        changes.extend(statement_changes(words))
        batch.add(text, words, first=n == 0)
    return Reading(effects=batch.effects(), changes=tuple(dict.fromkeys(changes)))


def _folded(out: list[Effect]) -> tuple[Effect, ...]:
    if not any(e.op is not Op.PLAIN for e in out):
        return PLAIN
    return tuple(_at_once(e) for e in out)


def _at_once(effect: Effect) -> Effect:
    """SQL Server's SET options, USE, cursors, locks and keys ignore ROLLBACK; its #temp
    tables do not (their CREATE and DROP are transactional)."""
    if effect.op in _SESSION_OPS and not effect.key.startswith("temp:"):
        return replace(effect, at_once=True)
    return effect


class _Batch:
    """One batch, chunk by chunk; remembers whether control flow has been seen, and stops
    reading once the batch's effects are decided (a module's body, a chunk it misread)."""

    def __init__(self, azure: bool) -> None:
        self.azure = azure
        self.conditional = False
        self.out: list[Effect] = []
        self.decided: tuple[Effect, ...] | None = None

    def add(self, text: str, words: tuple[str, ...], *, first: bool) -> None:
        """Read one chunk of the batch, unless its effects are already decided."""
        if self.decided is not None:
            return
        try:
            if first and self._module(words):
                return
            found = [t for t in tokens(text, "sqlserver") if t[0] != ";"]
            self._chunk(text, found, batch_start=first)
        except Unscannable:
            self.decided = _UNREADABLE
        except (IndexError, ValueError):  # a reading this module did not foresee: never guess
            self.decided = _MISREAD

    def effects(self) -> tuple[Effect, ...]:
        if self.decided is not None:
            return self.decided
        return _folded(self.out)

    def _module(self, words: tuple[str, ...]) -> bool:
        """CREATE PROCEDURE ... and the like: the rest of the batch is the module's body,
        which does not run now."""
        module = _module_kind(words)
        if module is None:
            return False
        name = _first_temp(words[1:])
        if module in ("procedure", "proc") and name and words[0] == "create":
            self.decided = _folded([Effect(Op.LOST, f"temp:{name}", reason=f"temporary procedure {name}")])
        else:
            self.decided = PLAIN
        return True

    # -- one chunk -------------------------------------------------------------------------

    def _chunk(self, text: str, tokens: list[Token], *, batch_start: bool) -> None:
        words = [w for w, _ in tokens]
        n = len(words)
        i = 0
        claim_set = False  # an UPDATE (or ALTER DATABASE) waits for its own SET
        plain = False
        while i < n:
            w = words[i]
            prev = words[i - 1] if i else ""
            nxt = words[i + 1] if i + 1 < n else ""
            found: tuple[list[Effect], int] | None = None
            if w in _CONTROL and not (w == "if" and nxt == "exists" and prev in _OBJECT_KINDS):
                self.conditional = True
            elif w == "update" and prev not in ("for", "on", ",") and nxt != "statistics":
                claim_set = not _granting(words, i)
            elif w == "alter" and nxt == "database":
                claim_set = True
            elif w == "set":
                if claim_set:
                    claim_set = False
                elif nxt in _SET_OPTIONS:
                    found = self._set(text, tokens, i)
                elif i == 0 and nxt and not nxt.startswith("@"):
                    found = ([Effect(Op.LOST, reason=f"SET {nxt.upper()} (not an option tether knows)")], n)
            elif w == "use" and nxt and nxt not in ("plan", "hint"):
                found = self._use(text, tokens, i)
            elif w == "begin" and (nxt in _TRAN or nxt == "distributed"):
                found = self._begin(text, tokens, i)
            elif w in ("commit", "rollback") and prev != "with":
                found = self._end(tokens, i)
            elif w in ("exec", "execute") and prev not in ("with", "grant", "revoke", "deny", ","):
                found = self._exec(text, tokens, i)
            elif i == 0 and batch_start and _proc_at(words, 0, tokens=tokens, text=text) is not None:
                found = self._exec(text, tokens, i, implicit=True)  # a procedure first in a batch
            elif w == "declare" and nxt and not nxt.startswith("@"):
                found = self._declare(words, i)
            elif w == "deallocate":
                found = self._deallocate(words, i)
            elif w in ("open", "close"):
                found = self._key(words, i)
            elif w == "dbcc" and nxt == "traceon":
                found = self._traceon(text, tokens, i)
            elif w == "create" and nxt == "table":
                name = _first_temp(words[i + 2 : i + 6])
                if name:
                    found = ([_temp("table", name)], i + 2)
            elif w == "into" and nxt.startswith("#") and _select_into(words, i):
                found = ([_temp("table", nxt)], i + 2)
            elif w == "drop" and nxt in ("table", "procedure", "proc"):
                found = self._drop(words, i)
            if found is None:
                plain = True
                i += 1
                continue
            effects, end = found
            if plain:
                self.out.append(Effect(Op.PLAIN))
                plain = False
            self.out.extend(effects)
            i = max(end, i + 1)
        if plain:
            self.out.append(Effect(Op.PLAIN))

    # -- statements --------------------------------------------------------------------------

    def _replay(self, key: str, text: str, what: str) -> Effect:
        if self.conditional:
            return Effect(Op.LOST, reason=f"{what} after IF/WHILE/TRY (whether it ran is unknown)")
        return Effect(Op.REPLAY, key, text)

    def _found(self, key: str) -> Effect:
        """FOUND, unless whether the statement ran is unknown (then the state stays lost)."""
        return Effect(Op.PLAIN) if self.conditional else Effect(Op.FOUND, key)

    def _set(self, text: str, tokens: list[Token], i: int) -> tuple[list[Effect], int]:
        words = [w for w, _ in tokens]
        n = len(words)
        option = words[i + 1]
        if option == "transaction":
            j = i + 2
            if words[j : j + 2] != ["isolation", "level"]:
                return [Effect(Op.LOST, reason="SET TRANSACTION that could not be read")], n
            j += 2
            while j < n and words[j] in _ISOLATION:
                j += 1
            return [self._replay("isolation", _cut(text, tokens, i, j), "SET TRANSACTION ISOLATION LEVEL")], j
        if option == "identity_insert":
            j = i + 2
            while j < n and words[j] not in ("on", "off"):
                j += 1
            if j >= n:
                return [Effect(Op.LOST, reason="SET IDENTITY_INSERT that could not be read")], n
            if words[j] == "off":
                return [self._found("identity_insert")], j + 1
            return [Effect(Op.LOST, "identity_insert", reason="SET IDENTITY_INSERT ON")], j + 1
        if option in _VALUED:
            j = i + 2
            value = words[j] if j < n else ""
            if value and (value == QUOTED or value not in _STARTERS):
                j += 1
            what = f"SET {option.upper()}"
            if value.startswith("@"):
                return [Effect(Op.LOST, reason=f"{what} from a variable")], j
            key = "context_info" if option == "context_info" else f"option:{option}"
            return [self._replay(key, _cut(text, tokens, i, j), what)], j
        # ON/OFF options, one or several: SET ANSI_NULLS, ANSI_WARNINGS ON; SET STATISTICS IO, TIME ON
        names: list[str] = []
        j = i + 1
        statistics = False
        while j < n and words[j] not in ("on", "off"):
            word = words[j]
            if word == "statistics":
                statistics = True
            elif statistics and word in _STATISTICS:
                names.append(f"statistics {word}")
            elif word in _ON_OFF or word in _LOST_WHEN_ON:
                names.append(word)
            else:
                return [Effect(Op.LOST, reason=f"SET {word.upper()} that could not be read")], n
            j += 1
        if j >= n or not names:
            return [Effect(Op.LOST, reason="SET that could not be read")], n
        state = words[j]
        effects: list[Effect] = []
        for name in names:
            if name in _LOST_WHEN_ON:
                if state == "on":
                    effects.append(Effect(Op.LOST, f"option:{name}", reason=_LOST_WHEN_ON[name]))
                else:
                    effects.append(self._found(f"option:{name}"))
                continue
            statement = f"SET {name.upper()} {state.upper()}"
            effects.append(self._replay(f"option:{name}", statement, statement))
        return effects, j + 1

    def _use(self, text: str, tokens: list[Token], i: int) -> tuple[list[Effect], int]:
        if self.azure:
            return [Effect(Op.LOST, "database", reason=_AZURE_USE)], i + 2
        return [self._replay("database", _cut(text, tokens, i, i + 2), "USE")], i + 2

    def _begin(self, text: str, tokens: list[Token], i: int) -> tuple[list[Effect], int]:
        words = [w for w, _ in tokens]
        n = len(words)
        j = i + (3 if words[i + 1] == "distributed" else 2)
        if j < n and (words[j] == QUOTED or words[j] not in _STARTERS):  # a name, or @name
            j += 1
        if j < n and words[j] == "with" and j + 1 < n and words[j + 1] == "mark":
            j += 3 if j + 2 < n and words[j + 2] == QUOTED else 2
        return [Effect(Op.BEGIN, text=_cut(text, tokens, i, j))], j

    def _end(self, tokens: list[Token], i: int) -> tuple[list[Effect], int]:
        words = [w for w, _ in tokens]
        n = len(words)
        commit = words[i] == "commit"
        j = i + 1
        named = False
        if j < n and (words[j] in _TRAN or words[j] == "work"):
            tran = words[j] in _TRAN
            j += 1
            if tran and j < n and (words[j] == QUOTED or words[j] not in _STARTERS):
                named = True
                j += 1
        if commit and j + 1 < n and words[j] == "with" and words[j + 1] == "delayed_durability":
            j += 3
        if commit:
            return [Effect(Op.COMMIT)], j
        # ROLLBACK TRAN name: a savepoint's name, or the outermost transaction's (then the
        # driver's status after it says the transaction ended, and the log notices).
        return [Effect(Op.UNDO_TO) if named else Effect(Op.ROLLBACK)], j

    def _exec(
        self, text: str, tokens: list[Token], i: int, *, implicit: bool = False
    ) -> tuple[list[Effect], int]:
        words = [w for w, _ in tokens]
        n = len(words)
        if not implicit and i + 1 < n and words[i + 1] == "as":
            end = _execute_as_end(words, i)
            return [Effect(Op.LOST, "impersonation", reason="EXECUTE AS (impersonation)")], end
        at = i if implicit else i + 1
        if not implicit and at < n and words[at].startswith("@") and _followed_by(text, tokens, at, "="):
            at += 1  # EXEC @rc = proc
        proc_end = _proc_at(words, at, tokens=tokens, text=text)
        if proc_end is None:
            return [Effect(Op.PLAIN)], at + 1  # a user procedure or dynamic SQL: see the module doc
        proc = words[proc_end]
        j = proc_end + 1
        while j < n and (words[j] == QUOTED or words[j].startswith("@") or words[j] not in _STARTERS):
            j += 1
        args = text[tokens[proc_end][1] + len(proc) : tokens[j][1] if j < n else len(text)]
        if proc in _PROC_LOST:
            key, reason = _PROC_LOST[proc]
            return [Effect(Op.LOST, key, reason=reason)], j
        if proc in _PROC_FOUND:
            return [self._found(_PROC_FOUND[proc])], j
        if proc == "sp_getapplock":
            if _owned_by_transaction(args):
                return [Effect(Op.PLAIN)], j  # released with the transaction (the default owner)
            return [Effect(Op.LOST, "applock:#", reason="application lock (sp_getapplock)")], j
        # sp_set_session_context
        if _VARIABLE.search(args):
            return [Effect(Op.LOST, reason="sp_set_session_context from a variable")], j
        found = _CONTEXT_KEY.search(args) or (None if _NAMED_ARG.match(args) else _FIRST_LITERAL.match(args))
        key = f"context:{found.group(1).replace(chr(39) * 2, chr(39))}" if found else "context:#"
        statement = text[tokens[i][1] : tokens[j][1] if j < n else len(text)].strip()
        if implicit:
            statement = f"EXEC {statement}"  # only the first statement of a batch may omit EXEC
        return [self._replay(key, statement, "sp_set_session_context")], j

    def _declare(self, words: list[str], i: int) -> tuple[list[Effect], int] | None:
        head = words[i + 2 : i + 5]
        if "cursor" not in head:
            return None
        at = i + 2 + head.index("cursor")
        options = words[at + 1 : words.index("for", at) if "for" in words[at:] else len(words)]
        if "local" in options:
            return [Effect(Op.PLAIN)], at + 1  # deallocated when the batch ends
        name = words[i + 1]
        if name == QUOTED:
            return [Effect(Op.LOST, "cursor:#", reason="global cursor")], at + 1
        return [Effect(Op.LOST, f"cursor:{name}", reason=f"cursor {name}")], at + 1

    def _deallocate(self, words: list[str], i: int) -> tuple[list[Effect], int] | None:
        j = i + 1 + (words[i + 1 : i + 2] == ["global"])
        name = words[j] if j < len(words) else ""
        if not name or name == QUOTED or name.startswith("@") or self.conditional:
            return None
        return [Effect(Op.FOUND, f"cursor:{name}")], j + 1

    def _key(self, words: list[str], i: int) -> tuple[list[Effect], int] | None:
        opening = words[i] == "open"
        rest = words[i + 1 : i + 4]
        if rest[:2] == ["symmetric", "key"] and len(rest) == 3:
            name = rest[2]
            key = f"key:symmetric:{name}" if name != QUOTED else "key:symmetric:#"
            if opening:
                shown = f" {name}" if name != QUOTED else ""
                return [Effect(Op.LOST, key, reason=f"open symmetric key{shown}")], i + 4
            return [self._found(key)], i + 4
        if rest[:2] == ["master", "key"]:
            if opening:
                return [Effect(Op.LOST, "key:master", reason="open master key")], i + 3
            return [self._found("key:master")], i + 3
        if not opening and rest[:3] == ["all", "symmetric", "keys"]:
            return [self._found("key:symmetric:")], i + 4
        return None  # OPEN/CLOSE of a cursor: the cursor itself is what is lost

    def _traceon(self, text: str, tokens: list[Token], i: int) -> tuple[list[Effect], int]:
        start = tokens[i + 1][1]
        close = text.find(")", start)
        inside = text[start : close if close >= 0 else len(text)]
        end = i + 2
        if re.search(r",\s*-\s*1\s*$", inside):
            return [Effect(Op.PLAIN)], end  # TRACEON(n, -1): server-wide, not this session's
        return [Effect(Op.LOST, "traceflag:#", reason="trace flag (DBCC TRACEON)")], end

    def _drop(self, words: list[str], i: int) -> tuple[list[Effect], int]:
        n = len(words)
        j = i + 2
        if words[j : j + 2] == ["if", "exists"]:
            j += 2
        effects: list[Effect] = [Effect(Op.PLAIN)]
        sure = not self.conditional or _drops_if_present(words[:i])
        while j < n and (words[j] == QUOTED or words[j] not in _STARTERS):
            if words[j].startswith("#") and sure:
                effects.append(Effect(Op.FOUND, f"temp:{words[j]}"))
            j += 1
        return effects, j


def _execute_as_end(words: list[str], i: int) -> int:
    """Just past EXECUTE AS {CALLER | SELF | OWNER | LOGIN = 'x' | USER = 'x'} [WITH ...]."""
    n, j = len(words), i + 2
    if j < n and words[j] in ("login", "user"):
        j += 1 + (j + 1 < n and words[j + 1] == QUOTED)
    elif j < n and words[j] in ("caller", "self", "owner"):
        j += 1
    if j < n and words[j] == "with":
        tail = words[j + 1 : j + 4]
        j += 3 if tail[:1] == ["no"] else 4 if tail[:2] == ["cookie", "into"] else 1
    return min(j, n)


def _module_kind(words: tuple[str, ...]) -> str | None:
    """CREATE [OR ALTER] / ALTER of a procedure, function, trigger or view (the batch's body)."""
    if not words or words[0] not in ("create", "alter"):
        return None
    rest = words[1:]
    if rest[:2] == ("or", "alter"):
        rest = rest[2:]
    return rest[0] if rest and rest[0] in _MODULES else None


def _first_temp(words: tuple[str, ...] | list[str]) -> str:
    for word in words:
        if word.startswith("#"):
            return word
        if word in ("(", "as") or word in _STARTERS:
            break
    return ""


def _temp(kind: str, name: str) -> Effect:
    scope = "global temporary" if name.startswith("##") else "temporary"
    return Effect(Op.LOST, f"temp:{name}", reason=f"{scope} {kind} {name}")


def _select_into(words: list[str], i: int) -> bool:
    """Whether ``INTO #t`` at ``i`` is SELECT ... INTO (creates it) rather than INSERT INTO."""
    for word in reversed(words[:i]):
        if word in ("insert", "merge"):
            return False
        if word == "select":
            return True
    return False


def _granting(words: list[str], i: int) -> bool:
    return any(w in ("grant", "revoke", "deny") for w in words[max(0, i - 8) : i])


def _drops_if_present(before: list[str]) -> bool:
    """``IF OBJECT_ID('tempdb..#t') IS NOT NULL DROP TABLE #t``: gone either way."""
    if "if" not in before:
        return False
    condition = before[len(before) - before[::-1].index("if") :]
    return "object_id" in condition and condition[-2:] == ["not", "null"]


def _proc_at(words: list[str] | tuple[str, ...], at: int, *, tokens: list[Token] | None = None,
             text: str = "") -> int | None:
    """Index of a session-changing system procedure named at ``at`` (maybe sys.x or
    master.dbo.x), or None."""
    for k in range(at, min(at + 4, len(words))):
        if words[k] in _SESSION_PROCS:
            return k
        if words[k] == QUOTED or words[k] in _STARTERS:
            return None
        if tokens is not None and k + 1 < len(tokens):  # only a dotted name continues
            between = text[tokens[k][1] + len(words[k]) : tokens[k + 1][1]]
            if between.strip() not in (".", ".."):
                return None
    return None


def _followed_by(text: str, tokens: list[Token], at: int, char: str) -> bool:
    end = tokens[at][1] + len(tokens[at][0])
    return text[end:].lstrip().startswith(char)


def _owned_by_transaction(args: str) -> bool:
    """sp_getapplock's @LockOwner is 'Transaction' (given, or the default with named args)."""
    if _TRANSACTION_OWNER.search(args):
        return True
    if "@lockowner" in args.lower():
        return False
    pieces = [p for p in args.split(",") if p.strip()]
    return bool(pieces) and all(_NAMED_ARG.match(p) for p in pieces)


def _cut(text: str, tokens: list[Token], start: int, end: int) -> str:
    """The text of tokens ``start`` up to (not including) ``end``: one statement."""
    stop = tokens[end][1] if end < len(tokens) else len(text)
    return text[tokens[start][1] : stop].strip()
