"""A forked child never uses, closes or says goodbye on a connection its parent opened.

Gunicorn's ``--preload``, Celery and ``multiprocessing`` fork a process whose pools hold
open connections. Before ``tether._fork``, the child borrowed the parent's connection
(same backend pid): under load each process read the other's rows, then "server closed
the connection unexpectedly". Each test forks while the parent runs statements in a
thread, lets parent and child run 2,000 statements each, and checks that every row is
the process's own, that the two never share a backend, and that the parent's
connections (one borrowed at the fork, in the forking thread) still work after the
child used, closed and dropped everything it inherited.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import pytest

import tether
from fix_twins import dsn_for
from tether import AsyncPool, Pool

STATEMENTS = 2000


def fork(child: Callable[[], dict[str, Any]]) -> tuple[int, int]:
    """Run ``child()`` in a forked child; its result comes back as JSON on a pipe.
    Returns (pid, read end)."""
    read, write = os.pipe()
    with warnings.catch_warnings():  # 3.12+ warns that forking a threaded process is risky
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read)
        code = 1
        try:
            result = child()
            os.write(write, json.dumps(result).encode())
            code = 0
        except BaseException:
            os.write(write, json.dumps({"error": traceback.format_exc()}).encode())
        finally:
            os._exit(code)
    os.close(write)
    return pid, read


def child_result(pid: int, read: int, timeout: float = 60.0) -> dict[str, Any]:
    chunks = []
    with os.fdopen(read, "rb") as pipe:
        chunks.append(pipe.read())  # until the child exits (bounded by the test's timeout)
    _, status = os.waitpid(pid, 0)
    output = b"".join(chunks)
    assert os.waitstatus_to_exitcode(status) == 0, output
    result: dict[str, Any] = json.loads(output)
    assert "error" not in result, result["error"]
    return result


class Load(threading.Thread):
    """The parent's statements, in a thread, each checked to return its own marker."""

    def __init__(self, run_one: Callable[[int], tuple[str, int]]):
        super().__init__(daemon=True)
        self.run_one = run_one
        self.started_work = threading.Event()
        self.pids: set[int] = set()
        self.done = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for i in range(STATEMENTS):
                marker, pid = self.run_one(i)
                assert marker == f"parent-{i}", marker
                self.pids.add(pid)
                self.done += 1
                if i == 50:
                    self.started_work.set()
        except BaseException as exc:
            self.error = exc
        finally:
            self.started_work.set()

    def finish(self) -> None:
        self.join(120)
        assert not self.is_alive()
        if self.error is not None:
            raise self.error
        assert self.done == STATEMENTS


SQL = "SELECT %s::text, pg_backend_pid()"


def test_a_forked_child_never_touches_the_parents_connections(pg_dsn: str) -> None:
    with Pool(pg_dsn, min_size=4, max_size=4) as pool:
        pool.wait()
        unpooled = tether.connect(pg_dsn + "?pooling=false")
        unpooled_pid = unpooled.execute("SELECT pg_backend_pid()").fetchone()[0]

        def parent_one(i: int) -> tuple[str, int]:
            with pool.connection() as conn:
                row = conn.execute(SQL, (f"parent-{i}",)).fetchone()
                return row[0], row[1]

        def child() -> dict[str, Any]:
            results: dict[str, Any] = {}
            for name, conn in (("held", held), ("unpooled", unpooled)):
                try:
                    conn.execute("SELECT 1")
                    results[name] = "ran"
                except tether.SessionLost as exc:
                    results[name] = str(exc)
                conn.close()  # nothing reaches the parent's session
            pids = set()
            for i in range(STATEMENTS):
                with pool.connection() as conn:
                    marker, pid = conn.execute(SQL, (f"child-{i}",)).fetchone()
                    assert marker == f"child-{i}", marker
                    pids.add(pid)
            pool.close()
            return {"pids": sorted(pids), **results}

        load = Load(parent_one)
        with pool.connection() as held:
            held_pid = held.execute("SELECT pg_backend_pid()").fetchone()[0]
            load.start()
            load.started_work.wait(30)
            pid, read = fork(child)
            result = child_result(pid, read)
            assert held.execute("SELECT pg_backend_pid()").fetchone()[0] == held_pid
        load.finish()
        assert unpooled.execute("SELECT pg_backend_pid()").fetchone()[0] == unpooled_pid
        unpooled.close()
        for i in range(100):  # the parent's pool after the child closed its own
            assert parent_one(i)[0] == f"parent-{i}"

    assert "opened by process" in result["held"] and "opened by process" in result["unpooled"]
    parent_pids = load.pids | {held_pid, unpooled_pid}
    assert result["pids"] and not set(result["pids"]) & parent_pids


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
def test_a_forked_child_gets_its_own_asyncio_pool(pg_dsn: str, driver: str) -> None:
    # The parent's loop runs in a thread; the child, which has none, runs its own.
    if driver == "asyncpg":
        pytest.importorskip("asyncpg", reason="asyncpg is not installed: pip install 'tether[asyncpg]'")
    dsn = dsn_for(pg_dsn, driver)
    pool = AsyncPool(dsn, min_size=4, max_size=4)
    loop = asyncio.new_event_loop()
    looper = threading.Thread(target=loop.run_forever, daemon=True)
    looper.start()

    def on_loop(make: Callable[[], Any]) -> Any:
        async def call() -> Any:  # made on the loop: AsyncPool's methods need a running loop
            return await make()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(60)

    async def one(i: int, who: str) -> tuple[str, int]:
        async with pool.connection() as conn:
            if driver == "asyncpg":
                row = await conn.fetchrow("SELECT $1::text, pg_backend_pid()", f"{who}-{i}")
            else:
                row = await (await conn.execute(SQL, (f"{who}-{i}",))).fetchone()
            return row[0], row[1]

    def child() -> dict[str, Any]:
        async def main() -> list[int]:
            pids = set()
            for i in range(STATEMENTS):
                marker, pid = await one(i, "child")
                assert marker == f"child-{i}", marker
                pids.add(pid)
            await pool.close()
            return sorted(pids)

        return {"pids": asyncio.run(main())}

    try:
        on_loop(pool.wait)
        load = Load(lambda i: on_loop(lambda: one(i, "parent")))
        load.start()
        load.started_work.wait(30)
        pid, read = fork(child)
        result = child_result(pid, read)
        load.finish()
        for i in range(100):
            assert on_loop(lambda: one(i, "parent"))[0] == f"parent-{i}"  # noqa: B023
    finally:
        on_loop(pool.close)
        loop.call_soon_threadsafe(loop.stop)
        looper.join(10)
        loop.close()
    assert result["pids"] and not set(result["pids"]) & load.pids
