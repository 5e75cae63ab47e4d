"""SQL Server through each driver, against the test suite's TDS server:
``python -m bench.sqlserver_bench [--quick] [--personality babelfish]`` (the server as SQL
Server, or as Babelfish for PostgreSQL 4.2).

1. Idle kills: a pool of 4 runs borrow / ``SELECT 1`` / return cycles while the server
   closes every idle session (as a gateway or a failover does) every 25 cycles, and one
   connection held by the application is killed while it sits idle. Reported per driver:
   errors the application saw, sessions recovered, dead connections replaced. Side by
   side: SQLAlchemy's QueuePool and DBUtils' PooledDB on python-tds, the same cycles.
2. Reset cost: requests the server received between a return (after ``SET DATEFIRST 3``,
   and after ``SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED``) and the next borrower's
   first statement, counted by the server (a background reset's requests included); and
   whether DATEFIRST or the isolation level leaked to that borrower, and the logins it cost
   (0: the connection was kept).

The idle kills run against the server as SQL Server and as Babelfish
(tests/tdsserver/_personality.py), in autocommit and in transaction mode (where the
held connection commits after its read, as an application does), with the server's
login count: a session rebuilt or a connection replaced costs one.

Prints a table and writes ``bench/results/sqlserver.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import tether
from fix_tds import DATABASE, PASSWORD, USER, freetds_odbc_library, msodbc_library
from tdsserver import BABELFISH, SQLSERVER, TdsServer

ISOLATION = "SELECT transaction_isolation_level FROM sys.dm_exec_sessions WHERE session_id = @@SPID"
VARIANTS = {"pytds": "pytds", "pymssql": "pymssql", "pyodbc+msodbc": "pyodbc", "pyodbc+freetds": "pyodbc",
            "mssql-python": "mssql_python"}  # fmt: skip


def url(srv: TdsServer, variant: str) -> str | None:
    module = VARIANTS[variant]
    if importlib.util.find_spec(module) is None:
        return None
    query = "encrypt=false"
    if variant.startswith("pyodbc"):
        library = msodbc_library() if variant.endswith("msodbc") else freetds_odbc_library()
        if library is None:
            return None
        query += f"&driver={library}"
    if module == "mssql_python":
        import mssql_python

        mssql_python.pooling(enabled=False)
    return f"mssql+{module}://{USER}:{PASSWORD}@{srv.host}:{srv.port}/{DATABASE}?{query}"


def one(cursor_owner: Any, sql: str) -> Any:
    cursor = cursor_owner.cursor()
    cursor.execute(sql)
    row = cursor.fetchone()
    cursor.close()
    return row[0]


def idle_kills(srv: TdsServer, borrow: Callable[[], Any], give_back: Callable[[Any], None],
               cycles: int, autocommit: bool = True) -> dict[str, int]:
    errors = 0
    held = borrow()  # an application holding a connection that sits idle
    one(held, "SELECT 1")
    if not autocommit:
        held.commit()  # a transaction that read cannot be replayed: the application ends it
    for i in range(cycles):
        if i % 25 == 24:
            srv.close_idle()  # every session not running a request, the held one included
        try:
            conn = borrow()
            try:
                one(conn, "SELECT 1")
            finally:
                give_back(conn)
        except Exception:
            errors += 1
    try:
        one(held, "SELECT 1")
    except Exception:
        errors += 1
    give_back(held)
    return {"app_errors": errors}


def tether_idle_kills(srv: TdsServer, dsn: str, cycles: int, autocommit: bool = True) -> dict[str, int]:
    pool = tether.Pool(dsn, min_size=4, max_size=4, autocommit=autocommit, maintenance_interval=60)
    try:
        logins = srv.stats.logins
        result = idle_kills(srv, pool.getconn, lambda conn: conn.close(), cycles, autocommit)
        stats = pool.stats()
        return {**result, "recovered": stats.recovered, "replaced": stats.discarded_dead,
                "logins": srv.stats.logins - logins}
    finally:
        pool.close()


def peer_idle_kills(srv: TdsServer, cycles: int) -> dict[str, dict[str, int]]:
    import pytds
    from dbutils.pooled_db import PooledDB
    from sqlalchemy.pool import QueuePool

    def creator() -> Any:
        return pytds.connect(srv.host, port=srv.port, user=USER, password=PASSWORD, database=DATABASE,
                             autocommit=True, login_timeout=5)

    queue = QueuePool(creator, pool_size=4, max_overflow=0)
    dbutils = PooledDB(creator=creator, mincached=4, maxcached=4, maxconnections=4, blocking=True)
    out = {
        "sqlalchemy QueuePool (pytds)": idle_kills(srv, queue.connect, lambda c: c.close(), cycles),
        "DBUtils PooledDB (pytds)": idle_kills(srv, dbutils.connection, lambda c: c.close(), cycles),
    }
    queue.dispose()
    dbutils.close()
    return out


def reset_cost(srv: TdsServer, dsn: str) -> dict[str, Any]:
    pool = tether.Pool(dsn, min_size=1, max_size=1, autocommit=True, maintenance_interval=60)
    try:
        out: dict[str, Any] = {}
        for label, change in (("SET DATEFIRST", "SET DATEFIRST 3"),
                              ("SET ISOLATION", "SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED")):
            with pool.connection() as conn:
                one(conn, "SELECT 1")
                cursor = conn.cursor()
                cursor.execute(change)
                cursor.close()
                before = srv.stats.requests  # from here: the return, any reset, the next borrow
                logins = srv.stats.logins
            deadline = time.monotonic() + 5
            while pool.stats().resetting and time.monotonic() < deadline:  # a background reset
                time.sleep(0.005)
            with pool.connection() as conn:
                datefirst, isolation = one(conn, "SELECT @@DATEFIRST"), one(conn, ISOLATION)
            out[label] = srv.stats.requests - before - 2  # minus the two reads themselves
            out[f"{label}: clean"] = datefirst == 7 and isolation == 2
            out[f"{label}: new logins"] = srv.stats.logins - logins  # 0: the connection was kept
        return out
    finally:
        pool.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--personality", choices=("sqlserver", "babelfish"), default="sqlserver",
                        help="the test server as SQL Server, or as Babelfish for PostgreSQL 4.2")
    args = parser.parse_args(argv)
    cycles = 100 if args.quick else 400
    chosen = BABELFISH if args.personality == "babelfish" else SQLSERVER
    results: dict[str, Any] = {"personality": chosen.name, "idle_kills": {}, "reset_requests": {}}
    for personality in (SQLSERVER, BABELFISH):  # idle kills: both, always
        with TdsServer(users={USER: PASSWORD}, databases=("master", "tempdb", DATABASE),
                       personality=personality) as srv:  # fmt: skip
            for variant in VARIANTS:
                dsn = url(srv, variant)
                if dsn is None:
                    continue
                for autocommit in (True, False):
                    srv.clear()
                    mode = "autocommit" if autocommit else "transactions"
                    name = f"tether ({variant}) {personality.name} {mode}"
                    results["idle_kills"][name] = tether_idle_kills(srv, dsn, cycles, autocommit)
    # reset cost and the peers: the personality asked for
    with TdsServer(users={USER: PASSWORD}, databases=("master", "tempdb", DATABASE),
                   personality=chosen) as srv:
        for variant in VARIANTS:
            dsn = url(srv, variant)
            if dsn is None:
                print(f"{variant}: not installed, skipped")
                continue
            srv.clear()
            results["reset_requests"][variant] = reset_cost(srv, dsn)
        srv.clear()
        results["idle_kills"].update(peer_idle_kills(srv, cycles))
    print(f"idle sessions closed every 25 of {cycles} cycles, plus one held connection:")
    for name, row in results["idle_kills"].items():
        print(f"  {name:52s} app errors {row['app_errors']:3d}  "
              + "  ".join(f"{k} {v}" for k, v in row.items() if k != "app_errors"))
    print("requests a reset adds before the next borrower's first statement:")
    for name, row in results["reset_requests"].items():
        print(f"  {name:16s} " + "  ".join(f"{k}: {v}" for k, v in row.items()))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    name = "sqlserver.json" if chosen is SQLSERVER else f"sqlserver-{chosen.name}.json"
    (out / name).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
