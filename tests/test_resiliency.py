"""Idle connection resiliency against a real PostgreSQL: a session killed while idle comes
back on a new backend with its state, or ``SessionLost`` says why it cannot."""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
import pytest

import tether
from fix_pool import wait_for_goodbye
from fix_twins import backend_pid
from fix_wait import wait_until
from tether.testing import EmbeddedPostgres


def kill(admin: EmbeddedPostgres, pid: int, conn: object) -> None:
    """Terminate one backend from another session; wait until ``conn``'s socket says so."""
    with psycopg.connect(admin.dsn, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (pid,))
        gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
        wait_until(lambda: other.execute(gone, (pid,)).fetchone() == (0,), what=f"backend {pid} gone")
    wait_for_goodbye(conn)


@pytest.fixture
def pool(make_pool: Callable[..., tether.Pool]) -> tether.Pool:
    return make_pool(min_size=1, max_size=2)


def test_settings_come_back_on_a_new_backend(pool: tether.Pool, pg_admin: EmbeddedPostgres) -> None:
    with pool.connection() as conn:
        conn.autocommit = True
        conn.execute("SET search_path TO pg_catalog, public")
        conn.execute("SET TIME ZONE 'Asia/Tokyo'")
        conn.execute("SET application_name = 'resilient'")
        conn.execute("SET statement_timeout = '7s'")
        conn.execute("SET work_mem = '5MB'")
        conn.execute("SET myapp.tenant = '42'")
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        before = backend_pid(conn)
        kill(pg_admin, before, conn)
        row = conn.execute(
            "SELECT current_setting('search_path'), current_setting('TimeZone'), "
            "current_setting('application_name'), current_setting('statement_timeout'), "
            "current_setting('work_mem'), current_setting('myapp.tenant'), "
            "current_setting('default_transaction_isolation'), pg_backend_pid()"
        ).fetchone()
    assert row is not None
    assert row[:7] == ("pg_catalog, public", "Asia/Tokyo", "resilient", "7s", "5MB", "42", "repeatable read")
    assert row[7] != before
    assert pool.stats().recovered == 1


def test_prepared_statements_are_prepared_again(pool: tether.Pool, pg_admin: EmbeddedPostgres) -> None:
    with pool.connection() as conn:
        conn.autocommit = True
        conn.execute("PREPARE add_one (int) AS SELECT $1 + 1")
        conn.execute("PREPARE gone AS SELECT 0")
        conn.execute("DEALLOCATE gone")
        for _ in range(6):  # psycopg prepares this one itself after 5 runs (prepare_threshold)
            conn.execute("SELECT %s::int * 2", (21,))
        kill(pg_admin, backend_pid(conn), conn)
        assert conn.execute("EXECUTE add_one(41)").fetchone() == (42,)
        names = conn.execute("SELECT name FROM pg_prepared_statements WHERE NOT from_sql IS FALSE").fetchall()
        assert ("add_one",) in names and ("gone",) not in names
        assert conn.execute("SELECT %s::int * 2", (21,)).fetchone() == (42,)


def test_listen_still_receives(pool: tether.Pool, pg_admin: EmbeddedPostgres) -> None:
    with pool.connection() as conn:
        conn.autocommit = True
        conn.execute("LISTEN orders")
        conn.execute("LISTEN other")
        conn.execute("UNLISTEN other")
        kill(pg_admin, backend_pid(conn), conn)
        channels = conn.execute("SELECT pg_listening_channels()").fetchall()
        assert channels == [("orders",)]
        with psycopg.connect(pg_admin.dsn, autocommit=True) as sender:
            sender.execute("NOTIFY orders, 'after the break'")
        received = list(conn.notifies(timeout=5.0, stop_after=1))
        assert [(n.channel, n.payload) for n in received] == [("orders", "after the break")]


def test_a_transaction_that_only_set_things_is_replayed(
    pool: tether.Pool, pg_admin: EmbeddedPostgres
) -> None:
    # psycopg's default: not autocommit, so the SET opened a transaction; nothing was read yet.
    with pool.connection() as conn:
        conn.execute("SET search_path TO pg_catalog")
        conn.execute("SET LOCAL work_mem = '3MB'")
        pid = conn.raw.info.backend_pid  # read client-side: a query would end "only set things"
        kill(pg_admin, pid, conn)
        row = conn.execute("SELECT current_setting('search_path'), current_setting('work_mem')").fetchone()
        assert row == ("pg_catalog", "3MB")
        assert conn.raw.info.backend_pid != pid
        conn.commit()
        assert conn.execute("SELECT current_setting('search_path')").fetchone() == ("pg_catalog",)


def test_a_rolled_back_setting_is_not_replayed(pool: tether.Pool, pg_admin: EmbeddedPostgres) -> None:
    with pool.connection() as conn:
        conn.execute("SET search_path TO pg_catalog")
        conn.rollback()
        conn.execute("SET TIME ZONE 'UTC'")
        conn.commit()
        kill(pg_admin, conn.raw.info.backend_pid, conn)
        row = conn.execute("SELECT current_setting('search_path'), current_setting('TimeZone')").fetchone()
        assert row == ('"$user", public', "UTC")


@pytest.mark.parametrize(
    ("statements", "reason"),
    [
        (["CREATE TEMP TABLE t1 (a int)"], "temporary table t1"),
        (["SELECT 1"], "open transaction"),  # not autocommit: the SELECT's transaction is open
        (["DECLARE c CURSOR WITH HOLD FOR SELECT 1"], "WITH HOLD cursor c"),
        (["SELECT pg_advisory_lock(7)"], "session advisory lock"),
        (["SET ROLE tether_test"], "SET ROLE"),
        (["DO $$ BEGIN PERFORM 1; END $$"], "DO block (it may change the session)"),
        (
            ["SELECT set_config('search_path', relname, false) FROM pg_class LIMIT 1"],
            "set_config() from a query",
        ),
    ],
)
def test_unrecoverable_state_raises_session_lost_naming_it(
    pool: tether.Pool, pg_admin: EmbeddedPostgres, statements: list[str], reason: str
) -> None:
    with psycopg.connect(pg_admin.dsn, autocommit=True) as admin:
        admin.execute(
            "DO $$ BEGIN CREATE ROLE tether_test; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        admin.execute(f"GRANT tether_test TO {pg_admin.user}")
    with pool.connection() as conn:
        conn.autocommit = reason != "open transaction"
        for sql in statements:
            conn.execute(sql)
        kill(pg_admin, conn.raw.info.backend_pid, conn)
        with pytest.raises(tether.SessionLost) as caught:
            conn.execute("SELECT 1")
        assert caught.value.reasons == (reason,)
        assert reason in str(caught.value)
        assert isinstance(caught.value, psycopg.OperationalError)
        with pytest.raises(tether.SessionLost):  # and again: it never continues silently
            conn.execute("SELECT 1")
    stats = pool.stats()
    assert stats.sessions_lost == 1 and stats.recovered == 0
    with pool.connection() as conn:  # the lost one was discarded, not handed out again
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_temp_table_dropped_again_no_longer_blocks_recovery(
    pool: tether.Pool, pg_admin: EmbeddedPostgres
) -> None:
    with pool.connection() as conn:
        conn.autocommit = True
        conn.execute("CREATE TEMP TABLE scratch (a int)")
        conn.execute("DROP TABLE scratch")
        conn.execute("SELECT pg_advisory_lock(1)")
        conn.execute("SELECT pg_advisory_unlock_all()")
        kill(pg_admin, conn.raw.info.backend_pid, conn)
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_rollback_of_a_lost_transaction_is_not_an_error(
    pool: tether.Pool, pg_admin: EmbeddedPostgres
) -> None:
    with pool.connection() as conn:
        conn.execute("SET search_path TO pg_catalog")
        conn.commit()
        conn.execute("SELECT 1")  # a transaction is open again, and has read something
        kill(pg_admin, conn.raw.info.backend_pid, conn)
        conn.rollback()  # what was to be undone is gone with the old session
        assert conn.execute("SELECT current_setting('search_path')").fetchone() == ("pg_catalog",)


def test_a_break_during_a_statement_is_never_resent(pool: tether.Pool, pg_admin: EmbeddedPostgres) -> None:
    with psycopg.connect(pg_admin.dsn, autocommit=True) as admin:
        admin.execute("DROP TABLE IF EXISTS resend_probe")
        admin.execute("CREATE TABLE resend_probe (n int)")
        with pool.connection() as conn:
            conn.autocommit = True
            pid = conn.raw.info.backend_pid
            terminate = ("SELECT pg_terminate_backend(%s)", (pid,))
            killer = threading.Timer(0.3, admin.execute, terminate)
            killer.start()
            try:
                with pytest.raises(psycopg.OperationalError) as caught:
                    conn.execute("INSERT INTO resend_probe SELECT 1 FROM pg_sleep(2)")
            finally:
                killer.join()
            assert not isinstance(caught.value, tether.SessionLost)
            # The application decides about the INSERT; the next statement gets a new session.
            assert conn.execute("SELECT count(*) FROM resend_probe").fetchone() == (0,)
        assert pool.stats().recovered == 1


def test_no_recovery_with_connect_retry_count_0(
    make_pool: Callable[..., tether.Pool], pg_admin: EmbeddedPostgres
) -> None:
    pool = make_pool(min_size=1, max_size=1, connect_retry_count=0)
    with pool.connection() as conn:
        conn.autocommit = True
        conn.execute("SET search_path TO pg_catalog")
        kill(pg_admin, conn.raw.info.backend_pid, conn)
        with pytest.raises(psycopg.OperationalError) as caught:
            conn.execute("SELECT 1")
        assert not isinstance(caught.value, tether.SessionLost)
    assert pool.stats().recovered == 0


def test_unpooled_connections_recover_too(pg_admin: EmbeddedPostgres) -> None:
    conn = tether.connect(pg_admin.dsn + ("&" if "?" in pg_admin.dsn else "?") + "Pooling=false")
    try:
        conn.autocommit = True
        conn.execute("SET TIME ZONE 'Europe/Paris'")
        kill(pg_admin, conn.raw.info.backend_pid, conn)
        assert conn.execute("SELECT current_setting('TimeZone')").fetchone() == ("Europe/Paris",)
    finally:
        conn.close()


def test_a_link_reset_by_the_wan_emulator_is_recovered(
    make_pool: Callable[..., tether.Pool], pg_server: EmbeddedPostgres
) -> None:
    from tether.wan import Link

    pg_server.start()
    with Link(upstream=(pg_server.host, pg_server.port)) as link:
        host, port = link.listen_address
        pool = make_pool(f"postgresql://{pg_server.user}@{host}:{port}/{pg_server.database}",
                         min_size=1, max_size=1, maintenance_interval=60)
        with pool.connection() as conn:
            conn.autocommit = True
            conn.execute("SET application_name = 'through the wan'")
            conn.execute("PREPARE two AS SELECT 2")
            link.wait_connections(1)
            assert link.reset_all() == 1
            wait_for_goodbye(conn)
            row = conn.execute("SELECT current_setting('application_name')").fetchone()
            assert row == ("through the wan",)
            assert conn.execute("EXECUTE two").fetchone() == (2,)
        assert pool.stats().recovered == 1


def test_a_transaction_begun_behind_the_proxy_is_not_replayed(
    pool: tether.Pool, pg_admin: EmbeddedPostgres
) -> None:
    with pool.connection() as conn:
        conn.autocommit = True
        with conn.transaction():  # psycopg's own BEGIN, which the proxy does not see
            conn.execute("SET LOCAL work_mem = '3MB'")
            kill(pg_admin, conn.raw.info.backend_pid, conn)
            with pytest.raises(tether.SessionLost) as caught:
                conn.execute("SELECT 1")
            assert caught.value.reasons == ("open transaction",)
