"""The TDS test server as the real drivers see it: logins, batches, sessions, and every fault."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tdsserver import TdsServer

DRIVER_NAMES = ["pytds", "pymssql", "pyodbc-freetds", "pyodbc-msodbc", "mssql-python"]

Connect = Callable[..., Any]


def query(conn: Any, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    cur = conn.cursor()
    try:
        if params:
            cur.execute(sql, params)
        else:
            cur.execute(sql)
        return [tuple(row) for row in cur.fetchall()] if cur.description else []
    finally:
        cur.close()


def execute(conn: Any, sql: str) -> None:
    cur = conn.cursor()
    try:
        cur.execute(sql)
    finally:
        cur.close()


@pytest.fixture(params=DRIVER_NAMES)
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_login_and_select(tds_server: TdsServer, tds_connect: Connect, driver: str) -> None:
    conn = tds_connect(driver)
    assert query(conn, "SELECT 1") == [(1,)]
    spid = query(conn, "SELECT @@SPID")[0][0]
    info = tds_server.session(spid)
    assert info is not None and info.user == "sa" and info.database == "shop"
    assert query(conn, "SELECT DB_NAME() AS db, N'héllo' AS s, NULL AS n, 2147483648 AS big") == [
        ("shop", "héllo", None, 2147483648)]
    assert tds_server.stats.logins == 1
