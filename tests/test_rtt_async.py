"""Round trips of a borrow in transaction mode with ``tether.AsyncPool`` on psycopg's
``AsyncConnection``, counted on the wire (``fix_turns``): the same pipeline as the threaded
pool's (``test_rtt_begin.py``), through the async source of the proxy and the driver."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg
import pytest

import tether
from fix_turns import TurnCounter, counting, texts
from tether.session import _proxy_async, lease_of
from tether.testing import EmbeddedPostgres


@pytest.fixture(autouse=True)
def far(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every server counts as far (as one behind a WAN link): loopback answers too fast."""
    monkeypatch.setattr(_proxy_async, "FAR_S", 0.0)


@pytest.fixture
def wire(pg_server: EmbeddedPostgres) -> Iterator[tuple[TurnCounter, str]]:
    with counting(pg_server) as pair:
        yield pair


@pytest.fixture
def table(pg_dsn: str) -> Iterator[str]:
    name = "rtt_async_rows"
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f"DROP TABLE IF EXISTS {name}")
        admin.execute(f"CREATE TABLE {name} (x int)")
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f"DROP TABLE IF EXISTS {name}")


def with_pool(dsn: str, body: Callable[[tether.AsyncPool], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with tether.AsyncPool(dsn, min_size=1, max_size=1, timeout=5.0) as pool:
            await pool.wait(10.0)
            async with pool.connection() as conn:  # a first transaction measures the round trip
                await conn.execute("SELECT 1")
            return await body(pool)

    return asyncio.run(main())


def test_a_read_is_one_round_trip_and_a_write_two(wire: tuple[TurnCounter, str], table: str) -> None:
    counter, dsn = wire

    async def body(pool: tether.AsyncPool) -> list[list[list[str]]]:
        seen = []
        for sql in ("SELECT 41 + 1", f"INSERT INTO {table} VALUES (1)"):
            await asyncio.to_thread(counter.settle)
            counter.since()
            async with pool.connection() as conn:
                await conn.execute(sql)
            seen.append(counter.turns())
        return seen

    read, write = with_pool(dsn, body)
    assert len(read) == 1 and texts(read[0])[:2] == ["BEGIN", "SELECT 41 + 1"]
    assert len(write) == 2 and texts(write[1]) == ["COMMIT"]


def test_errors_and_cursors_keep_their_meaning(wire: tuple[TurnCounter, str], table: str) -> None:
    async def body(pool: tether.AsyncPool) -> None:
        async with pool.connection() as conn:
            with pytest.raises(psycopg.errors.UndefinedTable):
                await conn.execute("SELECT * FROM rtt_no_such_table")
            assert conn.raw.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
            await conn.rollback()
            cur = conn.cursor()
            await cur.execute("SELECT %s::int", (3,))
            assert await cur.fetchone() == (3,)
        async with pool.connection() as conn:
            await conn.cursor().executemany(f"INSERT INTO {table} VALUES (%s)", [(1,), (2,)])
        async with pool.connection() as conn, conn.cursor(name="rtt_named") as named:
            await named.execute(f"SELECT x FROM {table} ORDER BY x")
            assert await named.fetchall() == [(1,), (2,)]

    with_pool(wire[1], body)


def test_a_unit_of_work_that_writes_costs_two_round_trips(wire: tuple[TurnCounter, str], table: str) -> None:
    counter, dsn = wire

    async def unit(conn: tether.AsyncConnection) -> Any:
        await conn.execute(f"INSERT INTO {table} VALUES (%s)", (5,))
        return lease_of(conn).marker

    async def body(pool: tether.AsyncPool) -> Any:
        await asyncio.to_thread(counter.settle)
        counter.since()
        return await pool.transaction(unit), counter.turns()

    marker, turns = with_pool(dsn, body)
    assert len(turns) == 2 and texts(turns[1]) == ["COMMIT"]
    assert texts(turns[0])[1] == "SELECT txid_current(), pg_backend_pid()"
    assert isinstance(marker, tuple) and marker[0] > 0


def test_a_first_statement_past_its_command_timeout_is_cancelled(wire: tuple[TurnCounter, str]) -> None:
    async def body(pool: tether.AsyncPool) -> None:
        async with pool.connection() as conn:
            with pytest.raises(tether.CommandTimeout):
                await conn.execute("SELECT pg_sleep(30)", command_timeout=0.2)
            assert conn.raw.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
            await conn.rollback()
            assert await (await conn.execute("SELECT 7")).fetchone() == (7,)
        async with pool.connection() as conn:  # the same connection, clean
            assert await (await conn.execute("SELECT 8")).fetchone() == (8,)

    with_pool(wire[1], body)


def test_a_task_cancelled_in_its_first_statement_leaves_no_broken_session(
    wire: tuple[TurnCounter, str],
) -> None:
    async def body(pool: tether.AsyncPool) -> None:
        async def sleeper() -> None:
            async with pool.connection() as conn:
                await conn.execute("SELECT pg_sleep(30)")

        task = asyncio.create_task(sleeper())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with pool.connection(timeout=10) as conn:  # the one connection, usable
            assert await (await conn.execute("SELECT 9")).fetchone() == (9,)
            assert conn.raw.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS

    with_pool(wire[1], body)


def test_asyncio_pipelines_even_a_near_server_without_the_question(
    wire: tuple[TurnCounter, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    counter, dsn = wire

    async def body(pool: tether.AsyncPool) -> list[list[list[str]]]:
        monkeypatch.setattr(_proxy_async, "FAR_S", 3600.0)  # every round trip is short of it
        seen = []
        for _ in range(2):  # the first still asks (the last one measured was far)
            await asyncio.to_thread(counter.settle)
            counter.since()
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")
            seen.append(counter.turns())
        return seen

    _, near = with_pool(dsn, body)
    assert [texts(t) for t in near] == [["BEGIN", "SELECT 1"], ["COMMIT"]]  # one pipeline, no question
