"""tether's SQL Server support against the test server as SQL Server and as Babelfish 4.2
(tests/tdsserver/_personality.py), through all five driver set-ups, autocommit on and off.

What Babelfish does differently and tether must live with (SQLSERVER-FACTS.md): no
``@@TEXTSIZE`` (the login-state capture of FreeTDS and pymssql must degrade, not fail the
open), ``SET LANGUAGE N'...'`` refused (the restore batch must use a form every server
accepts), and a lock timeout reported as its generic 33557097.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

import tether
from fix_pool import wait_for_goodbye
from fix_tds import DATABASE, PASSWORD, USER
from fix_wait import wait_until
from tdsserver import BABELFISH, SQLSERVER, Personality, TdsServer
from tdsserver import _builtins as tdsserver_builtins
from test_sqlserver_drivers import SETTLED, SQL_ONLY, VARIANTS, settled, spid_of, url
from tether.dialects import sqlserver as sqlserver_module
from tether.dialects.sqlserver import dialect as sqlserver
from tether.vocab import Fault

PERSONALITIES = [SQLSERVER, BABELFISH]


@pytest.fixture(scope="module", params=PERSONALITIES, ids=lambda p: p.name)
def server_module(request: pytest.FixtureRequest) -> Iterator[TdsServer]:
    personality: Personality = request.param
    with TdsServer(users={USER: PASSWORD}, databases=("master", "tempdb", DATABASE),
                   personality=personality) as srv:
        yield srv


@pytest.fixture
def server(server_module: TdsServer) -> TdsServer:
    for info in server_module.sessions():
        server_module.kill(info.spid)
    wait_until(lambda: not server_module.sessions(), what="the earlier tests' sessions to end")
    server_module.drop_tables()
    server_module.clear()
    return server_module


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("autocommit", [True, False])
def test_a_borrow_that_ran_set_costs_no_new_login(
    variant: str, autocommit: bool, server: TdsServer, pools: Callable[..., tether.Pool]
) -> None:
    # python-tds in transaction mode resets with the 0x10 flag, which Babelfish refuses by
    # ending the session; it knows Babelfish by its login and sends 0x08 there (a Babelfish
    # whose login hides it costs one login: tests/test_sqlserver_txmode.py)
    pool = pools(url(server, variant), autocommit=autocommit, max_size=1)
    with pool.connection() as conn:
        first = spid_of(conn)
        conn.execute("SET LANGUAGE british")
        conn.execute("SET DATEFIRST 3")
        conn.execute("SET LOCK_TIMEOUT 500")
    wait_until(settled(pool), what=SETTLED)
    with pool.connection() as conn:
        row = conn.execute("SELECT @@LANGUAGE, @@DATEFIRST, @@LOCK_TIMEOUT, DB_NAME()").fetchone()
        assert tuple(row) == ("us_english", 7, -1, DATABASE)
        assert spid_of(conn) == first
    assert (server.stats.logins, pool.stats().hard_connects) == (1, 1)


@pytest.mark.parametrize("variant", SQL_ONLY)
def test_the_login_capture_degrades_where_the_server_cannot_answer(
    variant: str, server: TdsServer, pools: Callable[..., tether.Pool], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="tether.drivers._mssql_reset"):
        pool = pools(url(server, variant), max_size=1)
    missing = [r.getMessage() for r in caplog.records if "cannot tell" in r.getMessage()]
    if server.personality is BABELFISH:
        assert [text.split(" at login")[0] for text in missing] == ["the server cannot tell @@TEXTSIZE"]
    else:
        assert missing == []
    assert pool.stats().connect_failures == 0
    sent = [r.text for r in server.requests() if "@@" in r.text]
    assert sent[0].startswith("SELECT @@OPTIONS, @@DATEFIRST")  # one round trip, tried first


# mssql-python drops the server's error number: its lock timeout is told by the server's
# text (SQL Server's us_english, Babelfish's PostgreSQL one)
@pytest.mark.parametrize("variant", VARIANTS)
def test_a_lock_timeout_is_transient_and_keeps_the_session(
    variant: str, server: TdsServer, pools: Callable[..., tether.Pool]
) -> None:
    pool = pools(url(server, variant), autocommit=True, max_size=1)
    with pool.connection() as conn:
        spid = spid_of(conn)
        server.fail_batches(1, error=1222, matching="lock_me")
        with pytest.raises(Exception) as caught:
            conn.execute("SELECT 'lock_me'").fetchall()
        verdict = sqlserver.classify(caught.value)
        assert (verdict.fault, "lock" in verdict.reason) == (Fault.TRANSIENT, True)
        assert not sqlserver.is_disconnect(caught.value)
        assert spid_of(conn) == spid


def test_babelfish_is_told_by_its_version_text() -> None:
    assert sqlserver_module.is_babelfish(BABELFISH.version)
    assert not sqlserver_module.is_babelfish(tdsserver_builtins.VERSION_TEXT)
    assert not sqlserver_module.is_babelfish(None)
    assert sqlserver_module.traits_of(BABELFISH.version).reset_skip_tran is False
    assert sqlserver_module.traits_of("Microsoft SQL Server 2022").reset_skip_tran is True


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "mssql-python"])
def test_babelfishs_other_generic_errors_stay_final(variant: str, server: TdsServer,
                                                    pools: Callable[..., tether.Pool]) -> None:
    pool = pools(url(server, variant), autocommit=True, max_size=1)
    if server.personality is not BABELFISH:
        with pool.connection() as conn:
            assert conn.execute("SELECT @@TEXTSIZE").fetchone()[0] > 0
        return
    with pool.connection() as conn, pytest.raises(Exception) as caught:
        conn.execute("SELECT @@TEXTSIZE").fetchall()
    assert sqlserver.classify(caught.value).fault is Fault.FATAL
    assert sqlserver_module.refused(caught.value)  # the session goes on


@pytest.mark.parametrize("variant", VARIANTS)
def test_an_idle_kill_is_rebuilt_with_language_datefirst_and_database(
    variant: str, server: TdsServer, pools: Callable[..., tether.Pool]
) -> None:
    pool = pools(url(server, variant), autocommit=True, max_size=1)
    with pool.connection() as conn:
        conn.execute("USE master")
        conn.execute("SET LANGUAGE british")
        conn.execute("SET DATEFIRST 3")
        spid = spid_of(conn)
        server.kill(spid)
        wait_until(lambda: server.session(spid) is None, what=f"session {spid} gone")
        wait_for_goodbye(conn)
        row = conn.execute("SELECT @@SPID, @@LANGUAGE, @@DATEFIRST, DB_NAME()").fetchone()
        assert row[0] != spid
        assert tuple(row)[1:] == ("british", 3, "master")
    assert pool.stats().recovered == 1
