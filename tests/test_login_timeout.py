"""Every timeout honoured within 10 % or 100 ms, whichever is larger: the login timeout
for each installed driver, and the acquire timeout during an outage.

The servers here never complete a login: one accepts and says nothing (a blackhole), one
drops the connection partway (the immediate connect retry then has less time left than
libpq's 2 s minimum or ODBC's whole second), one dribbles a byte at a time (a driver that
does not reject the bytes at once gets data on each read, so a per-read timeout never
fires); and real servers behind a WAN link that forwards nothing. The reported case
(``login_timeout=3`` took 4.5 s) is rebuilt with a server that drops only the first
connection, 0.5 s before the deadline. The tests measure the time to the error and assert
only the upper bound the issue states; never a lower bound, which would race. Last, the
deadline keeper itself (``tether._acompat.call_within``, ``acall_within``): a connection
that comes after the deadline is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tether
from fix_system import import_driver, need_msodbc
from fix_tds import PASSWORD, USER, freetds_odbc_library, msodbc_library
from fix_wait import async_wait_until
from tdsserver import TdsServer
from tether._acompat import acall_within, call_within
from tether.drivers import load_async_driver, load_driver
from tether.dsn import parse
from tether.testing import EmbeddedMariaDB, EmbeddedPostgres
from tether.wan import Link

LOGIN_S = 1.5  # not a whole number of seconds: drivers that count whole seconds round it up
# The bound is max(1.1 t, t + 0.1). On top of it, this allowance for the machine:
# CI runs on 2 cores, shared by the test servers' threads, the helper thread that keeps
# the deadline (its start and the GIL hand-off back) and the asyncio loop's wake-up; the
# overhead measured here is under 0.05 s, so 0.25 s leaves room without hiding a rounded
# up second (libpq's 2 s minimum overshoots 1.5 s by 0.5 s).
SCHEDULING_S = 0.25
DROP_AFTER_S = 1.0  # the dropping server closes here: 0.5 s of the login timeout are left


def bound(timeout_s: float) -> float:
    return max(1.1 * timeout_s, timeout_s + 0.1) + SCHEDULING_S


# -- servers that never complete a login -----------------------------------------------------


class Silent:
    """A listening socket on 127.0.0.1 whose connections never get a login answer.

    ``drop``: each connection is closed ``drop_after`` seconds after it was accepted;
    ``drop-first``: only the first one, later ones are held as by ``blackhole``.
    """

    def __init__(self, mode: str, *, drop_after: float = DROP_AFTER_S) -> None:
        self.mode, self.drop_after = mode, drop_after
        self.dropped = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"silent-{mode}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        held: list[tuple[socket.socket, float]] = []
        while not self._stop.is_set():  # bounded: close() sets it
            with contextlib.suppress(TimeoutError):
                conn, _ = self.sock.accept()
                held.append((conn, time.monotonic()))
                if self.mode == "dribble":  # a header whose packet is never complete
                    conn.sendall(b"\x04\x01\xff\xff")  # TDS: a 65535-byte reply; MySQL: 16 MB
            now = time.monotonic()
            for conn, since in list(held):
                dropping = self.mode == "drop" or (self.mode == "drop-first" and not self.dropped)
                if dropping and now - since >= self.drop_after:
                    conn.close()
                    held.remove((conn, since))
                    self.dropped += 1
                elif self.mode == "dribble":
                    with contextlib.suppress(OSError):
                        conn.send(b"\x00")
        for conn, _ in held:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture(params=["blackhole", "drop", "dribble"])
def silent(request: pytest.FixtureRequest) -> Iterator[Silent]:
    server = Silent(request.param)
    yield server
    server.close()


@pytest.fixture(scope="module", autouse=True)
def _calls_left_behind() -> Iterator[None]:
    """Drivers given up on finish by their own timeouts: let them, before other modules run."""
    yield
    deadline = time.monotonic() + 30
    for thread in threading.enumerate():
        if thread.name == "tether-call-within":
            thread.join(max(deadline - time.monotonic(), 0))


# -- the drivers ---------------------------------------------------------------------------------

SYNC = ["psycopg", "pymysql", "pytds", "pymssql", "pyodbc-msodbc", "pyodbc-freetds", "mssql-python"]
ASYNC = ["asyncpg", "psycopg-async"]
_MODULES = {"psycopg": "psycopg", "psycopg-async": "psycopg", "asyncpg": "asyncpg", "pymysql": "pymysql",
            "pytds": "pytds", "pymssql": "pymssql", "pyodbc-msodbc": "pyodbc", "pyodbc-freetds": "pyodbc",
            "mssql-python": "mssql_python"}  # fmt: skip


def url(variant: str, host: str, port: int, *, user: str = "app", password: str = "Secret-pw1",
        database: str = "db") -> str:
    """A tether URL for ``variant``; skips when its driver (or ODBC library) is absent."""
    import_driver(_MODULES[variant])
    where = f"{user}:{password}@{host}:{port}/{database}"
    if variant in ("psycopg", "psycopg-async"):
        return f"postgresql+psycopg://{where}?sslmode=disable"
    if variant == "asyncpg":
        return f"postgresql+asyncpg://{where}?sslmode=disable"
    if variant == "pymysql":
        return f"mysql+pymysql://{where}"
    query = "?encrypt=false"
    if variant in ("pyodbc-msodbc", "mssql-python"):
        library = need_msodbc(msodbc_library())
        if variant == "pyodbc-msodbc":
            query += f"&driver={library}"
    elif variant == "pyodbc-freetds":
        library = freetds_odbc_library()
        if library is None:
            pytest.skip("FreeTDS's ODBC driver is not installed: apt-get install tdsodbc")
        query += f"&driver={library}"
    return f"mssql+{_MODULES[variant]}://{where}{query}"


def warm(dsn: str, *, asynchronous: bool = False) -> None:
    """Import the driver before the clock starts: an import is no part of a login."""
    spec = parse(dsn)
    (load_async_driver if asynchronous else load_driver)(spec.dialect, spec.driver)


def unpooled_login(dsn: str, timeout_s: float) -> float:
    """``tether.connect`` without pooling, which fails: the seconds it took."""
    warm(dsn)
    started = time.monotonic()
    with pytest.raises(tether.ConnectError, match="could not connect to"):
        tether.connect(dsn + ("&" if "?" in dsn else "?") + "pooling=false", login_timeout=timeout_s)
    return time.monotonic() - started


def pooled_login(dsn: str, timeout_s: float, *, asynchronous: bool) -> float:
    """A pool's first open, under connect retry, which fails: with the blocking period
    on, the caller waiting for it gets the connect error as soon as the open gave up."""
    warm(dsn, asynchronous=asynchronous)
    settings: dict[str, Any] = {"min_size": 0, "login_timeout": timeout_s, "blocking_period": "always",
                                "blocking_after": 1, "timeout": 60.0}  # fmt: skip
    if asynchronous:
        async def go() -> float:
            async with tether.AsyncPool(dsn, **settings) as pool:
                started = time.monotonic()
                with pytest.raises(tether.ConnectError, match="could not connect to"):
                    await pool.getconn()
                return time.monotonic() - started

        return asyncio.run(go())
    with tether.Pool(dsn, **settings) as pool:
        started = time.monotonic()
        with pytest.raises(tether.ConnectError, match="could not connect to"):
            pool.getconn()
        return time.monotonic() - started


# -- the login timeout ---------------------------------------------------------------------------


@pytest.mark.parametrize("variant", SYNC)
def test_login_timeout_without_pooling(silent: Silent, variant: str) -> None:
    elapsed = unpooled_login(url(variant, "127.0.0.1", silent.port), LOGIN_S)
    assert elapsed <= bound(LOGIN_S), f"{variant} against a {silent.mode} server: {elapsed:.2f} s"


@pytest.mark.parametrize("variant", ["psycopg", "pymysql", "pytds", "pyodbc-msodbc"])
def test_login_timeout_of_a_pool(silent: Silent, variant: str) -> None:
    elapsed = pooled_login(url(variant, "127.0.0.1", silent.port), LOGIN_S, asynchronous=False)
    assert elapsed <= bound(LOGIN_S), f"{variant} against a {silent.mode} server: {elapsed:.2f} s"


@pytest.mark.parametrize("variant", ASYNC)
def test_login_timeout_of_an_async_pool(silent: Silent, variant: str) -> None:
    elapsed = pooled_login(url(variant, "127.0.0.1", silent.port), LOGIN_S, asynchronous=True)
    assert elapsed <= bound(LOGIN_S), f"{variant} against a {silent.mode} server: {elapsed:.2f} s"


@pytest.mark.parametrize("timeout_s", [0.3, 1.0, 2.0, 3.0])
def test_login_timeout_of_the_report(timeout_s: float) -> None:
    """The reported case, login_timeout=3 (it took 4.5 s), and the small ones where
    libpq's 2 s minimum would show most: psycopg, whose first connection is dropped with
    a sixth of the login timeout left, at most 0.5 s (under libpq's 2 s minimum), and
    whose retry is never answered."""
    server = Silent("drop-first", drop_after=timeout_s - min(timeout_s / 6, 0.5))
    try:
        elapsed = unpooled_login(url("psycopg", "127.0.0.1", server.port), timeout_s)
    finally:
        server.close()
    assert elapsed <= bound(timeout_s), f"login_timeout={timeout_s}: {elapsed:.2f} s"


@pytest.fixture
def blackholed() -> Callable[[Any], contextlib.AbstractContextManager[tuple[str, int]]]:
    """A WAN link in front of a real server that forwards nothing: the TCP connect
    succeeds, the server never hears the login."""

    @contextlib.contextmanager
    def link(server: Any) -> Iterator[tuple[str, int]]:
        with Link(upstream=(server.host, server.port)) as wan:
            wan.blackhole()
            yield wan.listen_address

    return link


@pytest.mark.parametrize("variant", ["psycopg", "asyncpg"])
def test_login_timeout_behind_a_blackholed_link_to_postgresql(
    pg_server: EmbeddedPostgres, blackholed: Any, variant: str
) -> None:
    with blackholed(pg_server) as (host, port):
        dsn = url(variant, host, port, user="postgres", database="postgres")
        elapsed = (unpooled_login(dsn, LOGIN_S) if variant == "psycopg"
                   else pooled_login(dsn, LOGIN_S, asynchronous=True))
    assert elapsed <= bound(LOGIN_S), f"{variant}: {elapsed:.2f} s"


def test_login_timeout_behind_a_blackholed_link_to_mariadb(mariadb: EmbeddedMariaDB, blackholed: Any) -> None:
    with blackholed(mariadb) as (host, port):
        elapsed = unpooled_login(url("pymysql", host, port, user="root", database="test"), LOGIN_S)
    assert elapsed <= bound(LOGIN_S), f"pymysql: {elapsed:.2f} s"


@pytest.mark.parametrize("variant", ["pytds", "pymssql", "pyodbc-msodbc", "pyodbc-freetds", "mssql-python"])
def test_login_timeout_behind_a_blackholed_link_to_the_tds_server(
    tds_server: TdsServer, blackholed: Any, variant: str
) -> None:
    with blackholed(tds_server) as (host, port):
        dsn = url(variant, host, port, user=USER, password=PASSWORD, database="shop")
        elapsed = unpooled_login(dsn, LOGIN_S)
    assert elapsed <= bound(LOGIN_S), f"{variant}: {elapsed:.2f} s"


# -- the acquire timeout during an outage --------------------------------------------------------

ACQUIRE_S = 0.8


@pytest.fixture(params=["blackhole", "refused"])
def outage(request: pytest.FixtureRequest) -> Iterator[int]:
    """A port whose server is unreachable: it never answers, or nothing listens."""
    if request.param == "refused":
        with socket.create_server(("127.0.0.1", 0)) as sock:
            port: int = sock.getsockname()[1]
        yield port  # closed: connections are refused
        return
    server = Silent("blackhole")
    yield server.port
    server.close()


@pytest.mark.parametrize("how", ["Pool(timeout=)", "getconn(timeout=)", "connection(timeout=)"])
def test_acquire_timeout_during_an_outage(outage: int, how: str) -> None:
    dsn = url("psycopg", "127.0.0.1", outage)
    warm(dsn)
    pool_timeout = ACQUIRE_S if how == "Pool(timeout=)" else 30.0
    asked = None if how == "Pool(timeout=)" else ACQUIRE_S
    with tether.Pool(dsn, min_size=1, timeout=pool_timeout, login_timeout=5.0) as pool:
        for _ in range(2):  # the first waits with the first open, the second during the outage
            started = time.monotonic()
            with pytest.raises(tether.PoolTimeout):
                if how == "connection(timeout=)":
                    with pool.connection(timeout=asked):
                        pass
                else:
                    pool.getconn(timeout=asked)
            elapsed = time.monotonic() - started
            assert elapsed <= bound(ACQUIRE_S), f"{how}: {elapsed:.2f} s"


@pytest.mark.parametrize("how", ["AsyncPool(timeout=)", "getconn(timeout=)", "connection(timeout=)"])
def test_async_acquire_timeout_during_an_outage(outage: int, how: str) -> None:
    dsn = url("asyncpg", "127.0.0.1", outage)
    warm(dsn, asynchronous=True)
    pool_timeout = ACQUIRE_S if how == "AsyncPool(timeout=)" else 30.0
    asked = None if how == "AsyncPool(timeout=)" else ACQUIRE_S

    async def go() -> list[float]:
        times = []
        pool = tether.AsyncPool(dsn, min_size=1, timeout=pool_timeout, login_timeout=5.0)
        await pool.open()
        try:
            for _ in range(2):
                started = time.monotonic()
                with pytest.raises(tether.PoolTimeout):
                    if how == "connection(timeout=)":
                        async with pool.connection(timeout=asked):
                            pass
                    else:
                        await pool.getconn(timeout=asked)
                times.append(time.monotonic() - started)
        finally:  # close() would give the open in flight its 5 s login timeout: cancel it
            await pool.close(timeout=0)
        return times

    for elapsed in asyncio.run(go()):
        assert elapsed <= bound(ACQUIRE_S), f"{how}: {elapsed:.2f} s"


# -- the deadline keeper itself --------------------------------------------------------------------


def test_a_call_given_up_on_hands_what_it_returns_late_to_be_closed() -> None:
    closed: list[object] = []
    went = threading.Event()
    result = object()

    def slow() -> object:
        time.sleep(0.3)
        return result

    def late(value: object) -> None:
        closed.append(value)
        went.set()

    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"login not done within 0\.05 s"):
        call_within(0.05, slow, late=late, what="login")
    assert time.monotonic() - started <= bound(0.05)
    assert went.wait(5)
    assert closed == [result]


def test_a_call_within_its_deadline_returns_or_raises_as_it_did() -> None:
    never: list[object] = []
    assert call_within(5, lambda: 42, late=never.append, what="login") == 42
    with pytest.raises(ZeroDivisionError):
        call_within(5, lambda: 1 // 0, late=never.append, what="login")
    assert never == []


def test_an_awaited_call_given_up_on_hands_what_it_returns_late_to_be_closed() -> None:
    async def go() -> list[object]:
        closed: list[object] = []
        result = object()

        async def stubborn() -> object:  # finishes even when cancelled, as a driver may
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                await asyncio.sleep(0.1)
            return result

        async def late(value: object) -> None:
            closed.append(value)

        started = time.monotonic()
        with pytest.raises(TimeoutError, match=r"login not done within 0\.05 s"):
            await acall_within(0.05, stubborn, late=late, what="login")
        assert time.monotonic() - started <= bound(0.05)
        await async_wait_until(lambda: closed, what="the late result handed to late()")
        assert closed == [result]
        assert await acall_within(5, _answer, late=late, what="login") == 42
        return closed

    assert len(asyncio.run(go())) == 1


async def _answer() -> int:
    return 42
