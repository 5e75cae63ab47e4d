"""The SQL scanner and PostgreSQL's session-effect classification (pure units)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.dialects.postgresql import dialect as pg
from tether.vocab import QUOTED, Unscannable, statements


def test_splits_statements_and_skips_literals_and_comments() -> None:
    sql = (
        "SELECT 1; set search_path = 'a;b'; /* c; /* d */ ; */ select $$ ; $$ -- x;\n;"
        " CREATE TEMP TABLE t(x int)"
    )
    assert statements(sql) == (
        ("select",),
        ("set", "search_path", QUOTED),
        ("select", QUOTED),
        ("create", "temp", "table", "t", "x", "int"),
    )


def test_tagged_dollar_quotes_and_parameters() -> None:
    assert statements("SELECT $f$ ; set x $f$, $1, $2") == (("select", QUOTED),)


def test_escape_strings_and_quoted_identifiers() -> None:
    assert statements("select e'\\';', \"a;b\"") == (("select", QUOTED, QUOTED),)


def test_dialect_specific_quotes() -> None:
    assert statements("USE [my;db]; SELECT 1", dialect="sqlserver") == (("use", QUOTED), ("select",))
    assert statements("USE `x;y`; # c;\nSET @a = 1", dialect="mysql") == (
        ("use", QUOTED),
        ("set", "@a"),
    )


@pytest.mark.parametrize("sql", ["select 'abc", "select /* x", "select $q$ abc", 'select "x'])
def test_unterminated_text_is_unscannable(sql: str) -> None:
    with pytest.raises(Unscannable):
        statements(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "insert into t values (1)",
        "SET LOCAL work_mem = '1MB'",
        "set transaction isolation level serializable",
        "BEGIN; UPDATE t SET x = 1; COMMIT",
        "select 'set_config' as s",  # the word is inside a literal
        "create table t (x int)",
        "SELECT 1 -- SET search_path = x",
    ],
)
def test_statements_that_leave_nothing(sql: str) -> None:
    assert pg.session_changes(sql) == ()


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SET search_path TO shop", "SET of a session setting"),
        ("set session characteristics as transaction read only", "SET of a session setting"),
        ("RESET ALL", "RESET of a setting"),
        ("CREATE TEMP TABLE t (x int)", "temporary object"),
        ("create temporary table t as select 1", "temporary object"),
        ("SELECT 1 INTO TEMP t", "temporary table (SELECT INTO)"),
        ("select set_config('search_path', 'x', false)", "set_config() of a setting"),
        ("SELECT pg_advisory_lock(1)", "session advisory lock"),
        ("PREPARE q AS SELECT 1", "prepared statement"),
        ("LISTEN jobs", "LISTEN channel"),
        ("DECLARE c CURSOR WITH HOLD FOR SELECT 1", "cursor (may be WITH HOLD)"),
        ("SELECT 'x'", None),
        ("select 'unterminated", "statement that could not be scanned"),
    ],
)
def test_statements_that_change_the_session(sql: str, reason: str | None) -> None:
    assert pg.session_changes(sql) == ((reason,) if reason else ())


def test_goodbye_bytes() -> None:
    assert pg.idle_bytes_mean_dead(b"E\x00\x00\x00\x70SFATAL")
    assert not pg.idle_bytes_mean_dead(b"A\x00\x00\x00\x10")  # a NOTIFY is benign


@given(st.text(max_size=200))
def test_scanner_never_fails_but_with_unscannable(text: str) -> None:
    try:
        result = statements(text)
    except Unscannable:
        return
    assert all(words for words in result)
