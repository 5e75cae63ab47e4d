"""tether behind a real PgBouncer (``fix_pgbouncer``): transaction pooling declared in the
connection string (``pool_mode=transaction``), session pooling as PostgreSQL itself; the
server and the bouncer restarting under load; a unit of work never applied twice."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import psycopg
import pytest

import tether
from fix_pgbouncer import restore
from fix_pool import wait_for_goodbye
from fix_wait import wait_until
from tether.dialects._classify_pg import classify
from tether.testing import EmbeddedPgBouncer, EmbeddedPostgres
from tether.vocab import Fault


def pooled(bouncer: EmbeddedPgBouncer) -> str:
    return f"{bouncer.dsn}?pool_mode={bouncer.pool_mode}"


@pytest.fixture
def ledger(pg_server: EmbeddedPostgres) -> Iterator[str]:
    """A table the units of work write to, straight on PostgreSQL."""
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bounced; CREATE TABLE bounced (id int PRIMARY KEY)")
    yield "bounced"


def count(pg_server: EmbeddedPostgres, table: str) -> int:
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def test_queries_pass_in_transaction_mode_without_prepared_statements(
    pgbouncer_admin: EmbeddedPgBouncer,
) -> None:
    # psycopg prepares a query after its 5th run; the prepared statement would stay on one
    # server connection while the next transaction runs on another.
    with tether.Pool(pooled(pgbouncer_admin), min_size=2, max_size=2) as pool:
        pool.wait(10)
        backends = set()
        for i in range(20):
            with pool.connection() as a, pool.connection() as b:  # two clients: servers change hands
                for conn in (a, b):
                    row = conn.execute("SELECT %s::int, pg_backend_pid()", (i,)).fetchone()
                    assert row is not None and row[0] == i
                    backends.add(row[1])
        assert len(backends) >= 2


def test_under_transaction_pooling_session_state_is_not_replayed(
    pgbouncer_admin: EmbeddedPgBouncer,
) -> None:
    with tether.Pool(pooled(pgbouncer_admin), min_size=1, max_size=1) as pool:
        pool.wait(10)
        with pool.connection() as conn:
            conn.execute("SELECT 1")  # a plain session: nothing to lose
            conn.commit()
            pgbouncer_admin.restart()  # every client connection closed
            wait_for_goodbye(conn)
            assert conn.execute("SELECT 2").fetchone() == (2,)  # reconnected, transparently
        with pool.connection() as conn:
            conn.execute("SET search_path TO pg_catalog")
            conn.commit()
            pgbouncer_admin.restart()
            wait_for_goodbye(conn)
            with pytest.raises(tether.SessionLost, match="PgBouncer's transaction pooling"):
                conn.execute("SELECT 1")
        stats = pool.stats()
        assert stats.recovered == 1 and stats.sessions_lost == 1


def test_under_session_pooling_the_session_comes_back_as_from_postgresql(
    pgbouncer_session_admin: EmbeddedPgBouncer,
) -> None:
    with tether.Pool(pooled(pgbouncer_session_admin), min_size=1, max_size=1) as pool:
        pool.wait(10)
        with pool.connection() as conn:
            conn.execute("SET search_path TO pg_catalog")
            conn.commit()
            pgbouncer_session_admin.restart()
            wait_for_goodbye(conn)
            assert conn.execute("SHOW search_path").fetchone() == ("pg_catalog",)
        assert pool.stats().recovered == 1


def _load(
    pool: tether.Pool, table: str, stop: threading.Event, errors: list[BaseException], retries: list[object]
) -> Callable[[], int]:
    """Units of work inserting 0, 1, 2... until ``stop``; returns how many committed."""
    done = [0]

    def insert(conn: tether.Connection, value: int) -> None:
        conn.execute(f"INSERT INTO {table} VALUES (%s)", (value,))

    def run() -> None:
        while not stop.is_set() and done[0] < 400:
            value = done[0]
            try:
                pool.transaction(lambda conn, value=value: insert(conn, value), on_retry=retries.append)
            except Exception as exc:  # counted: the test asserts there are none
                errors.append(exc)
                return
            done[0] += 1

    thread = threading.Thread(target=run)
    thread.start()

    def finish() -> int:
        thread.join(60)
        return done[0]

    return finish


@pytest.mark.parametrize("fault", ["restart postgresql", "restart pgbouncer", "kill server connections"])
def test_units_of_work_ride_out_faults_behind_pgbouncer_and_apply_once(
    pgbouncer_admin: EmbeddedPgBouncer, pg_server: EmbeddedPostgres, ledger: str, fault: str
) -> None:
    stop, errors, retries = threading.Event(), [], []
    with tether.Pool(pooled(pgbouncer_admin), min_size=2, max_size=4, timeout=30) as pool:
        pool.wait(10)
        finish = _load(pool, ledger, stop, errors, retries)
        wait_until(lambda: count(pg_server, ledger) >= 20, what="units of work committing")
        if fault == "restart postgresql":
            pg_server.restart()
        elif fault == "restart pgbouncer":
            pgbouncer_admin.restart()
        else:
            pgbouncer_admin.admin("RECONNECT")
            for server in pgbouncer_admin.admin("SHOW SERVERS"):
                with psycopg.connect(pg_server.dsn, autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", (server.remote_pid,))
        before = count(pg_server, ledger)

        def progressed() -> bool:
            if errors:  # the load stopped: say why now, not after the wait
                raise AssertionError(f"a unit of work failed: {errors[0]!r}") from errors[0]
            return count(pg_server, ledger) >= before + 20

        wait_until(progressed, timeout=30, what="work after the fault")
        stop.set()
        committed = finish()
        discarded = pool.stats().discarded_dead
    assert errors == []
    assert count(pg_server, ledger) == committed  # every unit once: none lost, none twice
    if fault == "restart pgbouncer":
        # Its clients' connections closed (PgBouncer hides the rest): a unit in flight ran
        # again, or the restart fell between two units and the checkout found them dead.
        assert retries or discarded, (retries, discarded)
    restore(pgbouncer_admin, pg_server)


def test_a_database_pgbouncer_does_not_know_fails_the_checkout_at_once(
    pgbouncer_transaction: EmbeddedPgBouncer,
) -> None:
    dsn = pgbouncer_transaction.dsn.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(psycopg.OperationalError, match="no such database") as info:
        psycopg.connect(dsn).close()
    assert classify(info.value).fault is Fault.FATAL  # PgBouncer's words, not PostgreSQL's
    with tether.Pool(f"{dsn}?pool_mode=transaction", min_size=0, timeout=30) as pool:
        with pytest.raises(tether.ConnectError, match="no such database"):  # not a PoolTimeout
            pool.getconn()
        assert not pool.stats().reconnecting
