"""Round trips of a borrow on MariaDB through PyMySQL, counted on the wire (``fix_turns_mysql``).

Each test runs a borrow through ``tether.Pool`` and the same work on a raw PyMySQL
connection (the floor), and asserts the commands the caller waited for, exactly. PyMySQL's
transaction mode begins nothing itself (the server begins a transaction at the first
statement that needs one), and the server's status flags say whether one is open, so a
block whose statements opened none ends with no COMMIT at all. The session reset
(COM_RESET_CONNECTION and the login's settings again) runs on the pool's workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import fix_turns_borrow as scenario
import tether
from fix_turns_borrow import Bench
from fix_turns_mysql import commands, counting_mysql, mysql_bench
from tether.testing import EmbeddedMariaDB

pymysql = pytest.importorskip("pymysql", reason="PyMySQL is not installed: pip install 'tether[dev]'")

from fix_mysql import MYSQL_PASSWORD  # noqa: E402  # after the skip: it imports tether.testing's MariaDB

MODES = {"transaction": False, "autocommit": True}
COMMIT, ROLLBACK = ["query:COMMIT"], ["query:ROLLBACK"]
READ_TABLE = ["query:SELECT COUNT(*) FROM rtt_rows"]


@pytest.fixture
def bench_of(mariadb: EmbeddedMariaDB) -> Iterator[Callable[[bool], Bench]]:
    mariadb.execute(f"DROP TABLE IF EXISTS {mariadb.database}.{scenario.TABLE}")
    mariadb.execute(f"CREATE TABLE {mariadb.database}.{scenario.TABLE} (x INT) ENGINE=InnoDB")
    made: list[Bench] = []
    with counting_mysql(mariadb) as (counter, address):

        def make(autocommit: bool) -> Bench:
            made.append(mysql_bench(mariadb, MYSQL_PASSWORD, counter, address, autocommit=autocommit))
            return made[-1]

        yield make
        for bench in made:
            bench.close()
    mariadb.execute(f"DROP TABLE IF EXISTS {mariadb.database}.{scenario.TABLE}")


def read_table(conn: Any) -> None:
    """A read that opens a transaction in transaction mode (it reads an InnoDB table)."""
    cur = conn.cursor()
    cur.execute(f"SELECT COUNT(*) FROM {scenario.TABLE}")
    assert cur.fetchone() is not None


@pytest.mark.parametrize("mode", MODES)
def test_a_read_that_opens_no_transaction_costs_its_statement(
    bench_of: Callable[[bool], Bench], mode: str
) -> None:
    bench = bench_of(MODES[mode])
    bench.pooled(scenario.select)
    pooled = bench.pooled(scenario.select)
    alone = bench.alone(scenario.select)
    assert pooled.caller == [["query:SELECT 1"]]
    assert pooled.background == []
    # The driver alone, in transaction mode, sends the COMMIT the application asks for.
    assert alone.caller == [["query:SELECT 1"], *([] if MODES[mode] else [COMMIT])]


@pytest.mark.parametrize("mode", MODES)
def test_a_read_of_a_table_costs_what_the_driver_alone_costs(
    bench_of: Callable[[bool], Bench], mode: str
) -> None:
    bench = bench_of(MODES[mode])
    pooled = bench.pooled(read_table)
    alone = bench.alone(read_table)
    expected = [READ_TABLE, *([] if MODES[mode] else [COMMIT])]
    assert pooled.caller == expected
    assert pooled.background == []
    assert alone.caller == expected


@pytest.mark.parametrize("mode", MODES)
def test_a_write_and_its_commit_cost_what_the_driver_alone_costs(
    bench_of: Callable[[bool], Bench], mode: str
) -> None:
    bench = bench_of(MODES[mode])
    pooled = bench.pooled(scenario.write(1))
    alone = bench.alone(scenario.write(2))
    end = [] if MODES[mode] else [COMMIT]
    assert pooled.caller == [["query:INSERT INTO rtt_rows (x) VALUES (1)"], *end]
    assert pooled.background == []
    assert alone.caller == [["query:INSERT INTO rtt_rows (x) VALUES (2)"], *end]
    assert bench.rows() == 2


def test_a_block_that_fails_rolls_back_off_the_callers_path(bench_of: Callable[[bool], Bench]) -> None:
    bench = bench_of(False)

    def fails(conn: Any) -> None:
        scenario.write(1)(conn)
        raise KeyError("the block fails after its write")

    counted = scenario.count(bench.counter, lambda: _swallow(bench.pool, fails), commands)
    assert counted.caller == [["query:INSERT INTO rtt_rows (x) VALUES (1)"]]
    assert counted.background == [ROLLBACK]
    assert bench.rows() == 0


def _swallow(pool: tether.Pool, body: scenario.Body) -> None:
    with pytest.raises(KeyError), pool.connection() as conn:
        body(conn)


def test_a_read_only_transaction_ends_as_the_driver_alone_ends_it(bench_of: Callable[[bool], Bench]) -> None:
    """MySQL's read-only transactions are SQL (``START TRANSACTION READ ONLY``): the block's
    COMMIT is the application's; the session reset the statement calls for runs after."""

    def read_only(conn: Any) -> None:
        conn.cursor().execute("START TRANSACTION READ ONLY")
        read_table(conn)

    bench = bench_of(False)
    pooled = bench.pooled(read_only)
    alone = bench.alone(read_only)
    expected = [["query:START TRANSACTION READ ONLY"], READ_TABLE, COMMIT]
    assert pooled.caller == expected
    assert alone.caller == expected
    assert pooled.background == [["reset"], ["query:SET NAMES utf8mb4, autocommit = 0"]]


@pytest.mark.parametrize("mode", MODES)
def test_a_unit_of_work_costs_its_statement_and_its_commit(
    bench_of: Callable[[bool], Bench], mode: str
) -> None:
    """In an autocommit pool, the unit's transaction mode costs a ``SET AUTOCOMMIT = 0`` (a
    raw PyMySQL would send ``BEGIN``); putting it back goes to the background."""
    autocommit = MODES[mode]
    bench = bench_of(autocommit)
    counted = bench.unit(scenario.write(1))
    insert = ["query:INSERT INTO rtt_rows (x) VALUES (1)"]
    if autocommit:
        assert counted.caller == [["query:SET AUTOCOMMIT = 0"], insert, COMMIT]
        assert counted.background == [["query:SET AUTOCOMMIT = 1"]]
    else:
        assert counted.caller == [insert, COMMIT]
        assert counted.background == []
    assert bench.rows() == 1


def test_a_session_change_is_reset_in_the_background(bench_of: Callable[[bool], Bench]) -> None:
    """COM_RESET_CONNECTION and the login's settings go after the block returned; the next
    borrower finds the variable unset and pays nothing for it."""

    def set_variable(conn: Any) -> None:
        conn.cursor().execute("SET @tether_rtt = 1")

    def variable_unset(conn: Any) -> None:
        cur = conn.cursor()
        cur.execute("SELECT @tether_rtt")
        assert cur.fetchone() == (None,)

    bench = bench_of(False)
    changed = bench.pooled(set_variable)
    after = bench.pooled(variable_unset)
    assert changed.caller == [["query:SET @tether_rtt = 1"]]
    assert changed.background == [["reset"], ["query:SET NAMES utf8mb4, autocommit = 0"]]
    assert after.caller == [["query:SELECT @tether_rtt"]]
