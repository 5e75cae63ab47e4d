"""Fixtures for the TDS test server (``pytest_plugins = ["fix_tds"]``) and each driver's connect.

- ``tds_server``: a running :class:`tdsserver.TdsServer` (one per test module); every test
  starts with no sessions (those left from earlier tests are killed), no tables, no faults,
  and counters at zero. User ``sa`` / ``Secret-pw1`` (also ``app`` / ``App-pw1``);
  databases master, tempdb, shop.
- ``tds_connect``: ``tds_connect(driver, **options)`` opens a connection with one of
  :data:`DRIVERS` to ``tds_server`` and closes it after the test, whatever the test did.
- ``connect_pytds``, ``connect_pymssql``, ``connect_pyodbc_freetds``, ``connect_pyodbc_msodbc``,
  ``connect_mssql_python``: the same as plain functions taking the server; each skips the
  test (naming what is missing) when its driver or ODBC library is absent. ``encrypt=True``
  asks for TLS all the way (the server needs ``tls=``); without it the ODBC drivers and
  pymssql still offer login-only encryption, python-tds without pyOpenSSL offers none.
  ``encrypt="strict", certificate=<PEM path>`` (ODBC 18, mssql-python): TDS 8.0, TLS first.

mssql-python pools connections by default (process-wide): ``close()`` returns the
connection to its pool and the next connect with the same string reuses it, with
RESETCONNECTION set on its next request. The helpers leave that as the driver ships it.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import sysconfig
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

import tether
from fix_system import import_driver, need_msodbc
from fix_wait import wait_until
from tdsserver import TdsServer

USER = "sa"
PASSWORD = "Secret-pw1"
DATABASE = "shop"
LOGIN_TIMEOUT = 5
FREETDS_GLOBS = ("/usr/lib/x86_64-linux-gnu/odbc/libtdsodbc.so", "/usr/lib/*/odbc/libtdsodbc.so",
                 "/usr/lib*/libtdsodbc.so*", "/usr/local/lib/libtdsodbc.so*",
                 "/opt/homebrew/lib/libtdsodbc.so", "/usr/local/opt/freetds/lib/libtdsodbc.so")


VARIANTS = ("pytds", "pymssql", "pyodbc-msodbc", "pyodbc-freetds", "mssql-python")
VARIANT_MODULES = {"pytds": "pytds", "pymssql": "pymssql", "pyodbc-msodbc": "pyodbc",
                   "pyodbc-freetds": "pyodbc", "mssql-python": "mssql_python"}
_EXTRAS = {"pytds": "pytds", "pymssql": "pymssql", "pyodbc": "pyodbc", "mssql_python": "mssql-python"}


def sqlserver_url(variant: str, host: str, port: int, **query: str) -> str:
    """tether's URL for ``variant`` (a driver set-up) on the test server at ``host:port``;
    skips, naming what to install, where the variant is missing."""
    module = VARIANT_MODULES[variant]
    import_driver(module, f"'tether[{_EXTRAS[module]}]'")
    query.setdefault("encrypt", "false")  # the test server speaks no TLS
    if variant in ("pyodbc-msodbc", "mssql-python"):
        library = need_msodbc(msodbc_library())
        if variant == "pyodbc-msodbc":
            query["driver"] = library
    elif variant == "pyodbc-freetds":
        freetds = freetds_odbc_library()
        if freetds is None:
            pytest.skip("FreeTDS's ODBC driver is not installed: apt-get install tdsodbc")
        query["driver"] = freetds
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return f"mssql+{module}://{USER}:{PASSWORD}@{host}:{port}/{DATABASE}?{params}"


def _driver(module: str) -> ModuleType:
    return import_driver(module)


def freetds_odbc_library() -> str | None:
    """Path of FreeTDS's ODBC driver (Debian/Ubuntu package ``tdsodbc``), if installed."""
    for pattern in FREETDS_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def msodbc_library() -> str | None:
    """Microsoft's ODBC Driver 18, as shipped in the ``mssql-python-odbc`` wheel (Linux x86_64)."""
    purelib = sysconfig.get_paths()["purelib"]
    base = os.path.join(purelib, "mssql_python_odbc", "libs", "linux")
    for distro in ("debian_ubuntu", "rhel", "suse", "*"):
        found = sorted(glob.glob(os.path.join(base, distro, "*", "lib", "libmsodbcsql-18*.so*")))
        if found:
            return found[0]
    return None


def connect_pytds(srv: TdsServer, *, user: str = USER, password: str = PASSWORD, database: str = DATABASE,
                  encrypt: bool = False, **options: Any) -> Any:
    """encrypt=True needs pyOpenSSL (python-tds's TLS) and ``cafile=`` (the server's certificate)."""
    pytds = _driver("pytds")
    if encrypt:
        pytest.importorskip("OpenSSL", reason="python-tds encrypts only with pyOpenSSL installed")
        options.setdefault("validate_host", False)
    options.setdefault("login_timeout", LOGIN_TIMEOUT)
    options.setdefault("autocommit", True)
    return pytds.connect(srv.host, port=srv.port, user=user, password=password, database=database,
                         **options)


def connect_pymssql(srv: TdsServer, *, user: str = USER, password: str = PASSWORD, database: str = DATABASE,
                    encrypt: bool = False, **options: Any) -> Any:
    pymssql = _driver("pymssql")
    if encrypt:
        options.setdefault("encryption", "require")
    options.setdefault("login_timeout", LOGIN_TIMEOUT)
    options.setdefault("autocommit", True)
    return pymssql.connect(server=srv.host, port=str(srv.port), user=user, password=password,
                           database=database, **options)


def _pyodbc_connect(conn_str: str, options: dict[str, Any]) -> Any:
    pyodbc = _driver("pyodbc")
    options.setdefault("timeout", LOGIN_TIMEOUT)
    options.setdefault("autocommit", True)
    return pyodbc.connect(conn_str, **options)


def connect_pyodbc_freetds(srv: TdsServer, *, user: str = USER, password: str = PASSWORD,
                           database: str = DATABASE, encrypt: bool = False, extra: str = "",
                           **options: Any) -> Any:
    """encrypt=False leaves FreeTDS's default (it offers login-only encryption)."""
    library = freetds_odbc_library()
    if library is None:
        pytest.skip("FreeTDS's ODBC driver libtdsodbc.so is not installed: apt-get install tdsodbc")
    conn_str = (f"DRIVER={library};SERVER={srv.host};PORT={srv.port};TDS_Version=7.4;UID={user};"
                f"PWD={password};DATABASE={database};{'Encryption=require;' if encrypt else ''}{extra}")
    return _pyodbc_connect(conn_str, options)


def _encrypt(encrypt: bool | str, certificate: str | None) -> str:
    """Encrypt=no still offers login-only encryption (ENCRYPT_OFF); the server may take it.
    encrypt="strict" is TDS 8.0 (TLS before PRELOGIN), which checks the certificate: pass the
    server's own as ``certificate`` (a PEM path)."""
    if encrypt == "strict":
        return f"Encrypt=strict;ServerCertificate={certificate};" if certificate else "Encrypt=strict;"
    return "Encrypt=yes;TrustServerCertificate=yes;" if encrypt else "Encrypt=no;TrustServerCertificate=yes;"


def connect_pyodbc_msodbc(srv: TdsServer, *, user: str = USER, password: str = PASSWORD,
                          database: str = DATABASE, encrypt: bool | str = False,
                          certificate: str | None = None, extra: str = "", **options: Any) -> Any:
    library = need_msodbc(msodbc_library())
    conn_str = (f"DRIVER={library};SERVER={srv.host},{srv.port};UID={user};PWD={password};"
                f"DATABASE={database};{_encrypt(encrypt, certificate)}{extra}")
    return _pyodbc_connect(conn_str, options)


def connect_mssql_python(srv: TdsServer, *, user: str = USER, password: str = PASSWORD,
                         database: str = DATABASE, encrypt: bool | str = False,
                         certificate: str | None = None, extra: str = "", **options: Any) -> Any:
    mssql_python = _driver("mssql_python")
    need_msodbc(msodbc_library())  # mssql-python loads the same driver library
    options.setdefault("timeout", LOGIN_TIMEOUT)
    options.setdefault("autocommit", True)
    conn_str = (f"Server={srv.host},{srv.port};UID={user};PWD={password};Database={database};"
                f"{_encrypt(encrypt, certificate)}{extra}")
    return mssql_python.connect(conn_str, **options)


DRIVERS: dict[str, Callable[..., Any]] = {
    "pytds": connect_pytds,
    "pymssql": connect_pymssql,
    "pyodbc-freetds": connect_pyodbc_freetds,
    "pyodbc-msodbc": connect_pyodbc_msodbc,
    "mssql-python": connect_mssql_python,
}


@pytest.fixture(scope="module")
def tds_server_module() -> Iterator[TdsServer]:
    with TdsServer(users={USER: PASSWORD, "app": "App-pw1"}, databases=("master", "tempdb", "shop")) as srv:
        yield srv


@pytest.fixture
def tds_server(tds_server_module: TdsServer) -> TdsServer:
    """The module's server with no sessions left from earlier tests (pools keep them), no tables,
    no faults, counters at zero."""
    for info in tds_server_module.sessions():
        tds_server_module.kill(info.spid)
    wait_until(lambda: not tds_server_module.sessions(), what="the earlier tests' sessions to end")
    tds_server_module.drop_tables()
    tds_server_module.clear()
    return tds_server_module


_test_number = itertools.count(1)


@pytest.fixture
def tds_connect(tds_server: TdsServer) -> Iterator[Callable[..., Any]]:
    opened: list[Any] = []
    # mssql-python pools by connection string, process-wide, and allows few keywords (not APP):
    # a packet size of the test's own keeps one test from being handed another test's (by now
    # killed) pooled connection. Small requests and answers fit one packet whatever the size.
    own_pool = f"PacketSize={4096 + next(_test_number) % 28000};"

    def connect(driver: str, **options: Any) -> Any:
        if driver == "mssql-python":
            options["extra"] = own_pool + options.get("extra", "")
        conn = DRIVERS[driver](tds_server, **options)
        opened.append(conn)
        return conn

    yield connect
    tds_server.clear()  # no fault may hit the closing connections
    for conn in opened:
        with contextlib.suppress(Exception):
            conn.close()


@pytest.fixture
def pools() -> Iterator[Callable[..., tether.Pool]]:
    """Pools made by ``pools(dsn, **settings)`` (one connection kept, two at most, unless
    told), each closed when the test ends."""
    made: list[tether.Pool] = []

    def make(dsn: str, **settings: Any) -> tether.Pool:
        settings.setdefault("min_size", 1)
        settings.setdefault("max_size", 2)
        settings.setdefault("timeout", 10)
        pool = tether.Pool(dsn, **settings)
        made.append(pool)
        pool.wait(10)
        return pool

    yield make
    for pool in made:
        pool.close()
