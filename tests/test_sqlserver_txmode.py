"""Transaction mode (``autocommit=False``) through every SQL Server driver, against the TDS
test server as SQL Server and as Babelfish (tests/tdsserver/_personality.py), where the
driver holds a transaction open at all times: the session reset (python-tds's 0x10 flag,
which Babelfish refuses and then ends the session), the first isolation change of a
borrow (Babelfish refuses one in a transaction that has read), and idle resiliency (a
transaction that ran only replayable statements is replayed; anything else stays
``SessionLost``)."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tether
from fix_pool import wait_for_goodbye
from fix_tds import PASSWORD, USER, connect_pytds
from fix_wait import wait_until
from tdsserver import BABELFISH, BABELFISH_AS_2022, SQLSERVER, Personality, TdsServer
from test_sqlserver_drivers import (  # the per-driver URLs, their skips, mssql-python pooling put back
    VARIANTS,
    _restore_mssql_python_pooling,  # noqa: F401 (a module-scoped fixture, used here too)
    url,
)
from tether.session import lease_of

ISOLATION = "SELECT transaction_isolation_level FROM sys.dm_exec_sessions WHERE session_id = @@SPID"
MakePool = Callable[..., tether.Pool]
PERSONALITIES = {"sqlserver": SQLSERVER, "babelfish": BABELFISH, "babelfish-as-2022": BABELFISH_AS_2022}


@pytest.fixture(params=list(PERSONALITIES))
def server(request: pytest.FixtureRequest) -> Iterator[TdsServer]:
    """A server of each personality, of the test's own: no other test's pool (closing, or
    opening in the background) reaches it, and python-tds has learnt nothing about it."""
    personality: Personality = PERSONALITIES[request.param]
    learnt = sys.modules.get("tether.drivers.pytds")
    if learnt is not None:
        learnt._NO_SKIP_TRAN.clear()
    with TdsServer(users={USER: PASSWORD}, databases=("master", "tempdb", "shop"),
                   personality=personality) as srv:  # fmt: skip
        yield srv


@pytest.fixture
def pool_of(server: TdsServer) -> Iterator[MakePool]:
    made: list[tether.Pool] = []

    def make(variant: str, **settings: Any) -> tether.Pool:
        pool = tether.Pool(url(server, variant), min_size=1, max_size=1, autocommit=False, **settings)
        made.append(pool)
        pool.wait(10)
        return pool

    yield make
    for pool in made:
        pool.close()


def babelfish(server: TdsServer) -> bool:
    return not server.personality.reset_skip_tran


def refusal_teaches(variant: str, server: TdsServer) -> bool:
    """python-tds on a Babelfish whose login does not say so: the first 0x10 reset is
    refused, which ends that session (one login more), and teaches tether to send 0x08."""
    return variant == "pytds" and server.personality is BABELFISH_AS_2022


def spid_of(server: TdsServer, conn: tether.Connection) -> int:
    """The borrowed connection's session, found by its client port, without a statement
    (a read would be the transaction's)."""
    probe = lease_of(conn).probe
    assert probe is not None, "no socket found"
    sock = socket.socket(fileno=probe.fd)
    local_port = sock.getsockname()[1]
    sock.detach()
    (info,) = [s for s in server.sessions() if s.client_port == local_port]
    return info.spid


def kill_idle(server: TdsServer, conn: tether.Connection) -> int:
    spid = spid_of(server, conn)
    server.kill(spid)
    wait_until(lambda: server.session(spid) is None, what=f"session {spid} gone")
    wait_for_goodbye(conn)
    return spid


# --- the reset --------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_borrow_that_ran_a_set_costs_no_new_login(
    variant: str, server: TdsServer, pool_of: MakePool
) -> None:
    pool = pool_of(variant)
    for _ in range(3):
        with pool.connection() as conn:
            conn.execute("SET DATEFIRST 3")
        with pool.connection() as conn:
            assert conn.execute("SELECT @@DATEFIRST").fetchone()[0] == 7
    # python-tds knows Babelfish by its login, and resets it with 0x08 and the transaction
    # begun again; where the login does not tell, the first refusal does (one login more).
    assert pool.stats().hard_connects == (2 if refusal_teaches(variant, server) else 1)


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_first_isolation_change_of_a_borrow_works_and_does_not_leak(
    variant: str, server: TdsServer, pool_of: MakePool
) -> None:
    pool = pool_of(variant)
    for _ in range(2):
        with pool.connection() as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")  # first: nothing read yet
            assert conn.execute(ISOLATION).fetchone()[0] == 4
        with pool.connection() as conn:
            assert conn.execute(ISOLATION).fetchone()[0] == 2
    # Babelfish refuses 0x10 and ends the session; known by its login, it never gets it
    assert pool.stats().hard_connects == (2 if refusal_teaches(variant, server) else 1)


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_checkout_ping_leaves_the_borrowers_transaction_clean(
    variant: str, server: TdsServer, pool_of: MakePool
) -> None:
    # validate_after_idle=0: every checkout pings. The ping's SELECT runs in the driver's
    # open transaction; on Babelfish the borrower's first isolation change would then fail.
    pool = pool_of(variant, validate_after_idle=0)
    for _ in range(2):
        with pool.connection() as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            assert conn.execute(ISOLATION).fetchone()[0] == 4
    assert pool.stats().pings >= 1


def test_babelfish_refuses_an_isolation_change_after_a_read(server: TdsServer, pool_of: MakePool) -> None:
    # What the test server reproduces, so that the test above can fail: the change after a read.
    pool = pool_of("pytds")
    with pool.connection() as conn:
        conn.execute("SELECT 1").fetchall()
        if babelfish(server):
            with pytest.raises(Exception, match="before any query"):
                conn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        else:
            conn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")


def test_a_refused_reset_never_reaches_the_borrower(server: TdsServer, pool_of: MakePool) -> None:
    pool = pool_of("pytds")
    conn = pool.getconn()
    conn.execute("CREATE TABLE ledger (n int)")
    conn.commit()
    conn.execute("SET DATEFIRST 3")
    pool.putconn(conn)  # no SQL to send: the reset rides on the next borrower's request
    for n in range(3):
        with pool.connection() as conn:
            assert conn.execute("SELECT 40 + 2").fetchone()[0] == 42  # never the server's refusal
            conn.execute(f"INSERT INTO ledger VALUES ({n})")
            if n == 1:
                conn.rollback()  # still in a transaction after the fallback reset
            conn.execute("SET DATEFIRST 3")  # each return resets
    with pool.connection() as conn:
        assert sorted(r[0] for r in conn.execute("SELECT n FROM ledger").fetchall()) == [0, 2]
    skip_tran = [r for r in server.requests() if r.status & 0x10]
    if refusal_teaches("pytds", server):
        assert len(skip_tran) == 1  # refused once, then 0x08
        assert pool.stats().hard_connects == 2 and pool.stats().recovered == 1
    elif babelfish(server):
        assert len(skip_tran) == 0  # known by its login: 0x08 from the first reset
        assert pool.stats().hard_connects == 1
    else:
        assert len(skip_tran) >= 3
        assert pool.stats().hard_connects == 1


# --- idle resiliency with the driver's transaction open ------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_transaction_of_set_statements_is_replayed(
    variant: str, server: TdsServer, pool_of: MakePool
) -> None:
    pool = pool_of(variant)
    with pool.connection() as conn:
        cursor = conn.cursor()
        cursor.execute("USE master")
        cursor.execute("SET LANGUAGE british")
        cursor.execute("SET DATEFIRST 3")
        cursor.close()
        first = kill_idle(server, conn)
        row = conn.execute("SELECT @@DATEFIRST, @@LANGUAGE, DB_NAME(), @@SPID").fetchone()
        assert tuple(row)[:3] == (3, "british", "master") and row[3] != first
    assert pool.stats().recovered == 1


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(
    "work",
    ["INSERT INTO ledger VALUES (1)", "SELECT n FROM ledger", "SELECT * FROM missing_table"],
    ids=["wrote", "read", "failed"],
)
def test_a_transaction_that_did_more_stays_lost(
    variant: str, work: str, server: TdsServer, pool_of: MakePool
) -> None:
    pool = pool_of(variant)
    with pool.connection() as conn:
        conn.execute("CREATE TABLE ledger (n int)")
        conn.commit()
        conn.execute("SET DATEFIRST 3")
        try:
            cursor = conn.execute(work)
            if work.startswith("SELECT"):
                cursor.fetchall()
        except Exception:
            assert "missing_table" in work
        kill_idle(server, conn)
        with pytest.raises(tether.SessionLost) as caught:
            conn.execute("SELECT 1")
        assert "open transaction" in caught.value.reasons
    assert pool.stats().sessions_lost == 1


def test_babelfish_begins_implicit_transactions_at_once(server: TdsServer) -> None:
    # The test server's eager_implicit_transactions: what SQL Server begins at the first
    # statement that needs it, Babelfish begins when transaction mode starts and after each end.
    conn = connect_pytds(server)  # autocommit: the transactions are the server's own
    try:
        cursor = conn.cursor()
        cursor.execute("SET IMPLICIT_TRANSACTIONS ON")
        port = conn._tds_socket.sock.getsockname()[1]  # not a statement: it would be a read
        (info,) = [s for s in server.sessions() if s.client_port == port]
        eager = 1 if babelfish(server) else 0
        assert info.tran_count == eager
        cursor.execute("SELECT 1")
        cursor.fetchall()
        cursor.execute("COMMIT TRANSACTION" if eager else "SELECT 2")
        assert server.session(info.spid).tran_count == eager  # begun again right after the commit
    finally:
        conn.close()
