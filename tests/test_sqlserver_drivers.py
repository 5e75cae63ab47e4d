"""The four SQL Server drivers through tether, against the TDS test server (tests/tdsserver).

Five ways in: python-tds, pymssql, pyodbc with Microsoft's ODBC driver 18, pyodbc with
FreeTDS, and mssql-python. Each test skips, naming what is missing, where a driver or an
ODBC library is absent. What is asserted is what a user sees (rows, errors, the pool's
counters) and what the server saw (sessions, requests, resets).

The cost of a reset, measured here in requests the server received between a connection's
return and the next borrower's first statement (``RESET_REQUESTS``): after a borrow that
changed SET options and made a temp table, python-tds and Microsoft's driver (pyodbc,
mssql-python) need none in autocommit mode (the reset rides on the next borrower's
request); FreeTDS and pymssql restore SET options with one batch, and cannot drop a temp
table at all, so that connection is replaced.
"""

from __future__ import annotations

import datetime
import importlib
import importlib.util
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator

import pytest

import tether
from fix_pool import socket_fd, wait_for_goodbye
from fix_tds import _EXTRAS, DATABASE, PASSWORD, USER, VARIANTS, sqlserver_url
from fix_tds import VARIANT_MODULES as _MODULES
from fix_wait import wait_until
from tdsserver import TdsServer
from tether.drivers import load_driver
from tether.dsn import parse
from tether.errors import ConfigError
from tether.net import Keepalive, apply_keepalive
from tether.net._keepalive import read_keepalive
from tether.session import lease_of
from tether.session._watchdog import GRACE_S
from tether.wan import Link

SQL_ONLY = ("pymssql", "pyodbc-freetds")  # no session reset in the driver: SQL restores
MakePool = Callable[..., tether.Pool]


def url(srv: TdsServer, variant: str, **query: str) -> str:
    """A tether URL for ``variant`` on the test server; skips when the variant is absent."""
    found = sqlserver_url(variant, srv.host, srv.port, **query)
    if variant == "mssql-python":
        _mssql_python_pooling_off()
    return found


def _mssql_python_pooling_off() -> None:
    # mssql-python turns its own pool on at its first connect (other tests use it that way);
    # tether refuses to pool on top of it, so these tests turn it off, as a user would.
    import mssql_python

    mssql_python.pooling(enabled=False)


@pytest.fixture(scope="module", autouse=True)
def _restore_mssql_python_pooling() -> Iterator[None]:
    try:
        from mssql_python.pooling import PoolingManager
    except ImportError:
        yield
        return
    was = PoolingManager.is_enabled()
    yield
    if was:
        PoolingManager.enable()


SETTLED = "the pool settled (busy, resetting, opening all 0)"


def settled(pool: tether.Pool) -> Callable[[], bool]:
    """True once no connection of ``pool`` is out or being reset."""

    def check() -> bool:
        stats = pool.stats()
        return stats.busy == 0 and stats.resetting == 0 and stats.opening == 0

    return check


def spid_of(conn: tether.Connection) -> int:
    return int(conn.execute("SELECT @@SPID").fetchone()[0])


# --- connecting, the socket, pooling ------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_pool_reuses_one_connection(variant: str, tds_server: TdsServer, pools: MakePool) -> None:
    pool = pools(url(tds_server, variant), max_size=1)
    seen = set()
    for _ in range(5):
        with pool.connection() as conn:
            seen.add(spid_of(conn))
            assert conn.execute("SELECT 40 + 2").fetchone()[0] == 42
    assert len(seen) == 1
    assert pool.stats().hard_connects == 1
    assert tds_server.stats.logins == 1


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("autocommit", [False, True])
def test_socket_is_the_sessions_own_and_has_keepalive(
    variant: str, autocommit: bool, tds_server: TdsServer
) -> None:
    name = _MODULES[variant]
    spec = parse(url(tds_server, variant))  # first: it skips when the driver cannot load
    driver = load_driver("sqlserver", name)
    raw = driver.connect(spec, timeout_s=5, autocommit=autocommit)
    try:
        fd = driver.socket_fd(raw)
        assert fd is not None, "the driver's socket was not found"
        sock = socket.socket(fileno=fd)
        local_port = sock.getsockname()[1]
        sock.detach()
        # The in-process server opens a socket during the connect too: the session's own
        # client port (sys.dm_exec_connections) told them apart.
        (session,) = [s for s in tds_server.sessions() if s.client_port == local_port]
        assert session.user == USER and session.database == DATABASE
        apply_keepalive(fd, Keepalive())
        options = read_keepalive(fd)
        assert options["SO_KEEPALIVE"] == 1 and options.get("TCP_KEEPIDLE", 30) == 30
    finally:
        driver.close(raw)
    if name != "pytds":  # tether's duplicate went with the connection: the server sees it end
        wait_until(lambda: not tds_server.sessions(), what="the server to see the session end")


@pytest.mark.parametrize("variant", VARIANTS)
def test_ado_string_through_the_pool(variant: str, tds_server: TdsServer, pools: MakePool) -> None:
    options = dict(pair.split("=", 1) for pair in url(tds_server, variant).partition("?")[2].split("&"))
    dsn = (f"Server=tcp:{tds_server.host},{tds_server.port};Database={DATABASE};User ID={USER};"
           f"Password={PASSWORD};Encrypt=false;Connect Timeout=5;Application Name=tether-tests")  # fmt: skip
    # pyodbc's ODBC library has no SqlClient keyword (ADO's grammar refuses Driver=): it is
    # given as an option on top.
    extra = {"odbc_driver": options["driver"]} if "driver" in options else {}
    pool = pools(parse(dsn, driver=_MODULES[variant], **extra))
    with pool.connection() as conn:
        assert conn.execute("SELECT DB_NAME()").fetchone()[0] == DATABASE
    (session,) = tds_server.sessions()
    assert session.app == "tether-tests"  # mssql-python's own "MSSQL-Python" replaced too


# --- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_idle_session_killed_by_the_server_is_replaced_unseen(
    variant: str, tds_server: TdsServer, pools: MakePool
) -> None:
    pool = pools(url(tds_server, variant), max_size=1, validate_after_idle=None)
    with pool.connection() as conn:
        first = spid_of(conn)
        idle_socket = socket_fd(conn)  # still this connection's once it is back in the pool
    wait_until(settled(pool), what=SETTLED)
    assert tds_server.kill(first)
    wait_until(lambda: tds_server.session(first) is None, what=f"session {first} gone")
    wait_for_goodbye(idle_socket)
    # The zero-round-trip probe sees the server's FIN: no ping, no error for the borrower.
    with pool.connection() as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1
        assert spid_of(conn) != first
    stats = pool.stats()
    assert stats.discarded_dead == 1 and stats.pings == 0 and stats.hard_connects == 2


@pytest.mark.parametrize("variant", VARIANTS)
def test_session_dying_mid_request_is_discarded_on_return(
    variant: str, tds_server: TdsServer, pools: MakePool
) -> None:
    pool = pools(url(tds_server, variant), max_size=1)
    conn = pool.getconn()
    first = spid_of(conn)
    tds_server.close_busy(1)  # the server reads the next request and closes instead of answering
    with pytest.raises(Exception) as info:  # in doubt: the driver's own error reaches the caller
        conn.execute("SELECT 1").fetchall()
    assert pool.dialect.is_disconnect(info.value)
    pool.putconn(conn)  # the driver now reports the connection BROKEN: it is not kept
    with pool.connection() as conn:
        assert spid_of(conn) != first
    assert pool.stats().hard_connects == 2


@pytest.mark.parametrize("variant", VARIANTS)
def test_concurrent_opens_each_find_their_own_socket(
    variant: str, tds_server: TdsServer, pools: MakePool
) -> None:
    pool = pools(url(tds_server, variant), min_size=4, max_size=4)  # opened in parallel
    borrowed = [pool.getconn() for _ in range(4)]
    try:
        for conn in borrowed:
            probe = lease_of(conn).probe
            assert probe is not None, "no socket found"
            sock = socket.socket(fileno=probe.fd)
            local_port = sock.getsockname()[1]
            sock.detach()
            assert tds_server.session(spid_of(conn)).client_port == local_port
            assert read_keepalive(probe.fd)["SO_KEEPALIVE"] == 1  # set by the pool on every socket
    finally:
        for conn in borrowed:
            pool.putconn(conn)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.slow
def test_a_stuck_reset_is_severed_through_the_found_socket(
    variant: str, tds_server: TdsServer, pools: MakePool
) -> None:
    # The pool shuts down the socket of a reset that outlives reset_timeout; for the native
    # drivers that is tether's duplicate of their descriptor, which ends their blocked read.
    pool = pools(url(tds_server, variant), max_size=1, reset_timeout=0.3, maintenance_interval=0.05,
                 autocommit=True)  # fmt: skip
    with pool.connection() as conn:
        first = spid_of(conn)
        conn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")  # the reset must send SQL
        tds_server.delay(3)  # and the server will sit on it
    started = time.monotonic()
    wait_until(lambda: pool.stats().hard_disconnects >= 1, timeout=10, what="the stuck reset severed")
    assert time.monotonic() - started < 2  # severed at reset_timeout, not ended by the server
    tds_server.clear()
    with pool.connection() as conn:
        assert spid_of(conn) != first


@pytest.mark.parametrize("variant", VARIANTS)
def test_login_refused_with_40613_is_retried(
    variant: str, tds_server: TdsServer, pools: MakePool
) -> None:
    dsn = url(tds_server, variant, connect_retry_count="2", connect_retry_interval="1")
    tds_server.reject_logins(1, error=40613)  # Azure: "database not currently available"
    pool = pools(dsn, max_size=1)
    with pool.connection() as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1
    assert tds_server.stats.rejected_logins == 1
    assert pool.stats().connect_failures == 0  # the retry succeeded within one open


# --- what a returned connection leaves behind ------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("autocommit", [False, True])
def test_next_borrower_gets_a_clean_session(
    variant: str, autocommit: bool, tds_server: TdsServer, pools: MakePool
) -> None:
    pool = pools(url(tds_server, variant), max_size=1, autocommit=autocommit)
    with pool.connection() as conn:
        conn.execute("CREATE TABLE #scratch (a int)")
        conn.execute("SET DATEFIRST 3")
        conn.execute("SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED")
        conn.execute("USE master")
        first = spid_of(conn)
    wait_until(settled(pool), what=SETTLED)
    with pool.connection() as conn:
        again = spid_of(conn)
        assert tuple(conn.execute("SELECT @@DATEFIRST, DB_NAME()").fetchone()) == (7, DATABASE)
        assert tds_server.session(again).isolation_level == 2  # READ COMMITTED
        with pytest.raises(Exception, match="scratch"):
            conn.execute("SELECT * FROM #scratch").fetchall()
    # The drivers with a session reset keep the connection; the others cannot drop a temp
    # table, so that one was replaced.
    assert (again == first) == (variant not in SQL_ONLY)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("autocommit", [False, True])
def test_uncommitted_work_is_rolled_back_and_committed_work_kept(
    variant: str, autocommit: bool, tds_server: TdsServer, pools: MakePool
) -> None:
    pool = pools(url(tds_server, variant), max_size=1, autocommit=autocommit)
    ledger = f"ledger_{variant.replace('-', '_')}_{int(autocommit)}"  # the catalog outlives a test
    with pool.connection() as conn:
        conn.execute(f"CREATE TABLE {ledger} (n int)")
    conn = pool.getconn()
    if autocommit:
        conn.execute("BEGIN TRANSACTION")
    conn.execute(f"INSERT INTO {ledger} VALUES (1)")
    pool.putconn(conn)  # not committed: rolled back
    with pool.connection() as conn:
        if autocommit:
            conn.execute("BEGIN TRANSACTION")
        conn.execute(f"INSERT INTO {ledger} VALUES (2)")
        if autocommit:
            conn.execute("COMMIT")
    wait_until(settled(pool), what=SETTLED)
    with pool.connection() as conn:
        assert [tuple(row) for row in conn.execute(f"SELECT n FROM {ledger}").fetchall()] == [(2,)]
    assert all(s.tran_count == 0 for s in tds_server.sessions()) or not autocommit


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_cursor_kept_across_commit_still_counts(
    variant: str, tds_server: TdsServer, pools: MakePool
) -> None:
    # With autocommit off, the pool must know that statements ran since the last commit
    # even through a cursor opened before it (the drivers' own flags would say "clean").
    pool = pools(url(tds_server, variant), max_size=1, autocommit=False)
    table = f"kept_{variant.replace('-', '_')}"
    with pool.connection() as conn:
        conn.execute(f"CREATE TABLE {table} (n int)")
    conn = pool.getconn()
    cursor = conn.cursor()
    cursor.execute(f"INSERT INTO {table} VALUES (1)")
    conn.commit()
    cursor.execute(f"INSERT INTO {table} VALUES (2)")  # after the commit, same cursor
    cursor.close()
    pool.putconn(conn)  # not committed: must be rolled back
    wait_until(settled(pool), what=SETTLED)
    with pool.connection() as conn:
        assert [tuple(row) for row in conn.execute(f"SELECT n FROM {table}").fetchall()] == [(1,)]


# How many requests the server got between a connection's return and the next borrower's
# first statement, after a borrow that ran SET DATEFIRST (autocommit on), and whether that
# first statement carried the reset flag.
RESET_REQUESTS = {"pytds": 0, "pyodbc-msodbc": 0, "mssql-python": 0, "pyodbc-freetds": 1, "pymssql": 1}
ISOLATION_EXTRA = {"pytds": 1, "pyodbc-msodbc": 1, "mssql-python": 1, "pyodbc-freetds": 0, "pymssql": 0}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("isolation", [False, True])
def test_reset_cost_in_requests(
    variant: str, isolation: bool, tds_server: TdsServer, pools: MakePool
) -> None:
    pool = pools(url(tds_server, variant), max_size=1, autocommit=True)
    with pool.connection() as conn:
        spid = spid_of(conn)
        conn.execute("SET DATEFIRST 3")
        if isolation:
            conn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        returned_at = len(tds_server.requests(spid))
    wait_until(settled(pool), what=SETTLED)
    during_reset = tds_server.requests(spid)[returned_at:]
    with pool.connection() as conn:
        assert conn.execute("SELECT @@DATEFIRST").fetchone()[0] == 7
    first_of_next = tds_server.requests(spid)[returned_at + len(during_reset)]
    expected = RESET_REQUESTS[variant] + (ISOLATION_EXTRA[variant] if isolation else 0)
    assert len(during_reset) == expected, [r.text for r in during_reset]
    flagged = [r for r in (*during_reset, first_of_next) if r.status & 0x18]
    assert len(flagged) == (0 if variant in SQL_ONLY else 1)
    assert tds_server.session(spid).isolation_level == 2
    assert pool.stats().hard_connects == 1


# --- TLS -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TdsServer]:
    """A server with a self-signed certificate for localhost: no CA vouches for it."""
    x509 = pytest.importorskip("cryptography.x509", reason="cryptography is not installed")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))  # fmt: skip
    directory = tmp_path_factory.mktemp("tls")
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))  # fmt: skip
    with TdsServer(users={USER: PASSWORD}, databases=("master", "tempdb", DATABASE),
                   tls=(str(certfile), str(keyfile))) as srv:  # fmt: skip
        yield srv


def tls_url(srv: TdsServer, variant: str, **query: str) -> str:
    """The certificate names localhost. Microsoft's ODBC driver (pyodbc-msodbc, mssql-python)
    connects to 127.0.0.1 and is told the name with HostNameInCertificate: where localhost
    also resolves to ::1 (a fresh Debian's /etc/hosts) it fails at ::1 (TCP Provider 0x2AF9)
    instead of trying 127.0.0.1, the only address the server listens on."""
    if variant in ("pyodbc-msodbc", "mssql-python"):
        return url(srv, variant, host_name_in_certificate="localhost", **query)
    return url(srv, variant, **query).replace(f"@{srv.host}:", "@localhost:")


@pytest.mark.parametrize("variant", VARIANTS)
def test_encrypt_with_trusted_certificate(variant: str, tls_server: TdsServer) -> None:
    name = _MODULES[variant]
    spec = parse(tls_url(tls_server, variant, encrypt="true", trust_server_certificate="true"))
    driver = load_driver("sqlserver", name)
    if name == "pytds" and importlib.util.find_spec("OpenSSL") is None:
        with pytest.raises(ConfigError, match="pip install pyOpenSSL"):
            driver.connect(spec, timeout_s=5, autocommit=True)
        return
    if name == "pytds":
        pytest.skip("python-tds always validates the chain: TrustServerCertificate is refused")
    raw = driver.connect(spec, timeout_s=5, autocommit=True)
    try:
        (session,) = tls_server.sessions()
        assert session.encrypted
    finally:
        driver.close(raw)
        for info in tls_server.sessions():
            tls_server.kill(info.spid)


@pytest.mark.parametrize("variant", VARIANTS)
def test_encrypt_never_means_encrypt_without_validation(variant: str, tls_server: TdsServer) -> None:
    """Encrypt=true alone: a self-signed certificate fails the login, or the driver that
    cannot validate is refused before connecting; it never goes through unchecked."""
    name = _MODULES[variant]
    spec = parse(tls_url(tls_server, variant, encrypt="true"))
    driver = load_driver("sqlserver", name)
    tls_server.clear()
    with pytest.raises(Exception) as info:
        driver.close(driver.connect(spec, timeout_s=5, autocommit=True))
    if variant in ("pymssql", "pyodbc-freetds"):
        assert isinstance(info.value, ConfigError) and "validate" in str(info.value)
    elif name == "pytds" and importlib.util.find_spec("OpenSSL") is None:
        assert isinstance(info.value, ConfigError) and "pyOpenSSL" in str(info.value)
    else:
        assert "certificate verify failed" in str(info.value)
    assert tls_server.stats.logins == 0


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pytds", "pymssql", "pyodbc", "mssql_python"])
def test_driver_not_installed_names_the_tether_extra(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, name, None)  # import now fails as if it were not installed
    monkeypatch.delitem(sys.modules, f"tether.drivers.{name}", raising=False)
    wanted = re.escape(f"is not installed: pip install 'tether[{_EXTRAS[name]}]'")
    with pytest.raises(ConfigError, match=wanted):
        load_driver("sqlserver", name)
    with pytest.raises(ConfigError, match=wanted):
        tether.Pool(f"mssql+{name}://sa@127.0.0.1/db", open=False)


def test_no_sqlserver_driver_at_all_lists_every_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _EXTRAS:
        monkeypatch.setitem(sys.modules, name, None)
        monkeypatch.delitem(sys.modules, f"tether.drivers.{name}", raising=False)
    with pytest.raises(ConfigError) as info:
        load_driver("sqlserver")
    for extra in _EXTRAS.values():
        assert f"pip install 'tether[{extra}]'" in str(info.value)


def test_mssql_python_own_pool_is_refused(tds_server: TdsServer) -> None:
    dsn = url(tds_server, "mssql-python")
    import mssql_python

    mssql_python.pooling(max_size=5, idle_timeout=60)
    try:
        with pytest.raises(ConfigError, match=r"pooling\(enabled=False\)"):
            load_driver("sqlserver", "mssql_python").connect(parse(dsn), timeout_s=5, autocommit=True)
    finally:
        mssql_python.pooling(enabled=False)


def test_azure_endpoints_get_sqlclients_azure_defaults() -> None:
    pytest.importorskip("pytds", reason="python-tds is not installed: pip install 'tether[pytds]'")
    azure = "Server=tcp:shop.database.windows.net,1433;Database=shop;User ID=app;Password=x"
    pool = tether.Pool(azure, driver="pytds", open=False)
    assert pool.config.connect_retry.count == 2  # SqlClient raises 1 to 2 for Azure SQL
    assert pool._blocks is False  # and the pool blocking period is off
    explicit = tether.Pool(azure + ";ConnectRetryCount=5;PoolBlockingPeriod=AlwaysBlock", driver="pytds",
                           open=False)  # fmt: skip
    assert explicit.config.connect_retry.count == 5 and explicit._blocks is True
    elsewhere = tether.Pool("Server=tcp:db.example.com,1433;Encrypt=false", driver="pytds", open=False)
    # tether's blocking period is off for every database unless asked for (SqlClient's is on
    # outside Azure): a checkout waits out an outage instead of failing fast.
    assert elsewhere.config.connect_retry.count == 1 and elsewhere._blocks is False
    auto = tether.Pool("Server=tcp:db.example.com,1433;Encrypt=false;PoolBlockingPeriod=Auto", driver="pytds",
                       open=False)  # fmt: skip
    assert auto._blocks is True  # SqlClient's Auto, asked for: on outside Azure


# -- the command timeout ------------------------------------------------------------------

CANCELS = ("pyodbc-msodbc", "pyodbc-freetds")  # an attention from another thread: SQLCancel
# python-tds, pymssql and mssql-python cannot cancel from another thread: severed at once


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_slow_statement_times_out_the_drivers_way(variant: str, tds_server: TdsServer) -> None:
    with tether.Pool(url(tds_server, variant), min_size=1, max_size=1, command_timeout=0.5) as pool:
        with pool.connection() as conn:
            started = time.monotonic()
            with pytest.raises(tether.CommandTimeout) as caught:
                conn.execute("WAITFOR DELAY '00:00:30'")
            assert time.monotonic() - started <= 0.5 + GRACE_S + 0.5
            error = caught.value
            if variant in CANCELS:
                assert not error.severed and "the server cancelled it" in str(error)
                assert tds_server.stats.attentions >= 1  # FreeTDS also sends one to close a statement
                conn.rollback()
                assert conn.execute("SELECT 7").fetchone()[0] == 7  # the same session goes on
            else:
                assert error.severed and "cannot cancel a statement" in str(error)
        assert pool.stats().discarded_dead == (0 if variant in CANCELS else 1)
        with pool.connection(timeout=5) as conn:
            assert conn.execute("SELECT 8").fetchone()[0] == 8


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_statement_into_a_blackhole_is_severed_in_time(variant: str, tds_server: TdsServer) -> None:
    with Link(upstream=(tds_server.host, tds_server.port)) as link:
        host, port = link.listen_address
        dsn = url(tds_server, variant).replace(f"@{tds_server.host}:{tds_server.port}/", f"@{host}:{port}/")
        with tether.Pool(dsn, min_size=1, max_size=1, command_timeout=1.0) as pool:
            with pool.connection() as conn:
                assert conn.execute("SELECT 1").fetchone()[0] == 1
                with link.blackhole():
                    started = time.monotonic()
                    with pytest.raises(tether.CommandTimeout) as caught:
                        conn.execute("SELECT 2")
                    took = time.monotonic() - started
            assert caught.value.severed and took <= 1.0 + GRACE_S + 0.5
            with pool.connection(timeout=5) as conn:
                assert conn.execute("SELECT 3").fetchone()[0] == 3
