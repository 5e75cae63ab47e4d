"""The test server's Babelfish personality as a driver sees it: each switch reproduces what
Babelfish 4.2 did (SQLSERVER-FACTS.md, "Babelfish, as it really behaves"), and the SQL
Server personality keeps SQL Server's answer. python-tds speaks to both; the error numbers
are what it raised."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fix_tds import DATABASE, PASSWORD, USER, connect_pytds
from tdsserver import BABELFISH, SQLSERVER, Personality, TdsServer

pytds = pytest.importorskip("pytds", reason="python-tds is missing: pip install 'tether[pytds]'")


@pytest.fixture(scope="module", params=[SQLSERVER, BABELFISH], ids=lambda p: p.name)
def server(request: pytest.FixtureRequest) -> Iterator[TdsServer]:
    personality: Personality = request.param
    with TdsServer(users={USER: PASSWORD}, databases=("master", "tempdb", DATABASE),
                   personality=personality) as srv:
        yield srv


@pytest.fixture
def conn(server: TdsServer) -> Iterator[Any]:
    server.clear()
    connection = connect_pytds(server)
    try:
        yield connection
    finally:
        server.clear()
        connection.close()


def one(conn: Any, sql: str) -> Any:
    cursor = conn.cursor()
    try:
        cursor.execute(sql)
        return cursor.fetchone()[0]
    finally:
        cursor.close()


def server_error(conn: Any, sql: str) -> Any:
    with pytest.raises(pytds.Error) as caught:
        one(conn, sql)
    return caught.value


def babelfish(server: TdsServer) -> bool:
    return server.personality is BABELFISH


def test_textsize_is_unknown_to_babelfish(server: TdsServer, conn: Any) -> None:
    if not babelfish(server):
        assert one(conn, "SELECT @@TEXTSIZE") > 0
        return
    error = server_error(conn, "SELECT @@TEXTSIZE")
    assert (error.number, "sys.textsize() does not exist" in str(error)) == (33557097, True)
    assert one(conn, "SELECT @@DATEFIRST") == 7  # the session survives the error


@pytest.mark.parametrize("form", ["us_english", "[us_english]", "N'us_english'"])
def test_set_language_forms(server: TdsServer, conn: Any, form: str) -> None:
    one(conn, "SET LANGUAGE british; SELECT 1")
    if form.startswith("N'") and babelfish(server):
        assert server_error(conn, f"SET LANGUAGE {form}; SELECT 1").number == 102
        assert one(conn, "SELECT @@LANGUAGE") == "british"
        return
    one(conn, f"SET LANGUAGE {form}; SELECT 1")
    assert (one(conn, "SELECT @@LANGUAGE"), one(conn, "SELECT @@DATEFIRST")) == ("us_english", 7)


def test_version_and_serverproperty_say_which_server(server: TdsServer, conn: Any) -> None:
    version = one(conn, "SELECT @@VERSION")
    flag = one(conn, "SELECT SERVERPROPERTY('Babelfish')")
    product = one(conn, "SELECT SERVERPROPERTY('ProductVersion')")
    unknown = one(conn, "SELECT SERVERPROPERTY('NoSuchProperty')")
    assert unknown == ("" if babelfish(server) else None)  # Babelfish's properties.c: '' for the rest
    if babelfish(server):
        assert version.startswith("Babelfish for PostgreSQL")
        babelfish_version = one(conn, "SELECT SERVERPROPERTY('BabelfishVersion')")
        assert (flag, product, babelfish_version) == (1, "12.0.2000.8", "4.2.0")
    else:
        assert version.startswith("Microsoft SQL Server 2022")
        assert (flag, product.split(".")[0]) == (None, "16")


def test_lock_timeout_is_the_generic_error_on_babelfish(server: TdsServer, conn: Any) -> None:
    server.fail_batches(1, error=1222)
    error = server_error(conn, "SELECT 1")
    said = error.message.rsplit("\n", 1)[-1]  # after python-tds's "SQL Server message ..." line
    if babelfish(server):
        assert (error.number, said) == (33557097, "canceling statement due to lock timeout")
    else:
        assert (error.number, said) == (1222, "Lock request time out period exceeded.")
    assert one(conn, "SELECT 2") == 2

