"""SQL Server statements read as session effects, and what a SessionLog makes of them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.dialects._effects_mssql import mssql_effects, mssql_effects_azure
from tether.dialects.sqlserver import dialect
from tether.session._log import SessionLog
from tether.vocab import PLAIN, Effect, Op, TxStatus

IDLE, IN_TX = TxStatus.IDLE, TxStatus.IN_TRANSACTION


def summary(sql: str) -> list[tuple[str, str]]:
    """The non-PLAIN effects as (op, key or text or reason)."""
    out = []
    for e in mssql_effects(sql):
        if e.op is Op.PLAIN:
            continue
        detail = e.reason if e.op is Op.LOST else e.text if e.op in (Op.BEGIN, Op.TX_LOCAL) else e.key
        out.append((e.op.name, detail))
    return out


REPLAYED = [
    ("USE shop", "database", "USE shop"),
    ("USE [my shop]", "database", "USE [my shop]"),
    ("SET ANSI_NULLS ON", "option:ansi_nulls", "SET ANSI_NULLS ON"),
    ("set quoted_identifier off", "option:quoted_identifier", "SET QUOTED_IDENTIFIER OFF"),
    ("SET ARITHABORT ON", "option:arithabort", "SET ARITHABORT ON"),
    ("SET NOCOUNT ON", "option:nocount", "SET NOCOUNT ON"),
    ("SET DATEFIRST 1", "option:datefirst", "SET DATEFIRST 1"),
    ("SET DATEFORMAT dmy", "option:dateformat", "SET DATEFORMAT dmy"),
    ("SET LANGUAGE us_english", "option:language", "SET LANGUAGE us_english"),
    ("SET LANGUAGE N'Deutsch'", "option:language", "SET LANGUAGE N'Deutsch'"),
    ("SET LOCK_TIMEOUT -1", "option:lock_timeout", "SET LOCK_TIMEOUT -1"),
    ("SET TEXTSIZE 2147483647", "option:textsize", "SET TEXTSIZE 2147483647"),
    ("SET XACT_ABORT ON", "option:xact_abort", "SET XACT_ABORT ON"),
    ("SET CONCAT_NULL_YIELDS_NULL ON", "option:concat_null_yields_null", "SET CONCAT_NULL_YIELDS_NULL ON"),
    ("SET DEADLOCK_PRIORITY LOW", "option:deadlock_priority", "SET DEADLOCK_PRIORITY LOW"),
    ("SET DEADLOCK_PRIORITY -5", "option:deadlock_priority", "SET DEADLOCK_PRIORITY -5"),
    ("SET ROWCOUNT 10", "option:rowcount", "SET ROWCOUNT 10"),
    ("SET IMPLICIT_TRANSACTIONS ON", "option:implicit_transactions", "SET IMPLICIT_TRANSACTIONS ON"),
    ("SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED", "isolation",
     "SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED"),
    ("SET TRANSACTION ISOLATION LEVEL SNAPSHOT", "isolation", "SET TRANSACTION ISOLATION LEVEL SNAPSHOT"),
    ("SET CONTEXT_INFO 0x0102", "context_info", "SET CONTEXT_INFO 0x0102"),
    ("EXEC sp_set_session_context @key = N'tenant', @value = 42", "context:tenant",
     "EXEC sp_set_session_context @key = N'tenant', @value = 42"),
    ("EXEC sp_set_session_context @key = N'tenant', @value = 42, @read_only = 1", "context:tenant",
     "EXEC sp_set_session_context @key = N'tenant', @value = 42, @read_only = 1"),
    ("EXECUTE sys.sp_set_session_context N'user', N'bob'", "context:user",
     "EXECUTE sys.sp_set_session_context N'user', N'bob'"),
    ("sp_set_session_context N'user', N'bob'", "context:user", "EXEC sp_set_session_context N'user', N'bob'"),
    ("EXEC sp_set_session_context ?, ?", "context:#", "EXEC sp_set_session_context ?, ?"),
    ("SET STATISTICS IO ON", "option:statistics io", "SET STATISTICS IO ON"),
]


@pytest.mark.parametrize(("sql", "key", "text"), REPLAYED)
def test_replayable_statements(sql: str, key: str, text: str) -> None:
    effects = [e for e in mssql_effects(sql) if e.op is not Op.PLAIN]
    assert [(e.op, e.key, e.text) for e in effects] == [(Op.REPLAY, key, text)]
    assert effects[0].at_once  # SQL Server's SET options ignore ROLLBACK


def test_several_options_in_one_set_replay_one_by_one() -> None:
    assert summary("SET ANSI_NULLS, ANSI_WARNINGS ON") == [
        ("REPLAY", "option:ansi_nulls"), ("REPLAY", "option:ansi_warnings")]
    texts = [e.text for e in mssql_effects("SET ANSI_NULLS, ANSI_WARNINGS OFF")]
    assert texts == ["SET ANSI_NULLS OFF", "SET ANSI_WARNINGS OFF"]
    assert summary("SET STATISTICS IO, TIME ON") == [
        ("REPLAY", "option:statistics io"), ("REPLAY", "option:statistics time")]


def test_statements_without_semicolons_are_cut_apart() -> None:
    effects = mssql_effects("SET NOCOUNT ON INSERT INTO t VALUES (1) SET XACT_ABORT ON")
    assert [(e.op, e.text) for e in effects] == [
        (Op.REPLAY, "SET NOCOUNT ON"), (Op.PLAIN, ""), (Op.REPLAY, "SET XACT_ABORT ON")]
    effects = mssql_effects("SET LANGUAGE us_english SELECT 1 USE shop SELECT 2")
    assert [e.text for e in effects if e.op is Op.REPLAY] == ["SET LANGUAGE us_english", "USE shop"]
    effects = mssql_effects("SET DATEFIRST 1 SELECT 1")
    assert [e.text for e in effects if e.op is Op.REPLAY] == ["SET DATEFIRST 1"]


LOST = [
    ("CREATE TABLE #t (a int)", "temporary table #t"),
    ("CREATE TABLE ##g (a int)", "global temporary table ##g"),
    ("SELECT * INTO #t FROM x", "temporary table #t"),
    ("SELECT TOP 5 * INTO #top FROM t", "temporary table #top"),
    ("SELECT a INTO ##g FROM x", "global temporary table ##g"),
    ("CREATE PROCEDURE #p AS SELECT 1", "temporary procedure #p"),
    ("EXEC sp_getapplock @Resource = 'r', @LockMode = 'Exclusive', @LockOwner = 'Session'",
     "application lock (sp_getapplock)"),
    ("EXEC sp_getapplock 'r', 'Exclusive', 'Session'", "application lock (sp_getapplock)"),
    ("EXEC sp_getapplock @Resource = ?, @LockMode = ?, @LockOwner = ?", "application lock (sp_getapplock)"),
    ("EXECUTE AS USER = 'bob'", "EXECUTE AS (impersonation)"),
    ("EXECUTE AS LOGIN = 'bob' WITH NO REVERT", "EXECUTE AS (impersonation)"),
    ("DECLARE c CURSOR FOR SELECT 1", "cursor c"),
    ("DECLARE c CURSOR GLOBAL SCROLL FOR SELECT 1", "cursor c"),
    ("DECLARE c INSENSITIVE CURSOR FOR SELECT 1", "cursor c"),
    ("SET IDENTITY_INSERT dbo.t ON", "SET IDENTITY_INSERT ON"),
    ("DBCC TRACEON(1222)", "trace flag (DBCC TRACEON)"),
    ("EXEC sp_xml_preparedocument @h OUTPUT, @doc", "XML document handle (sp_xml_preparedocument)"),
    ("EXEC sp_OACreate 'Scripting.FileSystemObject', @o OUT", "OLE object (sp_OACreate)"),
    ("EXEC sp_setapprole 'app', 'pw'", "application role (sp_setapprole)"),
    ("OPEN SYMMETRIC KEY k DECRYPTION BY PASSWORD = 'x'", "open symmetric key k"),
    ("OPEN MASTER KEY DECRYPTION BY PASSWORD = 'x'", "open master key"),
    ("SET SHOWPLAN_XML ON", "SET SHOWPLAN_XML ON"),
    ("SET NOEXEC ON", "SET NOEXEC ON"),
    ("SET DATEFIRST @d", "SET DATEFIRST from a variable"),
    ("SET CONTEXT_INFO @ci", "SET CONTEXT_INFO from a variable"),
    ("EXEC sp_set_session_context N'k', @v", "sp_set_session_context from a variable"),
    ("SET FOO ON", "SET FOO (not an option tether knows)"),
    ("SET TRANSACTION READ ONLY", "SET TRANSACTION that could not be read"),
    ("SELECT 'unterminated", "statement that could not be scanned"),
    ("SELECT [unterminated", "statement that could not be scanned"),
    ("/* never closed", "statement that could not be scanned"),
    ("IF @x = 1 SET NOCOUNT ON", "SET NOCOUNT ON after IF/WHILE/TRY (whether it ran is unknown)"),
    ("BEGIN TRY SET XACT_ABORT ON; SELECT 1/0 END TRY BEGIN CATCH END CATCH",
     "SET XACT_ABORT ON after IF/WHILE/TRY (whether it ran is unknown)"),
]


@pytest.mark.parametrize(("sql", "reason"), LOST)
def test_unrecoverable_statements(sql: str, reason: str) -> None:
    assert ("LOST", reason) in summary(sql)


@pytest.mark.parametrize("sql", [
    "SELECT 1",
    "INSERT INTO #t SELECT * FROM x",  # the table exists already: creating it was the loss
    "UPDATE t SET nocount = 1",  # a column, not the option
    "ALTER DATABASE db SET ANSI_NULLS ON",  # the database's default, not the session's
    "ALTER DATABASE x SET SINGLE_USER WITH ROLLBACK IMMEDIATE",
    "SELECT 1 FROM t WITH (NOLOCK) OPTION (USE HINT('FORCE_LEGACY_CARDINALITY_ESTIMATION'))",
    "DECLARE @x int = 5 SET @x = 6",
    "DECLARE c CURSOR LOCAL FOR SELECT 1",  # deallocated with the batch
    "EXEC dbo.my_proc @a = 1",  # a user procedure: see the module's doc
    "EXEC (@sql)",
    "EXEC sp_executesql N'SET NOCOUNT ON'",  # dynamic SQL's SETs end with its scope
    "EXEC sp_getapplock @Resource = 'r', @LockMode = 'Exclusive'",  # owner Transaction (the default)
    "EXEC sp_getapplock @Resource = 'r', @LockMode = 'Exclusive', @LockOwner = 'Transaction'",
    "EXEC sp_releaseapplock @Resource = 'r'",  # does not prove every lock is gone
    "REVERT",  # nested EXECUTE AS cannot be counted: impersonation stays lost
    "DBCC TRACEON(1222, -1)",  # server-wide
    "DBCC CHECKDB",
    "CREATE PROCEDURE p AS SET NOCOUNT ON; CREATE TABLE #x (a int)",  # a body does not run now
    "CREATE OR ALTER TRIGGER tr ON t AFTER INSERT AS BEGIN SET NOCOUNT ON; IF UPDATE(a) ROLLBACK END",
    "GRANT EXECUTE ON p TO u",
    "SAVE TRANSACTION sp",
    "ON DELETE SET NULL",
    "OPEN c",
    "CLOSE c",
    "",
    "-- only a comment",
])
def test_plain_statements(sql: str) -> None:
    assert summary(sql) == []


def test_nothing_to_say_is_the_shared_plain_tuple() -> None:
    assert mssql_effects("SELECT * FROM t WHERE a = N'x'") is PLAIN
    assert dialect.session_effects("UPDATE t SET a = 1") is PLAIN
    assert dialect.session_effects("SET NOCOUNT ON")[0].key == "option:nocount"


@pytest.mark.parametrize(("sql", "found"), [
    ("DROP TABLE #t", ["temp:#t"]),
    ("DROP TABLE IF EXISTS #a, ##b", ["temp:#a", "temp:##b"]),
    ("DROP TABLE tempdb..#t", ["temp:#t"]),
    ("DROP PROCEDURE #p", ["temp:#p"]),
    ("IF OBJECT_ID('tempdb..#t') IS NOT NULL DROP TABLE #t", ["temp:#t"]),  # gone either way
    ("IF @x = 1 DROP TABLE #t", []),  # maybe not
    ("DEALLOCATE c", ["cursor:c"]),
    ("DEALLOCATE GLOBAL c", ["cursor:c"]),
    ("SET IDENTITY_INSERT t OFF", ["identity_insert"]),
    ("SET SHOWPLAN_XML OFF", ["option:showplan_xml"]),
    ("CLOSE SYMMETRIC KEY k", ["key:symmetric:k"]),
    ("CLOSE ALL SYMMETRIC KEYS", ["key:symmetric:"]),
    ("CLOSE MASTER KEY", ["key:master"]),
    ("EXEC sp_unsetapprole @cookie", ["approle"]),
])
def test_found_again(sql: str, found: list[str]) -> None:
    assert [e.key for e in mssql_effects(sql) if e.op is Op.FOUND] == found


@pytest.mark.parametrize(("sql", "ops"), [
    ("BEGIN TRAN", [Op.BEGIN]),
    ("BEGIN TRANSACTION t1 WITH MARK 'm'", [Op.BEGIN]),
    ("BEGIN DISTRIBUTED TRANSACTION", [Op.BEGIN]),
    ("COMMIT", [Op.COMMIT]),
    ("COMMIT TRAN t1", [Op.COMMIT]),
    ("COMMIT WORK", [Op.COMMIT]),
    ("COMMIT TRANSACTION WITH (DELAYED_DURABILITY = ON)", [Op.COMMIT]),
    ("ROLLBACK", [Op.ROLLBACK]),
    ("ROLLBACK TRANSACTION", [Op.ROLLBACK]),
    ("ROLLBACK TRAN sp1", [Op.UNDO_TO]),
    ("SAVE TRAN sp1", [Op.PLAIN]),
    ("IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION", [Op.PLAIN, Op.ROLLBACK]),
    ("BEGIN TRAN; UPDATE t SET a = 1; COMMIT", [Op.BEGIN, Op.PLAIN, Op.COMMIT]),
    ("BEGIN TRANSACTION UPDATE t SET a = 1 COMMIT TRANSACTION", [Op.BEGIN, Op.PLAIN, Op.COMMIT]),
])
def test_transaction_boundaries(sql: str, ops: list[Op]) -> None:
    assert [e.op for e in mssql_effects(sql)] == ops
    begin = [e for e in mssql_effects(sql) if e.op is Op.BEGIN]
    if begin:
        assert begin[0].text.upper().startswith("BEGIN")


def test_begin_text_is_the_statement_alone() -> None:
    effects = mssql_effects("BEGIN TRANSACTION t1 WITH MARK 'm' UPDATE t SET a = 1")
    assert effects[0].text == "BEGIN TRANSACTION t1 WITH MARK 'm'"


def test_azure_cannot_use_another_database() -> None:
    [effect] = mssql_effects_azure("USE shop")
    assert effect.op is Op.LOST and "Azure" in effect.reason
    assert mssql_effects_azure("SET NOCOUNT ON")[0].op is Op.REPLAY
    assert mssql_effects("USE shop")[0].op is Op.REPLAY


def test_only_temp_tables_follow_the_transaction() -> None:
    effects = mssql_effects("CREATE TABLE #t (a int); DECLARE c CURSOR FOR SELECT 1; SET NOCOUNT ON")
    at_once = {e.key: e.at_once for e in effects if e.op is not Op.PLAIN}
    assert at_once == {"temp:#t": False, "cursor:c": True, "option:nocount": True}


# -- what a SessionLog makes of them ---------------------------------------------------------


def run(log: SessionLog, sql: str, before: TxStatus = IDLE, after: TxStatus = IDLE,
        autocommit: bool | None = True) -> None:
    """As Lease.recorded does after a statement succeeded."""
    effects = mssql_effects(sql)
    if effects is PLAIN:
        log.plain(after)
    else:
        log.record(effects, None, before, after, lambda: autocommit)


def test_latest_values_replay_as_separate_statements() -> None:
    log = SessionLog()
    run(log, "USE tempdb; SET DATEFIRST 7")
    run(log, "SELECT 1")
    run(log, "USE shop; SET DATEFIRST 1; SET TRANSACTION ISOLATION LEVEL SNAPSHOT")
    assert log.session_replay() == [
        ("USE shop", None), ("SET DATEFIRST 1", None), ("SET TRANSACTION ISOLATION LEVEL SNAPSHOT", None)]
    assert log.unrecoverable(IDLE) == ()


def test_isolation_level_outlives_commit_and_rollback() -> None:
    log = SessionLog()
    run(log, "BEGIN TRAN", IDLE, IN_TX)
    run(log, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; SET DATEFIRST 3", IN_TX, IN_TX)
    run(log, "ROLLBACK", IN_TX, IDLE)
    assert log.session_replay() == [
        ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", None), ("SET DATEFIRST 3", None)]


def test_a_set_only_transaction_is_replayed() -> None:
    log = SessionLog()
    run(log, "BEGIN TRAN", IDLE, IN_TX)
    run(log, "SET XACT_ABORT ON", IN_TX, IN_TX)
    assert log.unrecoverable(IN_TX) == ()
    assert log.session_replay() == [("SET XACT_ABORT ON", None)]
    assert log.transaction_replay(IN_TX) == [("BEGIN TRAN", None)]
    run(log, "UPDATE t SET a = 1", IN_TX, IN_TX)
    assert log.unrecoverable(IN_TX) == ("open transaction",)


def test_temp_table_is_named_and_dropping_it_clears_it() -> None:
    log = SessionLog()
    run(log, "CREATE TABLE #scratch (a int)")
    assert log.unrecoverable(IDLE) == ("temporary table #scratch",)
    run(log, "DROP TABLE #scratch")
    assert log.unrecoverable(IDLE) == ()


def test_temp_table_created_in_a_rolled_back_transaction_is_gone() -> None:
    log = SessionLog()
    run(log, "BEGIN TRAN", IDLE, IN_TX)
    run(log, "CREATE TABLE #t (a int)", IN_TX, IN_TX)
    run(log, "ROLLBACK", IN_TX, IDLE)
    assert log.unrecoverable(IDLE) == ()


def test_temp_table_dropped_in_a_rolled_back_transaction_is_back() -> None:
    log = SessionLog()
    run(log, "CREATE TABLE #t (a int)")
    run(log, "BEGIN TRAN", IDLE, IN_TX)
    run(log, "DROP TABLE #t", IN_TX, IN_TX)
    run(log, "ROLLBACK", IN_TX, IDLE)
    assert log.unrecoverable(IDLE) == ("temporary table #t",)


def test_a_cursor_stays_lost_until_deallocated_even_across_rollback() -> None:
    log = SessionLog()
    run(log, "BEGIN TRAN", IDLE, IN_TX)
    run(log, "DECLARE c CURSOR FOR SELECT 1; OPEN c", IN_TX, IN_TX)
    run(log, "ROLLBACK", IN_TX, IDLE)
    assert log.unrecoverable(IDLE) == ("cursor c",)
    run(log, "CLOSE c; DEALLOCATE c")
    assert log.unrecoverable(IDLE) == ()


def test_app_lock_stays_lost_after_release() -> None:
    log = SessionLog()
    run(log, "EXEC sp_getapplock @Resource = 'r', @LockMode = 'Exclusive', @LockOwner = 'Session'")
    run(log, "EXEC sp_releaseapplock @Resource = 'r', @LockOwner = 'Session'")
    assert log.unrecoverable(IDLE) == ("application lock (sp_getapplock)",)


@pytest.mark.parametrize("sql", ["SELECT 'unterminated", "EXEC sp_set_session_context N'k", "SET 'x"])
def test_bad_input_is_lost_never_an_exception(sql: str) -> None:
    log = SessionLog()
    run(log, sql)
    assert log.unrecoverable(IDLE) == ("statement that could not be scanned",)


def test_session_context_replays_with_its_parameters() -> None:
    log = SessionLog()
    effects = mssql_effects("EXEC sp_set_session_context ?, ?")
    log.record(effects, ("tenant", 42), IDLE, IDLE, lambda: True)
    assert log.session_replay() == [("EXEC sp_set_session_context ?, ?", ("tenant", 42))]


_WORDS = st.sampled_from([
    "SET", "USE", "BEGIN", "TRAN", "COMMIT", "ROLLBACK", "EXEC", "EXECUTE", "AS", "DECLARE", "CURSOR",
    "DEALLOCATE", "OPEN", "CLOSE", "SYMMETRIC", "KEY", "MASTER", "DBCC", "TRACEON", "CREATE", "TABLE",
    "PROCEDURE", "DROP", "IF", "EXISTS", "INTO", "SELECT", "UPDATE", "ALTER", "DATABASE", "#t", "##g",
    "@x", "@@spid", "sp_getapplock", "sp_set_session_context", "sys", ".", ",", "=", "(", ")", ";",
    "'", "N'k'", "[", "]", "ON", "OFF", "NOCOUNT", "DATEFIRST", "TRANSACTION", "ISOLATION", "LEVEL",
    "IDENTITY_INSERT", "STATISTICS", "IO", "0x01", "1", "-1", "--", "/*", "*/", "\n", "LOCAL", "FOR",
])


@settings(max_examples=400, deadline=None)
@given(st.lists(_WORDS, max_size=14).map(" ".join))
def test_keyword_soup_never_raises(sql: str) -> None:
    for effects in (mssql_effects(sql), mssql_effects_azure(sql)):
        assert all(isinstance(e, Effect) for e in effects)
        log = SessionLog()
        log.record(effects, None, IDLE, IDLE, lambda: True)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_random_text_never_raises(sql: str) -> None:
    assert all(isinstance(e, Effect) for e in mssql_effects(sql))
