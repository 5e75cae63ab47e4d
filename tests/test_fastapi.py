"""The FastAPI pattern of docs/integrations/fastapi.md against the embedded PostgreSQL:
an ``AsyncPool`` opened in the lifespan, a connection per request through a dependency,
writes as ``pool.transaction``, and the server's sessions killed between requests."""

# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at
# run time, and they name the dependencies defined inside make_app.
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest

import tether
from tether.testing import EmbeddedPostgres

fastapi = pytest.importorskip("fastapi", reason="FastAPI is missing: pip install 'tether[fastapi]'")
testclient = pytest.importorskip("fastapi.testclient", reason="FastAPI's TestClient needs httpx2: "
                                 "pip install 'tether[fastapi]'")


def make_app(dsn: str, *, timeout: float = 5.0) -> Any:
    from fastapi import Depends, FastAPI, HTTPException, Request
    from fastapi.responses import JSONResponse

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        async with tether.AsyncPool(dsn, min_size=2, max_size=5, timeout=timeout, name="api") as pool:
            async with pool.connection() as conn:
                await conn.execute("DROP TABLE IF EXISTS api_accounts")
                await conn.execute("CREATE TABLE api_accounts (id int PRIMARY KEY, balance int)")
                await conn.execute("INSERT INTO api_accounts VALUES (1, 100), (2, 0)")
            app.state.pool = pool
            yield

    app = FastAPI(lifespan=lifespan)

    def get_pool(request: Request) -> tether.AsyncPool:
        pool: tether.AsyncPool = request.app.state.pool
        return pool

    async def get_connection(pool: Annotated[tether.AsyncPool, Depends(get_pool)]) -> Any:
        async with pool.connection() as conn:
            yield conn

    @app.get("/accounts/{account_id}")
    async def read_account(account_id: int,
                           conn: Annotated[tether.AsyncConnection, Depends(get_connection)]) -> Any:
        cursor = await conn.execute("SELECT balance, pg_backend_pid() FROM api_accounts WHERE id = %s",
                                    (account_id,))
        row = await cursor.fetchone()
        if row is None:
            raise HTTPException(status_code=404)
        return {"id": account_id, "balance": row[0], "backend": row[1]}

    @app.post("/transfers")
    async def transfer(src: int, dst: int, amount: int,
                       pool: Annotated[tether.AsyncPool, Depends(get_pool)]) -> Any:
        async def move(conn: Any) -> None:
            await conn.execute("UPDATE api_accounts SET balance = balance - %s WHERE id = %s", (amount, src))
            await conn.execute("UPDATE api_accounts SET balance = balance + %s WHERE id = %s", (amount, dst))

        await pool.transaction(move, retry=tether.Retry.exponential(attempts=5, deadline_s=10))
        return {"moved": amount}

    @app.get("/stats")
    async def stats(pool: Annotated[tether.AsyncPool, Depends(get_pool)]) -> Any:
        s = pool.stats()
        return {"busy": s.busy, "idle": s.idle, "hard_connects": s.hard_connects}

    @app.exception_handler(tether.PoolTimeout)
    async def pool_timeout(request: Request, exc: tether.PoolTimeout) -> Any:
        return JSONResponse({"detail": "database unavailable"}, status_code=503, headers={"Retry-After": "5"})

    return app


@pytest.fixture
def client(pg_admin: EmbeddedPostgres) -> Iterator[Any]:
    with testclient.TestClient(make_app(pg_admin.dsn)) as client:  # runs the lifespan
        yield client


def test_reads_writes_and_404(client: Any) -> None:
    assert client.get("/accounts/1").json()["balance"] == 100
    assert client.post("/transfers", params={"src": 1, "dst": 2, "amount": 30}).json() == {"moved": 30}
    assert client.get("/accounts/2").json()["balance"] == 30
    assert client.get("/accounts/9").status_code == 404


def test_idle_kill_between_requests_costs_no_error(client: Any, pg_admin: EmbeddedPostgres) -> None:
    statuses, backends = [], set()
    for round_ in range(10):
        for _ in range(3):
            response = client.get("/accounts/1")
            statuses.append(response.status_code)
            backends.add(response.json().get("backend"))
        if round_ % 2:
            moved = client.post("/transfers", params={"src": 1, "dst": 2, "amount": 1})
            statuses.append(moved.status_code)
        assert pg_admin.terminate_backends() >= 1  # every idle session of the pool, between requests
    assert statuses.count(200) == len(statuses), statuses  # 0 errors seen by the clients
    assert len(backends) >= 10  # new server sessions after each kill
    assert client.get("/accounts/2").json()["balance"] == 5  # each transfer applied once
    for _ in range(100):  # a connection is given back as its request ends: at most ~1 s
        stats = client.get("/stats").json()
        if stats["busy"] == 0:
            break
        time.sleep(0.01)
    assert stats["busy"] == 0, stats  # nothing leaked


def test_outage_is_a_503(pg_admin: EmbeddedPostgres) -> None:
    with testclient.TestClient(make_app(pg_admin.dsn, timeout=1.0)) as client:
        assert client.get("/accounts/1").status_code == 200
        pg_admin.stop()
        try:
            started = client.get("/accounts/1")  # waits out the outage up to the pool's timeout
        finally:
            pg_admin.start()
        assert started.status_code == 503, started.text
        assert started.headers["retry-after"] == "5"
