"""Round trips of a borrow on SQL Server (each driver) and MariaDB (PyMySQL), counted on the wire:
``python -m bench.rtt_bench [--quick] [--only sqlserver|mysql]``.

Every borrow runs through ``tether.Pool`` (one connection) and, for the floor, on the raw
driver alone doing the same work (with the COMMIT a transaction-mode application sends).
Both go through a proxy that reads the protocol (tests/fix_turns_tds.py, fix_turns_mysql.py)
and counts *turns*: what the client sent before the server answered, i.e. round trips. No
clock is read: the counts do not depend on the machine's load. Reported per borrow: the
driver alone's round trips, tether's on the caller's path, and tether's after the block
returned (the background reset, which no caller waits for).

Borrows: ``select`` (``SELECT 1``, ``fetchone()``), ``write`` (an INSERT; its commit),
``rollback`` (a read, then ``conn.rollback()``), ``unit`` (``pool.transaction`` of an
INSERT; alone: autocommit off, the INSERT, COMMIT, autocommit back on), ``after reset``
(the ``select`` of the borrower after one that changed a session setting: what the reset
costs the next borrower), and on MariaDB ``read table`` (a read
of an InnoDB table, which opens a transaction where ``SELECT 1`` opens none) and
``read only`` (``START TRANSACTION READ ONLY``, a read, ``conn.commit()``). In transaction mode (the
default) and in autocommit; SQL Server as itself and as Babelfish.

Prints the table and writes ``bench/results/rtt.json``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import pytest  # the fixtures skip with pytest.skip: a missing driver is left out

import fix_turns_borrow as scenario
from bench._report import publish
from fix_tds import DATABASE, DRIVERS, PASSWORD, USER
from fix_turns_borrow import Bench, Count
from fix_turns_tds import VARIANTS, counting_tds, sqlserver_bench
from tdsserver import BABELFISH, SQLSERVER, TdsServer

MODES = {"transaction": False, "autocommit": True}
Row = dict[str, Any]


def _mean(counts: list[Count], part: str) -> float:
    return sum(len(getattr(c, part)) for c in counts) / len(counts)


def measure(bench: Bench, name: str, pooled: Callable[[], Count], alone: Callable[[], Count],
            reps: int) -> Row:
    """Each once to warm up (the first borrow finds what the login left), then ``reps`` times."""
    pooled()
    alone()
    ours = [pooled() for _ in range(reps)]
    floor = [alone() for _ in range(reps)]
    return {"borrow": name, "driver_alone": _mean(floor, "caller"), "tether_caller": _mean(ours, "caller"),
            "tether_background": _mean(ours, "background"), "tether_turns": ours[-1].caller,
            "tether_background_turns": ours[-1].background,
            "driver_alone_turns": floor[-1].caller}  # fmt: skip


def after_reset(bench: Bench, change: scenario.Body, read: scenario.Body) -> tuple[
        Callable[[], Count], Callable[[], Count]]:  # fmt: skip
    """The next borrower's read after a borrow that ran ``change`` (its background: the reset)."""

    def pooled() -> Count:
        changed = bench.pooled(change)
        after = bench.pooled(read)
        return Count(after.caller, changed.background + after.background)

    def alone() -> Count:
        bench.alone(change)
        return bench.alone(read)

    return pooled, alone


def both(bench: Bench, body: scenario.Body, *, commit: bool = True) -> tuple[
        Callable[[], Count], Callable[[], Count]]:  # fmt: skip
    """``body`` in a with-block of the pool, and on the driver alone (``commit``: then COMMIT)."""
    return (lambda: bench.pooled(body)), (lambda: bench.alone(body, commit=commit))


def common_rows(bench: Bench, reps: int, change: scenario.Body) -> list[Row]:
    values = iter(range(1, 1_000_000))
    pooled_reset, alone_reset = after_reset(bench, change, scenario.select)
    return [
        measure(bench, "select", lambda: bench.pooled(scenario.select),
                lambda: bench.alone(scenario.select), reps),
        measure(bench, "write", lambda: bench.pooled(scenario.write(next(values))),
                lambda: bench.alone(scenario.write(next(values))), reps),
        measure(bench, "rollback", lambda: bench.pooled(scenario.select_then_rollback),
                lambda: bench.alone(scenario.select_then_rollback, commit=False), reps),
        measure(bench, "unit", lambda: bench.unit(scenario.write(next(values))),
                lambda: bench.alone_unit(scenario.write(next(values))), reps),
        measure(bench, "after reset", pooled_reset, alone_reset, reps),
    ]  # fmt: skip


def sqlserver(reps: int) -> list[Row]:
    try:
        import mssql_python

        mssql_python.pooling(enabled=False)  # tether refuses to pool on top of its pool
    except ImportError:
        pass
    rows: list[Row] = []
    for personality in (SQLSERVER, BABELFISH):
        with TdsServer(users={USER: PASSWORD}, databases=("master", "tempdb", DATABASE),
                       personality=personality) as srv:  # fmt: skip
            setup = DRIVERS["pytds"](SimpleNamespace(host=srv.host, port=srv.port), autocommit=True)
            setup.cursor().execute(f"CREATE TABLE {scenario.TABLE} (x int)")
            setup.close()
            with counting_tds(srv) as (counter, address):
                for variant in VARIANTS:
                    for mode, autocommit in MODES.items():
                        try:
                            bench = sqlserver_bench(counter, address, variant, autocommit=autocommit)
                        except pytest.skip.Exception as missing:
                            print(f"{variant}: skipped ({missing})")
                            break
                        try:
                            for row in common_rows(bench, reps, scenario.set_nocount):
                                database = f"SQL Server ({personality.name})"
                                rows.append({"database": database, "driver": variant, "mode": mode, **row})
                        finally:
                            bench.close()
    return rows


def mysql(reps: int) -> list[Row]:
    from fix_mysql import MYSQL_PASSWORD
    from fix_turns_mysql import counting_mysql, mysql_bench
    from tether.testing import EmbeddedMariaDB, mariadb_programs

    try:
        mariadb_programs()
    except FileNotFoundError as exc:
        print(f"MariaDB: skipped ({exc})")
        return []
    rows: list[Row] = []

    def read_table(conn: Any) -> None:
        conn.cursor().execute(f"SELECT COUNT(*) FROM {scenario.TABLE}")

    def read_only(conn: Any) -> None:
        conn.cursor().execute("START TRANSACTION READ ONLY")
        read_table(conn)
        conn.commit()  # an explicit transaction: its end is the application's, in either mode

    def set_variable(conn: Any) -> None:
        conn.cursor().execute("SET @tether_rtt = 1")

    with EmbeddedMariaDB(password=MYSQL_PASSWORD) as srv:
        srv.execute(f"CREATE TABLE {srv.database}.{scenario.TABLE} (x INT) ENGINE=InnoDB")
        with counting_mysql(srv) as (counter, address):
            for mode, autocommit in MODES.items():
                bench = mysql_bench(srv, MYSQL_PASSWORD, counter, address, autocommit=autocommit)
                try:
                    measured = common_rows(bench, reps, set_variable)
                    measured[1:1] = [measure(bench, "read table", *both(bench, read_table), reps),
                                     measure(bench, "read only", *both(bench, read_only, commit=False), reps)]
                    rows += [{"database": "MariaDB", "driver": "pymysql", "mode": mode, **row}
                             for row in measured]  # fmt: skip
                finally:
                    bench.close()
    return rows


def table(rows: list[Row]) -> str:
    lines = ["round trips per borrow, counted on the wire (driver alone | tether: caller's path, background)",
             f"{'database':24s} {'driver':15s} {'mode':12s} {'borrow':12s} {'alone':>6s} {'tether':>7s} "
             f"{'backgr.':>8s}"]  # fmt: skip
    for row in rows:
        lines.append(f"{row['database']:24s} {row['driver']:15s} {row['mode']:12s} {row['borrow']:12s} "
                     f"{row['driver_alone']:6.1f} {row['tether_caller']:7.1f} "
                     f"{row['tether_background']:8.1f}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 repetitions of each borrow (default 5)")
    parser.add_argument("--only", choices=("sqlserver", "mysql"))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "rtt.json"))
    args = parser.parse_args(argv)
    reps = 2 if args.quick else 5
    rows = [] if args.only == "mysql" else sqlserver(reps)
    rows += [] if args.only == "sqlserver" else mysql(reps)
    return publish(table(rows), {"repetitions": reps, "rows": rows}, args.out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
