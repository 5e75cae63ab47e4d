"""Round trips of a borrow on SQL Server, through each driver, counted on the wire (``fix_turns_tds``).

Each test runs the same borrow through ``tether.Pool`` and on the raw driver alone (the
floor: the driver doing the same work, with the COMMIT a transaction-mode application
sends) and asserts the requests the caller waited for, exactly, and that the pool's are no
more than the floor's. What the pool sends after the block returned (its reset) is
asserted apart.

python-tds, pymssql and FreeTDS send an *attention* (and wait for its acknowledgement) to
drop the unread end of a result (the DONE after the last row fetched) before their next
request; on its python-tds connections tether reads that end from memory instead, when all
of it came. pymssql commits
with two batches (``COMMIT TRAN``, then ``BEGIN TRAN``); tether's connection class sends
them as one. FreeTDS sends its attention when pyodbc frees the statement, which the garbage collector
times: its attentions are left out of the comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

import fix_turns_borrow as scenario
from fix_tds import DRIVERS
from fix_turns_borrow import Bench, Turns
from fix_turns_tds import ATTENTION_BY_GC, VARIANTS, counting_tds, sqlserver_bench
from tdsserver import TdsServer

MODES = {"transaction": False, "autocommit": True}

SELECT, ATTENTION = ["batch:SELECT 1"], ["attention"]
INSERT = "batch:INSERT INTO rtt_rows (x) VALUES ({})"
TM_COMMIT, TM_ROLLBACK = ["tm:COMMIT+BEGIN"], ["tm:ROLLBACK+BEGIN"]
# pymssql's own commit is two batches; tether's connection class sends them as one.
PYMSSQL_OWN_COMMIT = [["batch:COMMIT TRAN"], ["batch:BEGIN TRAN"]]
PYMSSQL_COMMIT = [["batch:COMMIT TRAN; BEGIN TRAN"]]
PYMSSQL_ROLLBACK = [["batch:IF @@TRANCOUNT > 0 ROLLBACK TRAN; BEGIN TRAN"]]


def _commit(variant: str, *, alone: bool = False) -> Turns:
    if variant == "pymssql":
        return PYMSSQL_OWN_COMMIT if alone else PYMSSQL_COMMIT
    return [TM_COMMIT]


def _rollback(variant: str) -> Turns:
    return PYMSSQL_ROLLBACK if variant == "pymssql" else [TM_ROLLBACK]


def _attention(variant: str, *, alone: bool = False) -> Turns:
    """What drops the unread end of the last result before the driver's next request: its
    attention. On tether's python-tds connections the end, all in memory, is read instead."""
    if variant in ("pyodbc-msodbc", "mssql-python") or (variant == "pytds" and not alone):
        return []
    return [ATTENTION]


def expected_select(variant: str, autocommit: bool, *, alone: bool = False) -> Turns:
    """A default borrow that reads one row (after one that did the same)."""
    if autocommit:  # the last borrow's unread end goes with this one's first request
        return [*_attention(variant, alone=alone), SELECT]
    return [SELECT, *_attention(variant, alone=alone), *_commit(variant, alone=alone)]


def expected_write(variant: str, autocommit: bool, value: int, *, alone: bool = False) -> Turns:
    insert = [INSERT.format(value)]
    return [insert] if autocommit else [insert, *_commit(variant, alone=alone)]


def normal(variant: str, turns: Turns) -> Turns:
    if variant not in ATTENTION_BY_GC:
        return turns
    return [turn for turn in turns if turn != ATTENTION]


@pytest.fixture(scope="module", autouse=True)
def _mssql_python_pooling() -> Iterator[None]:
    """mssql-python pools by default, process-wide; tether refuses to pool on top of it."""
    try:
        import mssql_python
        from mssql_python.pooling import PoolingManager
    except ImportError:
        yield
        return
    was = PoolingManager.is_enabled()
    mssql_python.pooling(enabled=False)
    yield
    if was:
        PoolingManager.enable()


@pytest.fixture
def bench_of(tds_server: TdsServer) -> Iterator[Callable[[str, bool], Bench]]:
    made: list[Bench] = []
    with counting_tds(tds_server) as (counter, address):
        setup = DRIVERS["pytds"](SimpleNamespace(host=tds_server.host, port=tds_server.port), autocommit=True)
        setup.cursor().execute(f"CREATE TABLE {scenario.TABLE} (x int)")
        setup.close()

        def make(variant: str, autocommit: bool) -> Bench:
            made.append(sqlserver_bench(counter, address, variant, autocommit=autocommit))
            return made[-1]

        yield make
        for bench in made:
            bench.close()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_a_default_borrow_costs_no_more_than_the_driver_alone(
    bench_of: Callable[[str, bool], Bench], variant: str, mode: str
) -> None:
    bench = bench_of(variant, MODES[mode])
    bench.pooled(scenario.select)  # the first borrow's turns depend on what the login left
    pooled = bench.pooled(scenario.select)
    bench.alone(scenario.select)
    alone = bench.alone(scenario.select)
    assert pooled.caller == normal(variant, expected_select(variant, MODES[mode]))
    assert pooled.background == []
    assert alone.caller == normal(variant, expected_select(variant, MODES[mode], alone=True))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_a_write_and_its_commit_cost_no_more_than_the_driver_alone(
    bench_of: Callable[[str, bool], Bench], variant: str, mode: str
) -> None:
    bench = bench_of(variant, MODES[mode])
    bench.pooled(scenario.write(1))
    pooled = bench.pooled(scenario.write(2))
    alone = bench.alone(scenario.write(3))
    assert pooled.caller == expected_write(variant, MODES[mode], 2)
    assert pooled.background == []
    assert alone.caller == expected_write(variant, MODES[mode], 3, alone=True)
    assert bench.rows() == 3


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_rolled_back_read_ends_with_the_drivers_own_rollback(
    bench_of: Callable[[str, bool], Bench], variant: str
) -> None:
    bench = bench_of(variant, False)
    bench.pooled(scenario.select_then_rollback)
    pooled = bench.pooled(scenario.select_then_rollback)
    expected = normal(variant, [SELECT, *_attention(variant), *_rollback(variant)])
    assert pooled.caller == expected
    assert pooled.background == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_unit_of_work_costs_its_statement_and_its_commit(
    bench_of: Callable[[str, bool], Bench], variant: str
) -> None:
    bench = bench_of(variant, False)
    bench.unit(scenario.write(1))
    counted = bench.unit(scenario.write(2))
    assert counted.caller == expected_write(variant, False, 2)
    assert counted.background == []
    assert bench.rows() == 2


SERVER_RESET = ("pytds", "pyodbc-msodbc", "mssql-python")


def nocount_is_off(conn: Any) -> None:
    cur = conn.cursor()
    cur.execute("SELECT @@OPTIONS")
    assert int(cur.fetchone()[0]) & 512 == 0  # NOCOUNT is off again: the server reset the session


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", SERVER_RESET)
def test_the_session_reset_adds_no_round_trip_to_the_next_borrower(
    bench_of: Callable[[str, bool], Bench], variant: str, mode: str
) -> None:
    """A borrow that turned NOCOUNT on is reset by the server: the flag rides on a request
    sent anyway (the next borrower's, or Microsoft's driver's BEGIN in the background)."""
    autocommit = MODES[mode]
    bench = bench_of(variant, autocommit)
    bench.pooled(scenario.select)
    changed = bench.pooled(scenario.set_nocount)
    after = bench.pooled(nocount_is_off)
    options = "batch:SELECT @@OPTIONS"
    if autocommit:  # the flag rides on the next borrower's first request
        assert changed.background == []
        assert after.caller == [[options + "|reset"]]
    elif variant == "pytds":  # the same, keeping python-tds's (empty) transaction: 0x10
        assert changed.background == []
        assert after.caller == [[options + "|reset-skiptran"], TM_COMMIT]
    else:  # Microsoft's driver ends its transaction when the flag is set; its BEGIN carries it
        assert changed.background == [["tm:ROLLBACK"], ["tm:BEGIN|reset"]]
        assert after.caller == [[options], TM_COMMIT]


@pytest.mark.parametrize("variant", SERVER_RESET)
def test_after_a_reset_the_next_borrow_is_still_one_transaction(
    bench_of: Callable[[str, bool], Bench], variant: str
) -> None:
    """The transaction the reset began in the background is the borrower's: what it wrote
    and then raised is rolled back, what it wrote and returned is committed, once."""
    bench = bench_of(variant, False)
    bench.pooled(scenario.set_nocount)  # reset in the background
    bench.counter.settle()
    with pytest.raises(KeyError), bench.pool.connection() as conn:
        scenario.write(1)(conn)
        raise KeyError("the block fails after its write")
    assert bench.rows() == 0
    bench.pooled(scenario.set_nocount)
    bench.counter.settle()
    bench.pooled(scenario.write(2))
    assert bench.rows() == 1


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_unit_of_work_in_an_autocommit_pool_is_one_transaction(
    bench_of: Callable[[str, bool], Bench], variant: str
) -> None:
    """The unit turns autocommit off (the driver's BEGIN), runs, commits; autocommit comes
    back in the background. A unit that fails after its write leaves nothing behind
    (pymssql's ``autocommit`` is a method: it was once assigned over, and the unit ran in
    autocommit mode)."""
    bench = bench_of(variant, True)
    bench.pooled(scenario.write(1))  # the first borrow's turns depend on what the login left
    counted = bench.unit(scenario.write(2))
    insert = [INSERT.format(2)]
    if variant == "pymssql":
        assert counted.caller == [["batch:BEGIN TRAN"], insert, *PYMSSQL_COMMIT]  # autocommit(False)
        assert counted.background == [["batch:ROLLBACK TRAN"]]  # autocommit(True): the empty one ends
    else:
        assert counted.caller == [["tm:BEGIN"], insert, TM_COMMIT]
        assert counted.background == [["tm:ROLLBACK"]]

    def fails(conn: Any) -> None:
        scenario.write(3)(conn)
        raise KeyError("the unit fails after its write")

    with pytest.raises(KeyError):
        bench.pool.transaction(fails, retry=False)
    assert bench.rows() == 2
    after = bench.pooled(scenario.write(4))  # autocommit again: no COMMIT
    assert after.caller == normal(variant, [*_attention(variant), [INSERT.format(4)]])
    assert bench.rows() == 3


def test_a_result_still_arriving_is_left_to_python_tds_attention(
    bench_of: Callable[[str, bool], Bench], tds_server: TdsServer
) -> None:
    """Only an answer whose last packet came is read from memory: the rest of a long result
    is not read from the socket (python-tds's attention stops it), and the COMMIT still ends
    the borrow."""
    setup = DRIVERS["pytds"](SimpleNamespace(host=tds_server.host, port=tds_server.port), autocommit=True)
    setup.cursor().execute("INSERT INTO rtt_rows (x) VALUES " + ", ".join(f"({i})" for i in range(2000)))
    setup.close()
    bench = bench_of("pytds", False)

    def first_row(conn: Any) -> None:
        cur = conn.cursor()
        cur.execute("SELECT x FROM rtt_rows")
        assert cur.fetchone() is not None

    bench.pooled(first_row)
    counted = bench.pooled(first_row)
    assert counted.caller == [["batch:SELECT x FROM rtt_rows"], ATTENTION, TM_COMMIT]
    assert bench.rows() == 2000
