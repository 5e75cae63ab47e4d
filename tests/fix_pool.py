"""Pools on the embedded PostgreSQL, closed after each test whatever it did."""

from __future__ import annotations

import select
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tether
from tether.session import lease_of


@pytest.fixture
def make_pool(pg_dsn: str) -> Iterator[Callable[..., tether.Pool]]:
    """``make_pool(min_size=..., ...)``: a pool on the test server, ready (``wait()``ed)."""
    made: list[tether.Pool] = []

    def make(dsn: str | None = None, *, wait: bool = True, **settings: Any) -> tether.Pool:
        settings.setdefault("min_size", 1)
        settings.setdefault("max_size", 4)
        settings.setdefault("timeout", 5.0)
        pool = tether.Pool(dsn or pg_dsn, **settings)
        made.append(pool)
        if wait:
            pool.wait(10.0)
        return pool

    yield make
    for pool in made:
        pool.close()


def backend_pid(conn: tether.Connection) -> int:
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def wait_for_goodbye(conn: Any, timeout: float = 5.0) -> None:
    """Wait until a borrowed connection's socket has something to say (the server's
    goodbye, a FIN or a reset): the event tether's zero-round-trip check acts on."""
    probe = lease_of(conn).probe
    assert probe is not None, "this driver's socket was not found"
    poller = select.poll()
    poller.register(probe.fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    assert poller.poll(int(timeout * 1000)), f"no goodbye on the socket within {timeout} s"
