"""PostgreSQL statements read as session effects: cases beyond test_resiliency's, and the
cases that were gaps once (found by review, fixed in ``_effects_pg.py``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.dialects._effects_pg import pg_effects
from tether.session._log import SessionLog
from tether.vocab import PLAIN, Effect, Op, TxStatus

IDLE, IN_TX = TxStatus.IDLE, TxStatus.IN_TRANSACTION


def ops(sql: str) -> list[tuple[Op, str]]:
    return [(e.op, e.key) for e in pg_effects(sql)]


def run(log: SessionLog, sql: str, before: TxStatus = IDLE, after: TxStatus = IDLE) -> None:
    effects = pg_effects(sql)
    if effects is PLAIN:
        log.plain(after)
    else:
        log.record(effects, None, before, after, lambda: True)


@pytest.mark.parametrize(("sql", "expected"), [
    ("SET search_path = a; SET SEARCH_PATH TO b",
     [(Op.REPLAY, "setting:search_path"), (Op.REPLAY, "setting:search_path")]),
    ("SET SESSION search_path TO x", [(Op.REPLAY, "setting:search_path")]),
    ("SET TIME ZONE 'UTC'", [(Op.REPLAY, "setting:timezone")]),
    ("SET NAMES 'UTF8'", [(Op.REPLAY, "setting:client_encoding")]),
    ("SET myapp.user_id = '1'", [(Op.REPLAY, "setting:myapp.user_id")]),
    ('SET "Search_Path" TO x', [(Op.REPLAY, "setting:#")]),
    ("RESET ALL", [(Op.FORGET, "setting:")]),
    ("SET LOCAL work_mem = '1MB'", [(Op.TX_LOCAL, "")]),
    ("SET CONSTRAINTS ALL DEFERRED", [(Op.TX_LOCAL, "")]),
    ("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", [(Op.REPLAY, "setting:#")]),
    ("SELECT set_config('a.b', 'x', false)", [(Op.REPLAY, "setting:#")]),
    ("SELECT set_config('a.b', 'x', true)", [(Op.TX_LOCAL, "setting:#")]),
    ("SELECT set_config('search_path', relname, false) FROM pg_class", [(Op.LOST, "")]),
    ("SELECT * INTO TEMP t FROM x", [(Op.LOST, "temp:table:t")]),
    ("WITH x AS (SELECT 1) SELECT * INTO TEMP t FROM x", [(Op.LOST, "temp:table:t")]),
    ("SELECT * INTO t FROM x", [(Op.PLAIN, "")]),
    ("CREATE TEMP TABLE IF NOT EXISTS t (a int)", [(Op.LOST, "temp:table:t")]),
    ("CREATE TEMPORARY VIEW v AS SELECT 1", [(Op.LOST, "temp:view:v")]),
    ("CREATE TEMP SEQUENCE s", [(Op.LOST, "temp:sequence:s")]),
    ("CREATE UNLOGGED TABLE t (a int)", [(Op.PLAIN, "")]),
    ("DISCARD TEMP", [(Op.FOUND, "temp:")]),
    ("DISCARD ALL", [(Op.DISCARD, "")]),
    ("DISCARD PLANS", [(Op.PLAIN, "")]),
    ("DECLARE c CURSOR WITH HOLD FOR SELECT 1", [(Op.LOST, "cursor:c")]),
    ("DECLARE c NO SCROLL CURSOR WITHOUT HOLD FOR SELECT 1", [(Op.PLAIN, "")]),
    ("CLOSE ALL", [(Op.FOUND, "cursor:")]),
    ("SELECT pg_advisory_lock(1)", [(Op.LOST, "lock:#")]),
    ("SELECT pg_try_advisory_lock_shared(1)", [(Op.LOST, "lock:#")]),
    ("SELECT pg_advisory_xact_lock(1)", [(Op.PLAIN, "")]),  # released with the transaction
    ("SELECT pg_advisory_unlock(1)", [(Op.PLAIN, "")]),  # not proof that all are released
    ("SELECT pg_advisory_unlock_all()", [(Op.FOUND, "lock:")]),
    ("SELECT 'pg_advisory_lock'", [(Op.PLAIN, "")]),  # a string, not a call
    ("LISTEN orders", [(Op.REPLAY, "listen:orders")]),
    ("UNLISTEN orders", [(Op.FORGET, "listen:orders")]),
    ("UNLISTEN *", [(Op.FORGET, "listen:")]),
    ("PREPARE p AS SELECT 1", [(Op.REPLAY, "prepared:p")]),
    ("DEALLOCATE PREPARE p", [(Op.FORGET, "prepared:p")]),
    ("DEALLOCATE ALL", [(Op.FORGET, "prepared:")]),
    ("PREPARE TRANSACTION 'x'", [(Op.LOST, "")]),
    ("COMMIT PREPARED 'x'", [(Op.PLAIN, "")]),
    ("SET ROLE bob", [(Op.LOST, "role")]),
    ("SET ROLE NONE", [(Op.FOUND, "role")]),
    ("SET SESSION AUTHORIZATION bob", [(Op.LOST, "authorization")]),
    ("SET LOCAL ROLE bob", [(Op.TX_LOCAL, "")]),
    ("BEGIN; SET LOCAL x.y = 1; COMMIT", [(Op.BEGIN, ""), (Op.TX_LOCAL, ""), (Op.COMMIT, "")]),
    ("START TRANSACTION ISOLATION LEVEL SERIALIZABLE", [(Op.BEGIN, "")]),
    ("END", [(Op.COMMIT, "")]),
    ("ABORT", [(Op.ROLLBACK, "")]),
    ("ROLLBACK TO SAVEPOINT s", [(Op.UNDO_TO, "")]),
    ("SAVEPOINT s", [(Op.PLAIN, "")]),
    ("COMMIT AND CHAIN", [(Op.LOST, "")]),
    ("CALL p()", [(Op.LOST, "")]),
    ("DO $$ BEGIN END $$", [(Op.LOST, "")]),
    ("SELECT 'unterminated", [(Op.LOST, "")]),
    ("SELECT $$unterminated", [(Op.LOST, "")]),
])
def test_classification(sql: str, expected: list[tuple[Op, str]]) -> None:
    assert ops(sql) == expected


def test_temp_tables_are_named_and_found_one_by_one() -> None:
    log = SessionLog()
    run(log, "CREATE TEMP TABLE a (x int); CREATE TEMP TABLE b (x int)")
    assert log.unrecoverable(IDLE) == ("temporary table a", "temporary table b")
    run(log, "DROP TABLE IF EXISTS a CASCADE")
    assert log.unrecoverable(IDLE) == ("temporary table b",)


def test_a_temp_table_created_in_a_rolled_back_transaction_never_existed() -> None:
    log = SessionLog()
    run(log, "BEGIN", IDLE, IN_TX)
    run(log, "CREATE TEMP TABLE t (a int)", IN_TX, IN_TX)
    run(log, "ROLLBACK", IN_TX, IDLE)
    assert log.unrecoverable(IDLE) == ()


# -- gaps found in review, now fixed --------------------------------------------------------------


@pytest.mark.parametrize(("sql", "op"), [
    ("COMMIT AND NO CHAIN", Op.COMMIT), ("ROLLBACK AND NO CHAIN", Op.ROLLBACK)])
def test_and_no_chain_is_a_plain_end(sql: str, op: Op) -> None:
    assert [e.op for e in pg_effects(sql)] == [op]


def test_pg_temp_qualified_tables_keep_their_own_names() -> None:
    log = SessionLog()
    run(log, "CREATE TABLE pg_temp.a (x int)")
    run(log, "CREATE TABLE pg_temp.b (x int)")
    run(log, "DROP TABLE pg_temp.a")
    assert log.unrecoverable(IDLE) == ("temporary table b",)


def test_dropping_another_schemas_table_does_not_find_the_temp_one() -> None:
    log = SessionLog()
    run(log, "CREATE TEMP TABLE t (x int)")
    run(log, "DROP TABLE public.t")
    assert log.unrecoverable(IDLE) == ("temporary table t",)


def test_dropping_another_kind_does_not_find_the_temp_table() -> None:
    log = SessionLog()
    run(log, "CREATE TEMP TABLE x (a int)")
    run(log, "DROP SEQUENCE x")
    assert log.unrecoverable(IDLE) == ("temporary table x",)


@pytest.mark.parametrize("undo", ["SET ROLE NONE", "RESET ROLE"])
def test_set_role_none_does_not_undo_session_authorization(undo: str) -> None:
    log = SessionLog()
    run(log, "SET SESSION AUTHORIZATION alice")
    run(log, undo)
    assert log.unrecoverable(IDLE) == ("SET SESSION AUTHORIZATION",)


def test_explain_analyze_of_create_temp() -> None:
    assert (Op.LOST, "temp:table:t") in ops("EXPLAIN ANALYZE CREATE TEMP TABLE t AS SELECT 1")


def test_execute_of_a_prepared_lock() -> None:
    log = SessionLog()
    run(log, "PREPARE take AS SELECT pg_advisory_lock(1)")  # PREPARE itself takes nothing
    run(log, "EXECUTE take")
    # Conservative: tether does not follow EXECUTE to its statement, so the PREPARE
    # itself makes the session unrecoverable.
    assert log.unrecoverable(IDLE) == ("prepared statement take that changes the session",)


def test_qualified_set_config_of_constants_replays() -> None:
    assert ops("SELECT pg_catalog.set_config('search_path', '', false)") == [(Op.REPLAY, "setting:#")]


def test_on_commit_drop_temp_table_is_gone_after_commit() -> None:
    log = SessionLog()
    run(log, "BEGIN", IDLE, IN_TX)
    run(log, "CREATE TEMP TABLE t (a int) ON COMMIT DROP", IN_TX, IN_TX)
    run(log, "COMMIT", IN_TX, IDLE)
    assert log.unrecoverable(IDLE) == ()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_random_text_never_raises(sql: str) -> None:
    effects = pg_effects(sql)
    assert all(isinstance(e, Effect) for e in effects)
    SessionLog().record(effects, None, IDLE, IDLE, lambda: True)


def test_behind_transaction_pooling_session_state_is_lost_never_replayed() -> None:
    from tether import parse
    from tether.dialects import dialect_for
    from tether.dialects.postgresql import behind_transaction_pooler

    pooled = dialect_for(parse("postgresql://app@bouncer:6432/shop?pool_mode=transaction"))
    assert pooled is behind_transaction_pooler
    assert dialect_for(parse("postgresql://app@bouncer:6432/shop?pool_mode=session")) is not pooled
    for sql, what in (("SET search_path TO shop", "SET search_path"), ("PREPARE p AS SELECT 1", "PREPARE p"),
                      ("LISTEN jobs", "LISTEN jobs")):
        reading = pooled.read(sql)
        (effect,) = reading.effects
        assert effect.op is Op.LOST and effect.reason.startswith(what) and "PgBouncer" in effect.reason
        assert reading.changes == ()  # the server connection it ran on is PgBouncer's: nothing to reset
    assert [e.op for e in pooled.read("BEGIN; SET LOCAL work_mem = '8MB'").effects] == [Op.BEGIN, Op.TX_LOCAL]
    assert pooled.read("SELECT 1").effects is PLAIN


def test_behind_transaction_pooling_the_drivers_prepare_nothing() -> None:
    from tether import parse
    from tether.drivers._psycopg_common import connect_kwargs

    assert connect_kwargs(parse("postgresql://a@b/c?pool_mode=transaction"), 5)["prepare_threshold"] is None
    assert "prepare_threshold" not in connect_kwargs(parse("postgresql://a@b/c?pool_mode=session"), 5)
