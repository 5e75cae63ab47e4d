"""Round trips of a borrow in transaction mode (psycopg, ``tether.Pool``), counted on the wire.

psycopg's BEGIN travels with the borrower's first statement (one pipeline), and a block
whose transaction the server says wrote nothing ends off the caller's path. Each test
counts the turns the client took through a counting proxy (``fix_turns``): what a user on
a 30 ms link would wait for, never a clock.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

import tether
from fix_turns import TurnCounter, counting, texts
from fix_wait import wait_until
from tether.session import _proxy, lease_of
from tether.testing import EmbeddedPostgres

Turns = list[list[str]]


@pytest.fixture(autouse=True)
def far(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every server counts as far (as one behind a WAN link): loopback answers too fast."""
    monkeypatch.setattr(_proxy, "FAR_S", 0.0)


@pytest.fixture
def wire(pg_server: EmbeddedPostgres) -> Iterator[tuple[TurnCounter, str]]:
    with counting(pg_server) as pair:
        yield pair


@pytest.fixture
def pool(wire: tuple[TurnCounter, str]) -> Iterator[tether.Pool]:
    with tether.Pool(wire[1], min_size=1, max_size=1, timeout=5.0) as made:
        made.wait(10.0)
        with made.connection() as conn:  # a first transaction measures the round trip: far
            conn.execute("SELECT 1")
        yield made


@pytest.fixture
def table(pg_dsn: str) -> Iterator[str]:
    name = "rtt_rows"
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f"DROP TABLE IF EXISTS {name}")
        admin.execute(f"CREATE TABLE {name} (x int)")
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f"DROP TABLE IF EXISTS {name}")


def borrow(pool: tether.Pool, counter: TurnCounter, body: object) -> tuple[Turns, Turns]:
    """Run ``body(conn)`` in a with-block: (the caller's turns, every turn once settled)."""
    counter.settle()
    counter.since()
    with pool.connection() as conn:
        body(conn)  # type: ignore[operator]
    caller = counter.turns()
    counter.settle()
    return caller, counter.turns()


def rows(dsn: str, table: str) -> list[tuple[int]]:
    with psycopg.connect(dsn, autocommit=True) as other:
        return other.execute(f"SELECT x FROM {table} ORDER BY x").fetchall()


def test_a_read_costs_one_round_trip_and_commits_in_the_background(
    pool: tether.Pool, wire: tuple[TurnCounter, str]
) -> None:
    counter = wire[0]
    seen: list[object] = []
    caller, settled = borrow(pool, counter, lambda c: seen.append(c.execute("SELECT 41 + 1").fetchone()))
    assert seen == [(42,)]
    assert len(caller) == 1, caller
    statements = texts(caller[0])
    assert statements[:2] == ["BEGIN", "SELECT 41 + 1"]  # BEGIN rides with the statement
    assert "pg_current_xact_id_if_assigned" in statements[2]  # the server's word: nothing written
    assert settled[1:] == [["Q:COMMIT"]]  # the end went to the background
    with pool.connection() as conn:  # the next borrower finds it ended
        assert conn.raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_read_only_and_isolation_ride_on_the_begin(pool: tether.Pool, wire: tuple[TurnCounter, str]) -> None:
    def body(conn: tether.Connection) -> None:
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        assert conn.execute("SHOW transaction_read_only").fetchone() == ("on",)

    caller, _ = borrow(pool, wire[0], body)
    assert len(caller) == 1, caller
    assert texts(caller[0])[0] == "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"


def test_a_write_commits_on_the_callers_path_in_two_round_trips(
    pool: tether.Pool, wire: tuple[TurnCounter, str], table: str, pg_dsn: str
) -> None:
    caller, _ = borrow(pool, wire[0], lambda c: c.execute(f"INSERT INTO {table} VALUES (%s)", (7,)))
    assert [texts(t) for t in caller][1:] == [["COMMIT"]]
    assert texts(caller[0])[:2] == ["BEGIN", f"INSERT INTO {table} VALUES ($1)"]
    assert len(caller) == 2
    assert rows(pg_dsn, table) == [(7,)]  # committed when the block returned


def test_serializable_keeps_the_commit_on_the_callers_path(
    pool: tether.Pool, wire: tuple[TurnCounter, str]
) -> None:
    def body(conn: tether.Connection) -> None:
        conn.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
        conn.execute("SELECT 1")

    caller, _ = borrow(pool, wire[0], body)
    assert [texts(t) for t in caller][1:] == [["COMMIT"]]  # a serializable COMMIT may fail


def test_a_notify_commits_on_the_callers_path(pool: tether.Pool, wire: tuple[TurnCounter, str]) -> None:
    caller, _ = borrow(pool, wire[0], lambda c: c.execute("NOTIFY rtt_channel"))
    assert len(caller) == 2 and texts(caller[0]) == ["BEGIN", "NOTIFY rtt_channel"]


def test_a_later_statement_or_raw_access_keeps_the_commit_on_the_callers_path(
    pool: tether.Pool, wire: tuple[TurnCounter, str], table: str, pg_dsn: str
) -> None:
    def raw_write(conn: tether.Connection) -> None:
        conn.execute("SELECT 1")  # quiet so far
        conn.raw.execute(f"INSERT INTO {table} VALUES (1)")  # unseen by the proxy

    caller, _ = borrow(pool, wire[0], raw_write)
    assert texts(caller[-1]) == ["COMMIT"]

    def copy_write(conn: tether.Connection) -> None:
        cur = conn.cursor()
        cur.execute("SELECT 1")
        with cur.copy(f"COPY {table} (x) FROM STDIN") as copy:
            copy.write_row((2,))

    caller, _ = borrow(pool, wire[0], copy_write)
    assert texts(caller[-1]) == ["COMMIT"]

    def second_statement(conn: tether.Connection) -> None:
        conn.execute("SELECT 1")
        conn.execute(f"INSERT INTO {table} VALUES (3)")

    caller, _ = borrow(pool, wire[0], second_statement)
    assert texts(caller[-1]) == ["COMMIT"]
    assert rows(pg_dsn, table) == [(1,), (2,), (3,)]


def test_an_error_at_the_end_rolls_back_in_the_background(
    pool: tether.Pool, wire: tuple[TurnCounter, str], table: str, pg_dsn: str
) -> None:
    counter = wire[0]
    counter.settle()
    counter.since()
    with pytest.raises(ZeroDivisionError), pool.connection() as conn:
        conn.execute(f"INSERT INTO {table} VALUES (1)")
        1 / 0  # noqa: B018
    assert len(counter.turns()) == 1  # BEGIN and the INSERT; the ROLLBACK is not waited for
    counter.settle()
    assert texts(counter.turns()[-1]) == ["ROLLBACK"]
    assert rows(pg_dsn, table) == []


def test_a_failing_first_statement_fails_as_psycopgs_would(pool: tether.Pool) -> None:
    with pool.connection() as conn:
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM rtt_no_such_table")
        assert conn.raw.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.rollback()
        assert conn.execute("SELECT 2").fetchone() == (2,)
    with pool.connection() as conn, pytest.raises(psycopg.errors.DivisionByZero):
        conn.execute("SELECT 1 / %s", (0,))


def test_a_near_server_gets_psycopgs_own_three_round_trips(
    pool: tether.Pool, wire: tuple[TurnCounter, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_proxy, "FAR_S", 3600.0)  # every round trip is short of it
    counter = wire[0]
    first, _ = borrow(pool, counter, lambda c: c.execute("SELECT 1"))
    assert len(first) == 1  # asked: the last round trip measured was far; this one is near
    then, _ = borrow(pool, counter, lambda c: c.execute("SELECT 1"))
    assert [texts(t) for t in then] == [["BEGIN"], ["SELECT 1"], ["COMMIT"]]  # psycopg's own way


def test_a_new_connection_is_measured_before_it_is_asked(
    pool: tether.Pool, wire: tuple[TurnCounter, str]
) -> None:
    counter = wire[0]
    with pool.connection() as conn:
        lease_of(conn).far = False  # as a new connection starts (this one was measured already)
    first, _ = borrow(pool, counter, lambda c: c.execute("SELECT 1"))
    assert [texts(t) for t in first] == [["BEGIN"], ["SELECT 1"], ["COMMIT"]]  # timed, as psycopg sends it
    second, _ = borrow(pool, counter, lambda c: c.execute("SELECT 1"))  # FAR_S = 0: far now
    assert len(second) == 1
    assert texts(second[0])[:2] == ["BEGIN", "SELECT 1"]


def test_what_cannot_be_pipelined_goes_as_psycopg_sends_it(
    pool: tether.Pool, wire: tuple[TurnCounter, str], table: str, pg_dsn: str
) -> None:
    counter = wire[0]
    caller, _ = borrow(pool, counter, lambda c: c.execute("SELECT 1; SELECT 2"))
    assert [texts(t) for t in caller] == [["BEGIN"], ["SELECT 1; SELECT 2"], ["COMMIT"]]

    def many(conn: tether.Connection) -> None:
        conn.cursor().executemany(f"INSERT INTO {table} VALUES (%s)", [(1,), (2,)])

    borrow(pool, counter, many)

    def named(conn: tether.Connection) -> None:
        with conn.cursor(name="rtt_named") as cur:
            cur.execute(f"SELECT x FROM {table} ORDER BY x")
            assert cur.fetchall() == [(1,), (2,)]

    borrow(pool, counter, named)

    def copy(conn: tether.Connection) -> None:
        with conn.cursor().copy(f"COPY {table} (x) FROM STDIN") as cp:
            cp.write_row((3,))

    borrow(pool, counter, copy)
    assert rows(pg_dsn, table) == [(1,), (2,), (3,)]


def test_a_writing_unit_of_work_costs_two_round_trips_and_keeps_its_marker(
    pool: tether.Pool, wire: tuple[TurnCounter, str], table: str, pg_dsn: str
) -> None:
    counter = wire[0]
    markers: list[object] = []

    def unit(conn: tether.Connection) -> None:
        conn.execute(f"INSERT INTO {table} VALUES (%s)", (5,))
        markers.append(lease_of(conn).marker)

    counter.settle()
    counter.since()
    pool.transaction(unit)
    caller = counter.turns()
    assert len(caller) == 2, caller
    assert texts(caller[0]) == ["BEGIN", "SELECT txid_current(), pg_backend_pid()",
                                f"INSERT INTO {table} VALUES ($1)"]
    assert texts(caller[1]) == ["COMMIT"]
    (marker,) = markers
    assert isinstance(marker, tuple) and len(marker) == 2 and marker[0] > 0  # (xid, backend pid)
    assert rows(pg_dsn, table) == [(5,)]


def test_a_unit_whose_first_statement_cannot_carry_the_marker_asks_before_commit(
    pool: tether.Pool, wire: tuple[TurnCounter, str], table: str
) -> None:
    counter = wire[0]
    counter.settle()
    counter.since()

    def unit(conn: tether.Connection) -> None:
        with conn.cursor().copy(f"COPY {table} (x) FROM STDIN") as cp:
            cp.write_row((9,))

    pool.transaction(unit)
    statements = [texts(t) for t in counter.turns()]
    assert statements[-2:] == [["SELECT txid_current(), pg_backend_pid()"], ["COMMIT"]]


def test_the_next_borrower_never_sees_a_background_commit_pending(pool: tether.Pool) -> None:
    xids = []
    for _ in range(3):
        with pool.connection() as conn:
            conn.execute("SELECT 1")
            xids.append(conn.execute("SELECT pg_current_xact_id()::text").fetchone())
            # the second statement assigned an id: this COMMIT stays on the caller's path
        with pool.connection() as conn:
            conn.execute("SELECT 1")  # a quiet one: its COMMIT goes to the background
        with pool.connection() as conn:  # max_size=1: the same connection, after that COMMIT
            assert conn.raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert len(set(xids)) == 3
    wait_until(lambda: pool.stats().idle == 1, what="the last background COMMIT")


def test_a_first_statement_past_its_command_timeout_is_cancelled(pool: tether.Pool) -> None:
    with pool.connection() as conn:
        with pytest.raises(tether.CommandTimeout):
            conn.execute("SELECT pg_sleep(30)", command_timeout=0.2)
        assert conn.raw.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        conn.rollback()
        assert conn.execute("SELECT 7").fetchone() == (7,)


def test_binary_rows_and_row_factories_reach_the_cursor(pool: tether.Pool) -> None:
    from psycopg.rows import dict_row

    with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        cur.execute("SELECT %s::int AS n, 'x'::text AS s", (5,), binary=True)
        assert cur.fetchall() == [{"n": 5, "s": "x"}]
        assert cur.rowcount == 1 and [c.name for c in cur.description] == ["n", "s"]


def test_reading_what_the_client_holds_keeps_the_end_in_the_background(
    pool: tether.Pool, wire: tuple[TurnCounter, str]
) -> None:
    def described(conn: tether.Connection) -> None:
        cur = conn.cursor()
        cur.execute("SELECT 1 AS one")
        assert (cur.description[0].name, cur.rowcount, conn.autocommit) == ("one", 1, False)

    caller, _ = borrow(pool, wire[0], described)
    assert len(caller) == 1, caller

    def through_libpq(conn: tether.Connection) -> None:
        conn.execute("SELECT 1")
        conn.pgconn.exec_(b"SELECT 2")  # libpq itself: unseen by the proxy

    caller, _ = borrow(pool, wire[0], through_libpq)
    assert texts(caller[-1]) == ["COMMIT"]


def test_a_repeated_first_statement_is_prepared_as_psycopg_would(
    pool: tether.Pool, wire: tuple[TurnCounter, str]
) -> None:
    counter = wire[0]
    for n in range(7):  # psycopg prepares a statement at its 6th run (prepare_threshold 5)
        caller, _ = borrow(pool, counter, lambda c, n=n: c.execute("SELECT %s::int + 0", (n,)).fetchone())
        assert len(caller) == 1, caller  # prepared or not, one round trip
    with pool.connection() as conn:
        conn.execute("SELECT 1")
        names = conn.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql").fetchall()
    assert ("SELECT $1::int + 0",) in names
