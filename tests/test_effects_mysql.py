"""MySQL statements read as session effects, and what a SessionLog makes of them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.dialects._effects_mysql import mysql_effects
from tether.dialects.mysql import dialect
from tether.session._log import SessionLog
from tether.vocab import PLAIN, Effect, Op, TxStatus

IDLE, IN_TX = TxStatus.IDLE, TxStatus.IN_TRANSACTION


def replays(sql: str) -> list[tuple[str, str]]:
    return [(e.key, e.text) for e in mysql_effects(sql) if e.op is Op.REPLAY]


def reasons(sql: str) -> list[str]:
    return [e.reason for e in mysql_effects(sql) if e.op is Op.LOST]


@pytest.mark.parametrize(("sql", "expected"), [
    ("USE shop", [("database", "USE shop")]),
    ("USE `my shop`", [("database", "USE `my shop`")]),
    ("SET sql_mode = 'ANSI'", [("var:sql_mode", "SET sql_mode = 'ANSI'")]),
    ("SET SESSION wait_timeout = 60", [("var:wait_timeout", "SET SESSION wait_timeout = 60")]),
    ("SET LOCAL wait_timeout = 60", [("var:wait_timeout", "SET LOCAL wait_timeout = 60")]),
    ("SET @@session.time_zone = '+00:00'", [("var:time_zone", "SET @@session.time_zone = '+00:00'")]),
    ("SET @@time_zone = 'UTC'", [("var:time_zone", "SET @@time_zone = 'UTC'")]),
    ("set Autocommit = 0", [("var:autocommit", "SET Autocommit = 0")]),
    ("SET NAMES utf8mb4", [("var:names", "SET NAMES utf8mb4")]),
    ("SET NAMES 'utf8mb4' COLLATE 'utf8mb4_bin'",
     [("var:names", "SET NAMES 'utf8mb4' COLLATE 'utf8mb4_bin'")]),
    ("SET CHARACTER SET utf8mb4", [("var:names", "SET CHARACTER SET utf8mb4")]),
    ("SET @x = 1", [("user:x", "SET @x = 1")]),
    ("SET @X := 'a'", [("user:x", "SET @X := 'a'")]),
    ("SET @x = %s", [("user:x", "SET @x = %s")]),
    ("SET @x = 1, sql_mode = 'ANSI', GLOBAL max_connections = 10",
     [("user:x", "SET @x = 1"), ("var:sql_mode", "SET sql_mode = 'ANSI'")]),
    ("SET sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')",
     [("var:#", "SET sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')")]),  # in order, never superseded
    ("SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE",
     [("var:transaction_isolation", "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE")]),
    ("SET SESSION TRANSACTION READ ONLY",
     [("var:transaction_read_only", "SET SESSION TRANSACTION READ ONLY")]),
    ("PREPARE s FROM 'SELECT ?'", [("prepared:s", "PREPARE s FROM 'SELECT ?'")]),
    ("/*!40101 SET NAMES utf8 */", [("var:names", "SET NAMES utf8")]),
    ("SET ROLE app_reader", [("role", "SET ROLE app_reader")]),
])
def test_replayable_statements(sql: str, expected: list[tuple[str, str]]) -> None:
    assert replays(sql) == expected
    assert all(e.at_once for e in mysql_effects(sql) if e.op is Op.REPLAY)  # ROLLBACK undoes no SET


@pytest.mark.parametrize(("sql", "expected"), [
    ("SET @x = (SELECT max(id) FROM t)", ["user variable @x set from a query"]),
    ("SET @x = NOW()", ["user variable @x set from an expression"]),
    ("SET @x = @y + 1", ["user variable @x set from an expression"]),
    ("SELECT a, b INTO @a, @b FROM t WHERE c = @c", ["user variable @a set from a query",
                                                     "user variable @b set from a query"]),
    ("SELECT @n := @n + 1 FROM t", ["user variable @n assigned in a query"]),
    ("SET sql_mode = (SELECT mode FROM cfg)", ["sql_mode set from a query"]),
    ("CREATE TEMPORARY TABLE tmp (a int)", ["temporary table tmp"]),
    ("CREATE TEMPORARY TABLE IF NOT EXISTS `odd name` (a int)", ["temporary table"]),
    ("SELECT GET_LOCK('job', 10)", ["user-level lock (GET_LOCK)"]),
    ("DO GET_LOCK('job', 10)", ["user-level lock (GET_LOCK)"]),
    ("LOCK TABLES t WRITE", ["LOCK TABLES"]),
    ("LOCK INSTANCE FOR BACKUP", ["LOCK INSTANCE FOR BACKUP"]),
    ("XA START 'x'", ["XA transaction"]),
    ("HANDLER t OPEN", ["HANDLER t open"]),
    ("PREPARE s FROM @q", ["prepared statement s from a variable"]),
    ("COMMIT AND CHAIN", ["COMMIT AND CHAIN"]),
    ("ROLLBACK AND CHAIN", ["ROLLBACK AND CHAIN"]),
    ("COMMIT RELEASE", ["COMMIT RELEASE (it ends the session)"]),
    ("CALL refresh()", ["procedure call (it may change the session)"]),
    ("BEGIN NOT ATOMIC SET @a = 1; SELECT @a; END", ["compound statement (BEGIN NOT ATOMIC ... END)"]),
    ("SET STATEMENT max_statement_time = 1 FOR SELECT 1",
     ["SET STATEMENT ... FOR (the statement was not read)"]),
    ("SET @x = 'unterminated", ["statement that could not be scanned"]),
    ("SELECT `a", ["statement that could not be scanned"]),
    ("SET", ["SET that could not be read"]),
    ("SET = 1", ["SET that could not be read"]),
])
def test_unrecoverable_statements(sql: str, expected: list[str]) -> None:
    assert reasons(sql) == expected


@pytest.mark.parametrize("sql", [
    "SELECT 1",
    "SET GLOBAL max_connections = 10",
    "SET @@global.max_connections = 10",
    "SET PERSIST max_connections = 10",
    "SELECT * FROM t WHERE a = @x",
    "INSERT INTO t VALUES (@x)",
    "SELECT a INTO OUTFILE '/tmp/x' FROM t",
    "SAVEPOINT s1",
    "RELEASE SAVEPOINT s1",
    "XA RECOVER",
    "# only a comment",
    "SELECT 'it''s' -- and a comment",
])
def test_plain_statements(sql: str) -> None:
    assert mysql_effects(sql) is PLAIN


def test_nothing_to_say_is_the_shared_plain_tuple() -> None:
    assert dialect.session_effects("UPDATE t SET a = 1") is PLAIN
    assert dialect.session_effects("USE shop")[0].key == "database"


@pytest.mark.parametrize(("sql", "ops"), [
    ("START TRANSACTION", [Op.BEGIN]),
    ("START TRANSACTION WITH CONSISTENT SNAPSHOT", [Op.BEGIN]),
    ("BEGIN", [Op.BEGIN]),
    ("BEGIN WORK", [Op.BEGIN]),
    ("COMMIT", [Op.COMMIT]),
    ("COMMIT AND NO CHAIN NO RELEASE", [Op.COMMIT]),
    ("ROLLBACK", [Op.ROLLBACK]),
    ("ROLLBACK WORK", [Op.ROLLBACK]),
    ("ROLLBACK TO SAVEPOINT s1", [Op.UNDO_TO]),
    ("ROLLBACK TO s1", [Op.UNDO_TO]),
    ("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", [Op.TX_LOCAL]),  # the next transaction only
    # statements that commit implicitly: COMMIT first
    ("CREATE TABLE t (a int)", [Op.COMMIT, Op.PLAIN]),
    ("ALTER TABLE t ADD b int", [Op.COMMIT, Op.PLAIN]),
    ("TRUNCATE TABLE t", [Op.COMMIT, Op.PLAIN]),
    ("RENAME TABLE a TO b", [Op.COMMIT, Op.PLAIN]),
    ("GRANT SELECT ON t TO u", [Op.COMMIT, Op.PLAIN]),
    ("CREATE INDEX i ON t (a)", [Op.COMMIT, Op.PLAIN]),
    ("DROP TABLE t", [Op.COMMIT, Op.PLAIN, Op.FOUND]),  # a temporary t goes first, if any
    ("DROP TEMPORARY TABLE IF EXISTS t", [Op.PLAIN, Op.FOUND]),  # no implicit commit
    ("LOCK TABLES t READ", [Op.COMMIT, Op.LOST]),
    ("SET autocommit = 1", [Op.COMMIT, Op.REPLAY]),
    ("CREATE PROCEDURE p() BEGIN SET @x = 1; DROP TEMPORARY TABLE t; END", [Op.COMMIT, Op.PLAIN]),
    ("CREATE DEFINER = 'u'@'%' PROCEDURE p() BEGIN CREATE TEMPORARY TABLE t (a int); END",
     [Op.COMMIT, Op.PLAIN]),
])
def test_transaction_boundaries(sql: str, ops: list[Op]) -> None:
    assert [e.op for e in mysql_effects(sql)] == ops


@pytest.mark.parametrize(("sql", "found"), [
    ("DROP TEMPORARY TABLE tmp", ["temp:tmp"]),
    ("DROP TABLE IF EXISTS a, b", ["temp:a", "temp:b"]),
    ("SELECT RELEASE_ALL_LOCKS()", ["lock:"]),
    ("UNLOCK TABLES", ["lock_tables"]),
    ("UNLOCK INSTANCE", ["backup_lock"]),
    ("HANDLER t CLOSE", ["handler:t"]),
    ("DEALLOCATE PREPARE s", ["prepared:s"]),
    ("DROP PREPARE s", ["prepared:s"]),
])
def test_found_again(sql: str, found: list[str]) -> None:
    assert [e.key for e in mysql_effects(sql) if e.op is Op.FOUND] == found


def test_deallocate_forgets_the_replay() -> None:
    assert [(e.op, e.key) for e in mysql_effects("DEALLOCATE PREPARE s")] == [
        (Op.FORGET, "prepared:s"), (Op.FOUND, "prepared:s")]


# -- what a SessionLog makes of them ---------------------------------------------------------


def run(log: SessionLog, sql: str, before: TxStatus = IDLE, after: TxStatus = IDLE,
        params: object = None) -> None:
    effects = mysql_effects(sql)
    if effects is PLAIN:
        log.plain(after)
    else:
        log.record(effects, params, before, after, lambda: True)


def test_latest_values_replay() -> None:
    log = SessionLog()
    run(log, "USE test")
    run(log, "SET NAMES latin1")
    run(log, "SET @tenant = 7, sql_mode = 'TRADITIONAL'")
    run(log, "USE shop")
    run(log, "SET NAMES utf8mb4")
    run(log, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    assert log.session_replay() == [
        ("SET @tenant = 7", None), ("SET sql_mode = 'TRADITIONAL'", None), ("USE shop", None),
        ("SET NAMES utf8mb4", None), ("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", None)]
    assert log.unrecoverable(IDLE) == ()


def test_set_transaction_is_for_the_next_transaction_only() -> None:
    log = SessionLog()
    run(log, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
    assert log.session_replay() == []


def test_a_user_variable_from_a_query_is_lost_until_set_to_a_constant() -> None:
    log = SessionLog()
    run(log, "SELECT max(id) INTO @last FROM t")
    assert log.unrecoverable(IDLE) == ("user variable @last set from a query",)
    run(log, "SET @last = 0")
    assert log.unrecoverable(IDLE) == ()
    assert log.session_replay() == [("SET @last = 0", None)]


def test_temp_table_is_named_and_dropping_it_clears_it() -> None:
    log = SessionLog()
    run(log, "CREATE TEMPORARY TABLE scratch (a int)")
    assert log.unrecoverable(IDLE) == ("temporary table scratch",)
    run(log, "DROP TEMPORARY TABLE scratch")
    assert log.unrecoverable(IDLE) == ()


def test_rollback_undoes_no_session_state() -> None:
    log = SessionLog()
    run(log, "START TRANSACTION", IDLE, IN_TX)
    run(log, "SET @x = 1", IN_TX, IN_TX)
    run(log, "CREATE TEMPORARY TABLE t (a int)", IN_TX, IN_TX)
    run(log, "ROLLBACK", IN_TX, IDLE)
    assert log.session_replay() == [("SET @x = 1", None)]
    assert log.unrecoverable(IDLE) == ("temporary table t",)


def test_ddl_commits_the_open_transaction() -> None:
    log = SessionLog()
    run(log, "START TRANSACTION", IDLE, IN_TX)
    run(log, "INSERT INTO t VALUES (1)", IN_TX, IN_TX)
    assert log.unrecoverable(IN_TX) == ("open transaction",)
    run(log, "CREATE TABLE u (a int)", IN_TX, IDLE)
    assert not log.tx_open
    assert log.unrecoverable(IDLE) == ()


def test_get_lock_stays_lost_until_all_released() -> None:
    log = SessionLog()
    run(log, "SELECT GET_LOCK('a', 1)")
    run(log, "SELECT RELEASE_LOCK('a')")
    assert log.unrecoverable(IDLE) == ("user-level lock (GET_LOCK)",)
    run(log, "SELECT RELEASE_ALL_LOCKS()")
    assert log.unrecoverable(IDLE) == ()


def test_prepared_statements_come_and_go() -> None:
    log = SessionLog()
    run(log, "PREPARE a FROM 'SELECT 1'")
    run(log, "PREPARE b FROM 'SELECT 2'")
    run(log, "DEALLOCATE PREPARE a")
    assert log.session_replay() == [("PREPARE b FROM 'SELECT 2'", None)]


def test_parameters_of_several_assignments_stay_with_one_statement() -> None:
    log = SessionLog()
    run(log, "SET @a = %s, @b = %s", params=(1, 2))
    assert log.session_replay() == [("SET @a = %s, @b = %s", (1, 2))]


_WORDS = st.sampled_from([
    "SET", "SESSION", "GLOBAL", "@@session", ".", "@x", "@", "=", ":=", ",", "(", ")", ";", "'", "`",
    "\"", "\\", "#", "--", "/*", "*/", "/*!40101", "NAMES", "CHARACTER", "USE", "BEGIN", "START",
    "TRANSACTION", "COMMIT", "ROLLBACK", "AND", "NO", "CHAIN", "RELEASE", "TO", "SAVEPOINT", "XA",
    "LOCK", "UNLOCK", "TABLES", "PREPARE", "FROM", "DEALLOCATE", "DROP", "CREATE", "TEMPORARY", "TABLE",
    "PROCEDURE", "HANDLER", "OPEN", "CLOSE", "SELECT", "INTO", "GET_LOCK", "RELEASE_ALL_LOCKS", "CALL",
    "%s", "?", "1", "'a'", "NOT", "ATOMIC", "autocommit", "sql_mode", "\n",
])


@settings(max_examples=400, deadline=None)
@given(st.lists(_WORDS, max_size=14).map(" ".join))
def test_keyword_soup_never_raises(sql: str) -> None:
    effects = mysql_effects(sql)
    assert all(isinstance(e, Effect) for e in effects)
    SessionLog().record(effects, None, IDLE, IDLE, lambda: True)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_random_text_never_raises(sql: str) -> None:
    assert all(isinstance(e, Effect) for e in mysql_effects(sql))


@pytest.mark.parametrize(("sql", "changes"), [
    ("/*!40101 SET NAMES latin1 */", ("SET of a session variable",)),
    ("/*! CREATE TEMPORARY TABLE t (a INT) */", ("temporary table",)),
    ("/*M!100100 SET @x = 1 */", ("SET of a session variable",)),
    ("/*!40101 /*!40101 SET NAMES latin1 */ */", ("nested /*! */ comment",)),
    ("SELECT 1 /* an ordinary comment: SET NAMES latin1 */", ()),
])
def test_what_executable_comments_hold_is_reset_too(sql: str, changes: tuple[str, ...]) -> None:
    # MySQL runs a /*! */ comment's text: the pool must reset what it leaves behind.
    assert dialect.read(sql).changes == changes
