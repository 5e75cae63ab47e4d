"""What the TDS test server answers to the SQL an ORM sends (SQLAlchemy's mssql dialect):
SCHEMA_NAME(), sys.system_views and CASE (the isolation-level query), CAST to a character
type without a length, INSERT ... OUTPUT inserted, the "insertmanyvalues" INSERT ... SELECT,
savepoints, and IDENTITY_INSERT; each as SQL Server answers it (the server's comments cite
Microsoft's documentation)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest

from fix_tds import DATABASE, PASSWORD, USER, connect_pytds
from tdsserver import BABELFISH, TdsServer

ISOLATION = """SELECT CASE transaction_isolation_level
    WHEN 0 THEN NULL WHEN 1 THEN 'READ UNCOMMITTED' WHEN 2 THEN 'READ COMMITTED'
    WHEN 3 THEN 'REPEATABLE READ' WHEN 4 THEN 'SERIALIZABLE' WHEN 5 THEN 'SNAPSHOT' END
    AS TRANSACTION_ISOLATION_LEVEL FROM sys.dm_exec_sessions WHERE session_id = @@SPID"""


@pytest.fixture
def conn(tds_server: TdsServer) -> Iterator[Any]:
    connection = connect_pytds(tds_server)
    yield connection
    connection.close()


def rows(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    cursor = conn.cursor()
    try:
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
    finally:
        cursor.close()


def error_number(conn: Any, sql: str) -> int:
    pytds = pytest.importorskip("pytds")
    with pytest.raises(pytds.Error) as raised:
        rows(conn, sql)
    return int(raised.value.number)  # type: ignore[attr-defined]


def test_what_the_dialect_asks_at_connect(conn: Any) -> None:
    assert rows(conn, "SELECT schema_name()") == [("dbo",)]
    assert rows(conn, "SELECT SCHEMA_NAME(1), SCHEMA_NAME(999)") == [("dbo", None)]
    views = ("SELECT name FROM sys.system_views "
             "WHERE name IN ('dm_exec_sessions', 'dm_pdw_nodes_exec_sessions')")
    assert rows(conn, views) == [("dm_exec_sessions",)]
    assert rows(conn, ISOLATION) == [("READ COMMITTED",)]
    rows(conn, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
    assert rows(conn, ISOLATION) == [("SERIALIZABLE",)]
    cases = "SELECT CASE WHEN 1 = 2 THEN 'a' ELSE 'b' END, CASE 3 WHEN 1 THEN 'x' END"
    assert rows(conn, cases) == [("b", None)]
    comments = ("SELECT 1 FROM fn_listextendedproperty(default, default, default, default, default, "
                "default, default)")
    assert rows(conn, comments) == []


def test_cast_to_a_character_type_without_a_length_is_30_long(conn: Any) -> None:
    assert rows(conn, "SELECT CAST(SERVERPROPERTY('ProductVersion') AS VARCHAR)") == [("16.0.4135.4",)]
    long = "x" * 40
    casts = f"SELECT CAST('{long}' AS VARCHAR), CAST('{long}' AS VARCHAR(35))"
    assert rows(conn, casts) == [("x" * 30, "x" * 35)]
    assert rows(conn, "SELECT CONVERT(NVARCHAR, 'abc')") == [("abc",)]


def test_insert_output_inserted(conn: Any) -> None:
    rows(conn, "CREATE TABLE items (id INT IDENTITY, name NVARCHAR(10))")
    assert rows(conn, "INSERT INTO items (name) OUTPUT inserted.id VALUES ('a')") == [(1,)]
    both = "INSERT INTO items (name) OUTPUT inserted.* VALUES ('b'), ('c')"
    assert rows(conn, both) == [(2, "b"), (3, "c")]
    many = ("INSERT INTO items (name) OUTPUT inserted.id, inserted.name AS label SELECT p0 FROM "
            "(VALUES ('e', 1), ('d', 0)) AS imp_sen(p0, sen_counter) ORDER BY sen_counter")
    assert rows(conn, many) == [(4, "d"), (5, "e")]  # identities in the ORDER BY's order
    assert rows(conn, "SELECT name FROM items ORDER BY id") == [("a",), ("b",), ("c",), ("d",), ("e",)]


def test_identity_insert(conn: Any) -> None:
    rows(conn, "CREATE TABLE items (id INT IDENTITY, name NVARCHAR(10))")
    rows(conn, "CREATE TABLE plain (id INT)")
    assert error_number(conn, "INSERT INTO items (id, name) VALUES (10, 'x')") == 544
    assert error_number(conn, "SET IDENTITY_INSERT plain ON") == 8106
    rows(conn, "SET IDENTITY_INSERT items ON")
    rows(conn, "INSERT INTO items (id, name) VALUES (10, 'x')")
    rows(conn, "SET IDENTITY_INSERT items OFF")
    # the next identity is past the explicit 10
    assert rows(conn, "INSERT INTO items (name) OUTPUT inserted.id VALUES ('y')") == [(11,)]
    assert error_number(conn, "INSERT INTO items (id, name) VALUES (12, 'z')") == 544


def test_a_savepoint_rolls_back_to_itself(conn: Any) -> None:
    rows(conn, "CREATE TABLE items (id INT)")
    rows(conn, "IF @@TRANCOUNT = 0 BEGIN TRANSACTION")
    rows(conn, "INSERT INTO items VALUES (1); SAVE TRANSACTION sp1; INSERT INTO items VALUES (2)")
    rows(conn, "SAVE TRANSACTION sp2; INSERT INTO items VALUES (3)")
    rows(conn, "ROLLBACK TRANSACTION sp1")  # sp2, saved after it, is gone with it
    assert rows(conn, "SELECT id, @@TRANCOUNT FROM items") == [(1, 1)]
    rows(conn, "INSERT INTO items VALUES (4); ROLLBACK TRANSACTION sp1")  # sp1 is still there
    assert rows(conn, "SELECT id FROM items") == [(1,)]
    assert error_number(conn, "ROLLBACK TRANSACTION sp2") == 6401  # neither a savepoint nor the transaction
    assert rows(conn, "SELECT id, @@TRANCOUNT FROM items") == [(1, 1)]  # nothing rolled back
    rows(conn, "ROLLBACK TRANSACTION")
    assert rows(conn, "SELECT id FROM items") == []


def test_a_named_rollback_of_the_outermost_transaction(conn: Any) -> None:
    rows(conn, "CREATE TABLE items (id INT)")
    rows(conn, "BEGIN TRANSACTION outer_tx; INSERT INTO items VALUES (1); BEGIN TRANSACTION; "
               "SAVE TRANSACTION sp")
    rows(conn, "ROLLBACK TRANSACTION outer_tx")
    assert rows(conn, "SELECT COUNT(*), @@TRANCOUNT FROM items") == [(0, 0)]


def test_sysdatetime_is_a_datetime2(conn: Any) -> None:
    # mssql-django refuses a driver that reads SYSDATETIME() as text ("modern datetime types")
    ((value,),) = rows(conn, "SELECT SYSDATETIME()")
    assert isinstance(value, datetime.datetime)
    assert abs(value - datetime.datetime.now()) < datetime.timedelta(hours=1)


def test_has_table_joins_sys_objects_to_sys_schemas(conn: Any) -> None:
    rows(conn, "CREATE TABLE items (id INT)")
    rows(conn, "CREATE TABLE #scratch (id INT)")  # a temp table is tempdb's, not here
    has_table = ("SELECT sys.objects.name FROM sys.objects JOIN sys.schemas ON sys.objects.schema_id = "
                 "sys.schemas.schema_id WHERE sys.schemas.name = CAST(N'dbo' AS NVARCHAR(max)) AND "
                 "sys.objects.type IN (N'U', N'V') AND sys.objects.name IN (CAST(N'{}' AS NVARCHAR(max)))")
    assert rows(conn, has_table.format("items")) == [("items",)]
    assert rows(conn, has_table.format("scratch")) == []
    aliased = ("SELECT o.name, s.name FROM sys.objects AS o INNER JOIN sys.schemas s "
               "ON o.schema_id = s.schema_id ORDER BY o.name")
    assert rows(conn, aliased) == [("items", "dbo")]
    rows(conn, "USE master")
    assert rows(conn, has_table.format("items")) == []  # another database's tables


def test_babelfish_schema_ids_are_oids() -> None:
    with TdsServer(users={USER: PASSWORD}, databases=("master", "tempdb", DATABASE),
                   personality=BABELFISH) as srv:
        conn = connect_pytds(srv)
        try:
            assert rows(conn, "SELECT SCHEMA_NAME(), SCHEMA_NAME(1)") == [("dbo", None)]
            rows(conn, "CREATE TABLE items (id INT)")
            joined = ("SELECT o.name, s.name FROM sys.objects o JOIN sys.schemas s "
                      "ON o.schema_id = s.schema_id WHERE s.name = 'dbo'")
            assert rows(conn, joined) == [("items", "dbo")]
        finally:
            conn.close()
