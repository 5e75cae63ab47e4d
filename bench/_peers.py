"""The pools people use today, and tether, behind one borrow/return interface.

Every pool gets the same server and the same size. ``autocommit=False`` is what users get
by default (transaction mode, as PEP 249 and psycopg have it: each block's statements run
in a transaction the block's end commits, or the pool's return rolls back);
``autocommit=True`` shows what each pool adds and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

import tether

Borrow = Callable[[], Any]  # a context manager factory yielding a DB-API connection


@dataclass
class Peer:
    name: str
    borrow: Callable[[], Any]
    close: Callable[[], None]
    opened: Callable[[], int]  # physical connections opened so far
    pool: Any = None  # tether's own pool, for the scenarios only it has


def tether_peer(dsn: str, size: int, autocommit: bool, *, name: str = "tether", **settings: Any) -> Peer:
    pool = tether.Pool(dsn, min_size=size, max_size=size, autocommit=autocommit, **settings)
    pool.wait(30)
    return Peer(name, pool.connection, pool.close, lambda: pool.stats().hard_connects, pool)


def psycopg_pool_peer(dsn: str, size: int, autocommit: bool, *, check: bool) -> Peer:
    from psycopg_pool import ConnectionPool

    pool = ConnectionPool(
        dsn,
        min_size=size,
        max_size=size,
        kwargs={"autocommit": autocommit},
        check=ConnectionPool.check_connection if check else None,
        open=True,
    )
    pool.wait(30)
    name = "psycopg_pool+check" if check else "psycopg_pool"
    return Peer(name, pool.connection, pool.close, lambda: pool.get_stats().get("connections_num", 0))


def sqlalchemy_peer(dsn: str, size: int, autocommit: bool, *, pre_ping: bool) -> Peer:
    import sqlalchemy

    url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sqlalchemy.create_engine(
        url,
        pool_size=size,
        max_overflow=0,
        pool_pre_ping=pre_ping,
        connect_args={"autocommit": autocommit},  # its return rolls back (reset on return)
    )
    opened = [0]

    @sqlalchemy.event.listens_for(engine, "connect")
    def _count(*_: Any) -> None:
        opened[0] += 1

    @contextmanager
    def borrow() -> Iterator[Any]:
        conn = engine.raw_connection()
        try:
            yield conn
        finally:
            conn.close()

    name = "sqlalchemy+pre_ping" if pre_ping else "sqlalchemy"
    return Peer(name, borrow, engine.dispose, lambda: opened[0])


def dbutils_peer(dsn: str, size: int, autocommit: bool) -> Peer:
    from dbutils.pooled_db import PooledDB

    opened = [0]

    def creator() -> Any:
        opened[0] += 1
        return psycopg.connect(dsn, autocommit=autocommit)  # its return rolls back

    creator.threadsafety = 2  # type: ignore[attr-defined]  # psycopg connections are
    pool = PooledDB(creator, mincached=size, maxcached=size, maxconnections=size, blocking=True)

    @contextmanager
    def borrow() -> Iterator[Any]:
        conn = pool.connection()
        try:
            yield conn
        finally:
            conn.close()

    return Peer("dbutils", borrow, pool.close, lambda: opened[0])


def all_peers() -> list[Callable[[str, int, bool], Peer]]:
    """Factories ``(dsn, size, autocommit) -> Peer``, tether first."""
    return [
        tether_peer,
        # what the default command timeout costs a statement: the same pool without one
        lambda dsn, size, ac: tether_peer(dsn, size, ac, name="tether, command_timeout=0", command_timeout=0),
        lambda dsn, size, ac: psycopg_pool_peer(dsn, size, ac, check=False),
        lambda dsn, size, ac: psycopg_pool_peer(dsn, size, ac, check=True),
        lambda dsn, size, ac: sqlalchemy_peer(dsn, size, ac, pre_ping=False),
        lambda dsn, size, ac: sqlalchemy_peer(dsn, size, ac, pre_ping=True),
        dbutils_peer,
    ]
