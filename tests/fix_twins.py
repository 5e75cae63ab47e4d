"""The two halves of a test written once for both pools (``pytest_plugins = ["fix_twins"]``).

A ``test_*_async.py`` module uses the async names (``arun``, ``athread``, ``avalue``,
``adsn``, ``AsyncPool``); ``tools/async_to_sync.py`` generates its threaded twin, where
they become ``run``, ``thread``, ``value``, ``dsn`` and ``Pool``: the same assertions, for
the same code, in both front ends. Each pair below is an async name and its sync partner.

- ``ADRIVERS``/``DRIVERS``: the PostgreSQL drivers each pool runs on, by name; the
  fixtures ``adriver``/``driver`` take each in turn and ``adsn``/``dsn`` are the test
  server's URL for it. ``AsyncPool`` runs psycopg's ``AsyncConnection`` and asyncpg,
  ``Pool`` psycopg.
- ``arun``/``run``: ``body(pool)`` with a fresh pool, closed whatever happened.
- ``athread``/``thread``: blocking test plumbing (an admin connection, a socket wait).
- ``ABackground``/``Background``: a call running beside the test (a task, or a thread),
  whose ``outcome(timeout)`` is its result or its error.
- ``avalue``/``value`` and ``abackend_pid``/``backend_pid``: a query's first value, and the
  session's server process, with any of the pool's drivers.
- ``socket_of``: a borrowed connection's descriptor, for every driver (no pair needed).
- ``link``: a WAN emulator link in front of the test server; ``awan_dsn``/``wan_dsn`` are
  the URL through it for each driver.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from tether import AsyncPool, Pool
from tether.session import AsyncConnection, Connection
from tether.testing import EmbeddedPostgres
from tether.wan import Link

T = TypeVar("T")

ADRIVERS = ("psycopg", "asyncpg")  # AsyncPool's PostgreSQL drivers
DRIVERS = ("psycopg",)  # Pool's


def dsn_for(dsn: str, driver: str) -> str:
    """``dsn`` for ``driver`` (psycopg, sync or async, is the plain URL's default)."""
    return dsn if driver == "psycopg" else dsn.replace("postgresql://", f"postgresql+{driver}://", 1)


@pytest.fixture(params=ADRIVERS)
def adriver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def adsn(pg_dsn: str, adriver: str) -> str:
    """The test server's URL, once for each of ``AsyncPool``'s drivers."""
    return dsn_for(pg_dsn, adriver)


@pytest.fixture
def dsn(pg_dsn: str, driver: str) -> str:
    """The test server's URL, once for each of ``Pool``'s drivers."""
    return dsn_for(pg_dsn, driver)


@pytest.fixture
def link(pg_server: EmbeddedPostgres) -> Iterator[Link]:
    """A WAN emulator link in front of the test server."""
    pg_server.start()
    with Link(upstream=(pg_server.host, pg_server.port)) as made:
        yield made


def _through(link: Link, server: EmbeddedPostgres, driver: str) -> str:
    host, port = link.listen_address
    return dsn_for(f"postgresql://{server.user}@{host}:{port}/{server.database}", driver)


@pytest.fixture
def awan_dsn(link: Link, pg_server: EmbeddedPostgres, adriver: str) -> str:
    """The URL through ``link``, once for each of ``AsyncPool``'s drivers."""
    return _through(link, pg_server, adriver)


@pytest.fixture
def wan_dsn(link: Link, pg_server: EmbeddedPostgres, driver: str) -> str:
    """The URL through ``link``, once for each of ``Pool``'s drivers."""
    return _through(link, pg_server, driver)


def _settings(settings: dict[str, Any]) -> dict[str, Any]:
    settings.setdefault("min_size", 1)
    settings.setdefault("max_size", 4)
    settings.setdefault("timeout", 5.0)
    return settings


def arun(dsn: str, body: Callable[[AsyncPool], Awaitable[T]], *, wait: bool = True, **settings: Any) -> T:
    """``body(pool)`` in ``asyncio.run`` with a fresh ``AsyncPool``, closed whatever happened."""

    async def main() -> T:
        async with AsyncPool(dsn, **_settings(settings)) as pool:
            if wait:
                await pool.wait(10.0)
            return await body(pool)

    return asyncio.run(main())


def run(dsn: str, body: Callable[[Pool], T], *, wait: bool = True, **settings: Any) -> T:
    """``body(pool)`` with a fresh ``Pool``, closed whatever happened."""
    with Pool(dsn, **_settings(settings)) as pool:
        if wait:
            pool.wait(10.0)
        return body(pool)


async def athread(fn: Callable[..., T], *args: Any) -> T:
    """Blocking test plumbing (an admin connection, a socket wait) off the event loop."""
    return await asyncio.to_thread(fn, *args)


def thread(fn: Callable[..., T], *args: Any) -> T:
    return fn(*args)


class ABackground:
    """``fn(*args)`` as a task beside the test."""

    def __init__(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        self._task = asyncio.ensure_future(fn(*args))

    async def outcome(self, timeout: float) -> Any:
        return await asyncio.wait_for(self._task, timeout)


class Background:
    """``fn(*args)`` on a thread beside the test."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self._future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        threading.Thread(target=self._run, args=(fn, args), daemon=True).start()

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            self._future.set_result(fn(*args))
        except BaseException as exc:
            self._future.set_exception(exc)

    def outcome(self, timeout: float) -> Any:
        return self._future.result(timeout)


def _is_asyncpg(conn: AsyncConnection | Connection) -> bool:
    return conn.raw.__class__.__module__.startswith("asyncpg")


async def avalue(conn: AsyncConnection, sql: str) -> Any:
    """The first column of the first row (None without a row), with psycopg or asyncpg."""
    if _is_asyncpg(conn):
        return await conn.fetchval(sql)
    cur = await conn.execute(sql)
    row = await cur.fetchone()
    return None if row is None else row[0]


def value(conn: Connection, sql: str) -> Any:
    """The first column of the first row (None without a row)."""
    row = conn.execute(sql).fetchone()
    return None if row is None else row[0]


async def abackend_pid(conn: AsyncConnection) -> int:
    return int(await avalue(conn, "SELECT pg_backend_pid()"))


def backend_pid(conn: Connection) -> int:
    return int(value(conn, "SELECT pg_backend_pid()"))


def socket_of(conn: AsyncConnection | Connection) -> int:
    """The descriptor of a borrowed connection's socket, with any of the pools' drivers."""
    if _is_asyncpg(conn):
        return int(conn.raw._transport.get_extra_info("socket").fileno())
    return int(conn.raw.pgconn.socket)
