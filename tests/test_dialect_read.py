"""Each dialect reads a text as it did before: the same session changes and the same session
effects, for any text.

The references below are private copies of the dialects' old readings (``session_changes``
and ``session_effects`` as they were before ``read``), kept here, and only here, so that a
refactoring of the dialects is checked against what they returned, not against itself. The
per-statement readers they call (``_statement``, ``_Batch._chunk`` ...) are the dialects'
own: what changed is how a text is walked, not how one statement is read.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tether.dialects import _effects_mssql as mssql_fx
from tether.dialects import _effects_mysql as mysql_fx
from tether.dialects import _effects_pg as pg_fx
from tether.dialects.mysql import dialect as mysql
from tether.dialects.postgresql import dialect as pg
from tether.dialects.sqlserver import azure
from tether.dialects.sqlserver import dialect as mssql
from tether.vocab import PLAIN, QUOTED, Effect, Op, Reading, Unscannable, statement_texts, statements, tokens

EXAMPLES = 2000

# -- PostgreSQL, before -------------------------------------------------------------------

_PG_SESSION_STATEMENTS = {
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
_PG_SESSION_FUNCTIONS = {
    "set_config": "set_config() of a setting",
    "pg_advisory_lock": "session advisory lock",
    "pg_advisory_lock_shared": "session advisory lock",
    "pg_try_advisory_lock": "session advisory lock",
    "pg_try_advisory_lock_shared": "session advisory lock",
    "dblink_connect": "dblink connection",
}
_PG_TEMP = {"temp", "temporary"}


def pg_changes_before(sql: str) -> tuple[str, ...]:
    try:
        parsed = statements(sql, dialect="postgresql")
    except Unscannable:
        return ("statement that could not be scanned",)
    found = (_pg_statement_change(words) for words in parsed)
    return tuple(reason for reason in found if reason)


def _pg_statement_change(words: tuple[str, ...]) -> str | None:
    first = words[0]
    if first == "set" and len(words) > 1 and words[1] in ("local", "transaction", "constraints"):
        return None
    if first in _PG_SESSION_STATEMENTS:
        return _PG_SESSION_STATEMENTS[first]
    if first == "create" and _PG_TEMP & set(words[1:4]):
        return "temporary object"
    if first in ("select", "with") and "into" in words:
        i = words.index("into")
        if _PG_TEMP & set(words[i + 1 : i + 3]):
            return "temporary table (SELECT INTO)"
    for word in words:
        if word != QUOTED and word in _PG_SESSION_FUNCTIONS:
            return _PG_SESSION_FUNCTIONS[word]
    return None


def pg_effects_before(sql: str) -> tuple[Effect, ...]:
    try:
        parsed = statement_texts(sql, dialect="postgresql")
    except Unscannable:
        return (Effect(Op.LOST, reason="statement that could not be scanned"),)
    out: list[Effect] = []
    for text, words in parsed:
        out.extend(pg_fx._statement(text, words))
    return tuple(out) if any(e.op is not Op.PLAIN for e in out) else PLAIN


# -- SQL Server, before -------------------------------------------------------------------

# fmt: off
_MSSQL_SET_OPTIONS = frozenset({
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
_MSSQL_SESSION_PROCEDURES = {
    "sp_getapplock": "application lock",
    "sp_set_session_context": "session context",
    "sp_setapprole": "application role",
}


def mssql_changes_before(sql: str) -> tuple[str, ...]:
    try:
        parsed = statements(sql, dialect="sqlserver")
    except Unscannable:
        return ("statement that could not be scanned",)
    found: list[str] = []
    for words in parsed:
        found.extend(_mssql_statement_changes(words))
    return tuple(dict.fromkeys(found))


def _mssql_statement_changes(words: tuple[str, ...]) -> list[str]:
    found = []
    for i, word in enumerate(words):
        after = words[i + 1] if i + 1 < len(words) else ""
        before = words[i - 1] if i else ""
        if word.startswith("#"):
            found.append("temporary table or procedure")
        elif word == "set" and (
            after in _MSSQL_SET_OPTIONS or (i == 0 and after and not after.startswith("@"))
        ):
            found.append("isolation level" if after == "transaction" else "SET of a session option")
        elif word == "use" and after not in ("plan", "hint", ""):
            found.append("USE of another database")
        elif word == "begin" and after in ("tran", "transaction", "distributed"):
            found.append("open transaction")
        elif word in ("exec", "execute") and after == "as" and before != "with":
            found.append("EXECUTE AS impersonation")
        elif word == "cursor" and "declare" in words[:i]:
            found.append("cursor")
        elif word in _MSSQL_SESSION_PROCEDURES:
            found.append(_MSSQL_SESSION_PROCEDURES[word])
    return found


def mssql_effects_before(sql: str, *, azure: bool = False) -> tuple[Effect, ...]:
    try:
        chunks = statement_texts(sql, dialect="sqlserver")
        out = _mssql_batch_before(mssql_fx._Batch(azure), chunks)
    except Unscannable:
        return (Effect(Op.LOST, reason="statement that could not be scanned", at_once=True),)
    except (IndexError, ValueError):
        return (Effect(Op.LOST, reason="statement that could not be read", at_once=True),)
    if not any(e.op is not Op.PLAIN for e in out):
        return PLAIN
    return tuple(_mssql_at_once(e) for e in out)


def _mssql_batch_before(batch: Any, chunks: tuple[tuple[str, tuple[str, ...]], ...]) -> list[Effect]:
    if not chunks:
        return []
    first = chunks[0][1]
    module = mssql_fx._module_kind(first)
    if module is not None:
        name = mssql_fx._first_temp(first[1:])
        if module in ("procedure", "proc") and name and first[0] == "create":
            return [Effect(Op.LOST, f"temp:{name}", reason=f"temporary procedure {name}")]
        return [Effect(Op.PLAIN)]
    for n, (text, _words) in enumerate(chunks):
        found = [t for t in tokens(text, "sqlserver") if t[0] != ";"]
        batch._chunk(text, found, batch_start=n == 0)
    out: list[Effect] = batch.out
    return out


def _mssql_at_once(effect: Effect) -> Effect:
    if effect.op in (Op.REPLAY, Op.FORGET, Op.LOST, Op.FOUND) and not effect.key.startswith("temp:"):
        return replace(effect, at_once=True)
    return effect


# -- MySQL, before ------------------------------------------------------------------------

_MYSQL_SESSION_STATEMENTS = {
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
_MYSQL_SESSION_FUNCTIONS = {"get_lock": "user-level lock"}


def mysql_changes_before(sql: str) -> tuple[str, ...]:
    # One deliberate change since the copy was made: what /*! */ comments hold is read for
    # the reset too (it used to be skipped as a comment, so a mysqldump-style
    # "/*!40101 SET NAMES latin1 */" or "/*! CREATE TEMPORARY TABLE t ... */" reached the
    # next borrower unreset).
    executable = mysql_fx._EXECUTABLE_COMMENT
    if "/*" in sql and executable.search(sql):
        sql = executable.sub(lambda m: f" {m.group(1)} ", sql)
        if "/*" in sql and executable.search(sql):
            return ("nested /*! */ comment",)
    try:
        parsed = statements(sql, dialect="mysql")
    except Unscannable:
        return ("statement that could not be scanned",)
    found = (_mysql_statement_change(words) for words in parsed)
    return tuple(dict.fromkeys(reason for reason in found if reason))


def _mysql_statement_change(words: tuple[str, ...]) -> str | None:
    first, second = words[0], words[1] if len(words) > 1 else ""
    if first == "set" and second == "transaction":
        return None
    if first == "start" and second != "transaction":
        return None
    if first in _MYSQL_SESSION_STATEMENTS:
        return _MYSQL_SESSION_STATEMENTS[first]
    if first == "create" and "temporary" in words[1:3]:
        return "temporary table"
    if "into" in words and any(w.startswith("@") for w in words[words.index("into") + 1 :]):
        return "user variable (SELECT INTO @var)"
    for word in words:
        if word in _MYSQL_SESSION_FUNCTIONS:
            return _MYSQL_SESSION_FUNCTIONS[word]
        if word.startswith("@") and not word.startswith("@@"):
            return "user variable (read or written: := cannot be told from a read here)"
    return None


def mysql_effects_before(sql: str) -> tuple[Effect, ...]:
    try:
        out = _mysql_walk_before(sql, depth=0)
    except Unscannable:
        return (Effect(Op.LOST, reason="statement that could not be scanned", at_once=True),)
    except (IndexError, ValueError):
        return (Effect(Op.LOST, reason="statement that could not be read", at_once=True),)
    if not any(e.op is not Op.PLAIN for e in out):
        return PLAIN
    session = (Op.REPLAY, Op.FORGET, Op.LOST, Op.FOUND)
    return tuple(replace(e, at_once=True) if e.op in session else e for e in out)


def _mysql_walk_before(sql: str, *, depth: int) -> list[Effect]:
    executable = mysql_fx._EXECUTABLE_COMMENT
    if "/*" in sql and executable.search(sql):
        if depth:
            return [Effect(Op.LOST, reason="nested /*! */ comment")]
        return _mysql_walk_before(executable.sub(lambda m: f" {m.group(1)} ", sql), depth=1)
    chunks = statement_texts(sql, dialect="mysql")
    if chunks and mysql_fx._compound(chunks[0][1]):
        if chunks[0][1][0] == "begin":
            return [Effect(Op.LOST, reason="compound statement (BEGIN NOT ATOMIC ... END)")]
        return [Effect(Op.COMMIT), Effect(Op.PLAIN)]
    out: list[Effect] = []
    for text, words in chunks:
        out.extend(mysql_fx._statement(text, words))
    return out


# -- texts to read ------------------------------------------------------------------------


def _corpus(*files: str) -> list[str]:
    """The SQL the dialect's own tests use: every string literal there with a space in it."""
    found: dict[str, None] = {}
    for name in files:
        tree = ast.parse((Path(__file__).parent / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and " " in node.value.strip():
                found[node.value] = None
    return list(found)


_SHARED = ["SELECT", "INTO", "FROM", "(", ")", ",", ".", "=", ";", "'", "'x'", '"Q"', "--", "/*", "*/",
           "\n", "1", "t", "x", "@x", "#t", "SET", "BEGIN", "COMMIT", "ROLLBACK", "CREATE", "DROP",
           "TABLE", "TEMPORARY", "IF", "NOT", "EXISTS", "WITH", "FOR", "CURSOR", "DECLARE", "USE"]
_PG_WORDS = [
    "LOCAL", "SESSION", "TRANSACTION", "CONSTRAINTS", "CHARACTERISTICS", "AS", "ROLE", "NONE",
    "AUTHORIZATION", "DEFAULT", "TIME", "ZONE", "NAMES", "SCHEMA", "RESET", "ALL", "PREPARE",
    "DEALLOCATE", "LISTEN", "UNLISTEN", "LOAD", "HOLD", "WITHOUT", "CLOSE", "DISCARD", "TEMP", "PLANS",
    "DO", "CALL", "VIEW", "SEQUENCE", "UNLOGGED", "ON", "pg_temp", "pg_temp.t", "public.t", "EXPLAIN",
    "ANALYZE", "START", "END", "ABORT", "SAVEPOINT", "RELEASE", "TO", "AND", "NO", "CHAIN", "PREPARED",
    "set_config", "pg_catalog", "pg_advisory_lock", "pg_try_advisory_lock_shared",
    "pg_advisory_unlock_all", "dblink_connect", "$$", "$f$", "$1", "true", "false", "myapp.user_id",
    "search_path", "E'\\''", "*", "WITH HOLD",
]
_MSSQL_WORDS = [
    "TRAN", "EXEC", "EXECUTE", "AS", "DEALLOCATE", "OPEN", "CLOSE", "SYMMETRIC", "KEY", "MASTER",
    "DBCC", "TRACEON", "PROCEDURE", "PROC", "FUNCTION", "VIEW", "TRIGGER", "OR", "ALTER", "UPDATE",
    "INSERT", "DATABASE", "##g", "@@spid", "sp_getapplock", "sp_set_session_context", "sp_setapprole",
    "sp_unsetapprole", "sp_xml_preparedocument", "sys", "master.dbo.", "N'k'", "[", "]", "[q]", "ON",
    "OFF", "NOCOUNT", "XACT_ABORT", "ANSI_NULLS", "DATEFIRST", "CONTEXT_INFO", "SHOWPLAN_XML",
    "TRANSACTION", "ISOLATION", "LEVEL", "READ", "COMMITTED", "IDENTITY_INSERT", "STATISTICS", "IO",
    "0x01", "-1", "LOCAL", "GLOBAL", "DISTRIBUTED", "GRANT", "PLAN", "HINT", "OPTION", "WHILE", "TRY",
    "CATCH", "END", "GO", "OBJECT_ID", "IS", "NULL", "@LockOwner", "'Session'", "LOGIN", "USER",
    "MARK", "WORK", "@key",
]
_MYSQL_WORDS = [
    "SESSION", "GLOBAL", "LOCAL", "PERSIST", "@@session", "@@global", "@", ":=", "`", '"', "\\", "#",
    "/*!40101", "/*M!100100", "NAMES", "CHARACTER", "START", "TRANSACTION", "AND", "NO", "CHAIN",
    "RELEASE", "TO", "SAVEPOINT", "XA", "RECOVER", "LOCK", "UNLOCK", "TABLES", "INSTANCE", "PREPARE",
    "DEALLOCATE", "PROCEDURE", "FUNCTION", "TRIGGER", "DEFINER", "HANDLER", "OPEN", "CLOSE", "GET_LOCK",
    "RELEASE_ALL_LOCKS", "CALL", "%s", "%(p)s", "?", "ATOMIC", "autocommit", "sql_mode", "ROLE",
    "PASSWORD", "STATEMENT", "RESOURCE", "ALTER", "TRUNCATE", "CHECK", "RESET", "STOP", "REPLICA",
    "LOAD", "INDEX", "SHOW", "WORK", "@`q`", "x'0f'", "_utf8'a'", "ISOLATION", "LEVEL",
]

_PG_CORPUS = _corpus("test_effects_pg.py", "test_sql_scan.py", "test_classify_postgresql.py")
_MSSQL_CORPUS = _corpus("test_effects_mssql.py", "test_classify_sqlserver.py")
_MYSQL_CORPUS = _corpus("test_effects_mysql.py", "test_classify_mysql.py")


# Beginnings that change how the rest of a text is read: a routine's or a module's body
# (not run now), control flow, a statement that holds another, executable comments.
_PG_OPENERS = ["EXPLAIN ANALYZE", "PREPARE q AS", "DO $$ BEGIN", "WITH x AS (SELECT 1)", "SET LOCAL"]
_MSSQL_OPENERS = [
    "CREATE PROCEDURE p AS", "CREATE PROC #p AS", "CREATE OR ALTER VIEW v AS", "ALTER FUNCTION f() AS",
    "CREATE TRIGGER tr ON t AFTER INSERT AS", "IF @@TRANCOUNT > 0", "BEGIN TRY", "WHILE 1 = 1",
    "sp_set_session_context 'k', 1", "sp_getapplock 'r', 'Exclusive'",
]
_MYSQL_OPENERS = [
    "CREATE PROCEDURE p() BEGIN", "CREATE DEFINER = 'u'@'%' FUNCTION f() RETURNS INT BEGIN",
    "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN", "BEGIN NOT ATOMIC",
    "ALTER EVENT e DO BEGIN", "/*!40101", "/*!40101 SET NAMES utf8 */;", "/*M!100100 /*!40101",
]


def texts(corpus: list[str], words: list[str], openers: list[str]) -> st.SearchStrategy[str]:
    """Known statements, keyword soup, both mixed (after an opener or not), any text at all."""
    soup = st.lists(st.sampled_from(_SHARED + words), max_size=16).map(" ".join)
    piece = st.one_of(st.sampled_from(corpus), soup)
    glue = st.sampled_from(["; ", " ", "\n", ";"])
    batch = st.tuples(st.lists(piece, min_size=1, max_size=4), glue).map(lambda p: p[1].join(p[0]))
    opened = st.tuples(st.sampled_from(openers), batch).map(" ".join)
    return st.one_of(batch, opened, st.text(max_size=80))


# -- the comparison -----------------------------------------------------------------------


def outcome(read: Callable[[str], Any], sql: str) -> Any:
    """What ``read`` returns, or the class of what it raises."""
    try:
        return read(sql)
    except Exception as exc:
        return type(exc)


def reads_as_before(
    dialect: Any,
    changes: Callable[[str], tuple[str, ...]],
    effects: Callable[[str], tuple[Effect, ...]],
    sql: str,
) -> None:
    # Where an old reading raised (PostgreSQL's effects do, on hundreds of nested
    # PREPARE ... AS), ``read`` raises the same, and takes the changes with it.
    now = outcome(dialect.read, sql)
    before = outcome(lambda text: Reading(effects=effects(text), changes=changes(text)), sql)
    assert now == before
    if isinstance(now, Reading):
        # the session tells a statement without effects by identity
        assert (now.effects is PLAIN) == (before.effects is PLAIN)
        assert dialect.session_effects(sql) is now.effects
        assert dialect.session_changes(sql) is now.changes


@settings(max_examples=EXAMPLES, deadline=None)
@given(texts(_PG_CORPUS, _PG_WORDS, _PG_OPENERS))
def test_postgresql_reads_as_before(sql: str) -> None:
    reads_as_before(pg, pg_changes_before, pg_effects_before, sql)


@settings(max_examples=EXAMPLES, deadline=None)
@given(texts(_MSSQL_CORPUS, _MSSQL_WORDS, _MSSQL_OPENERS))
def test_sqlserver_reads_as_before(sql: str) -> None:
    reads_as_before(mssql, mssql_changes_before, mssql_effects_before, sql)
    azure_before = lambda text: mssql_effects_before(text, azure=True)  # noqa: E731
    reads_as_before(azure, mssql_changes_before, azure_before, sql)


@settings(max_examples=EXAMPLES, deadline=None)
@given(texts(_MYSQL_CORPUS, _MYSQL_WORDS, _MYSQL_OPENERS))
def test_mysql_reads_as_before(sql: str) -> None:
    reads_as_before(mysql, mysql_changes_before, mysql_effects_before, sql)


def test_the_corpora_are_real() -> None:
    """The known statements are the dialects' test cases, not a handful of strings."""
    assert min(len(_PG_CORPUS), len(_MSSQL_CORPUS), len(_MYSQL_CORPUS)) > 100
