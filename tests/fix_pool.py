"""Pools on the embedded PostgreSQL, closed after each test whatever it did."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tether


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
