"""asyncpg (``postgresql+asyncpg://``), for ``tether.AsyncPool``.

asyncpg is not PEP 249: the proxy passes its own API through (``fetch``, ``fetchrow``,
``fetchval``, ``executemany``, ``prepare``, ``cursor``, ``transaction()``), noting the SQL.
It never opens a transaction by itself, so ``autocommit`` has nothing to change.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

from ..dialects.postgresql import dialect as postgresql
from ..vocab import TxStatus
from ._base_async import AsyncDriver
from ._pg_cancel import cancel_request

if TYPE_CHECKING:
    from ..dsn import ConnectionSpec

_CLOSE_TIMEOUT_S = 2.0  # a graceful Terminate; past this the transport is aborted
# The server's goodbye: SQLSTATE class 57P (admin shutdown, crash shutdown, cannot connect
# now, database dropped, idle session timeout), a FATAL that ends the session.
_GOODBYE = "57P"


class Asyncpg(AsyncDriver):
    name = "asyncpg"
    dialect = "postgresql"
    # tether's errors are bound to these: a connection problem, and misuse.
    module = types.SimpleNamespace(
        OperationalError=asyncpg.PostgresConnectionError, InterfaceError=asyncpg.InterfaceError
    )
    returns_cursors = False
    reads_ahead = True
    sql_methods = frozenset(
        {"fetch", "fetchrow", "fetchval", "fetchmany", "executemany", "prepare", "cursor"}
    )
    cancels = True

    async def connect(self, spec: ConnectionSpec, *, timeout_s: float, autocommit: bool | None,
                      extra: dict[str, Any] | None = None) -> Any:
        settings = {"application_name": spec.application_name} if spec.application_name else None
        password = spec.password.reveal() if spec.password is not None else None
        ssl = dict(spec.options).get("sslmode")
        kwargs: dict[str, Any] = dict(
            host=spec.host,
            port=spec.port,
            user=spec.user,
            password=password,
            database=spec.database,
            timeout=timeout_s,
            ssl=ssl,
            server_settings=settings,
            # Behind transaction pooling a prepared statement stays on a server connection.
            statement_cache_size=0 if spec.transaction_pooled else 100,
        )
        return await asyncpg.connect(**{**kwargs, **(extra or {})})

    def cancel(self, raw: Any, cursor: Any, timeout_s: float) -> None:
        # asyncpg's own cancel is a task on the connection's loop; the watchdog's thread
        # sends the same 16 bytes itself, with the backend key asyncpg read at login.
        protocol = raw._protocol
        cancel_request(raw._addr, protocol.backend_pid, protocol.backend_secret, timeout_s)

    def socket_fd(self, raw: Any) -> int | None:
        # asyncpg keeps its socket inside an asyncio transport; the transport hands it
        # out as ``extra_info("socket")`` (a wrapper that exposes fileno() and options).
        # The probe only polls and peeks, so it never disturbs the transport's reads.
        transport = getattr(raw, "_transport", None)
        sock = transport.get_extra_info("socket") if transport is not None else None
        return None if sock is None else int(sock.fileno())

    def is_closed(self, raw: Any) -> bool:
        # The transport reads everything as it arrives: a FIN or the server's goodbye is
        # consumed by asyncpg (which then closes, and frees the fd number for reuse), so
        # the pool asks asyncpg before it polls the socket.
        closed: bool = raw.is_closed()
        return closed

    def tx_status(self, raw: Any) -> TxStatus:
        if raw.is_closed():
            return TxStatus.BROKEN
        if raw._protocol._is_cancelling():  # a query was cancelled mid-flight
            return TxStatus.ACTIVE
        return TxStatus.IN_TRANSACTION if raw.is_in_transaction() else TxStatus.IDLE

    async def ping(self, raw: Any, sql: str, *, timeout_s: float) -> bool:
        try:
            await raw.fetchval(sql, timeout=timeout_s)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
            return False
        return True

    async def execute(self, raw: Any, sql: str) -> None:
        await raw.execute(sql)

    async def commit(self, raw: Any) -> None:
        await raw.execute("COMMIT")
        raw._top_xact = None  # a transaction() the borrower started and never finished

    async def rollback(self, raw: Any) -> None:
        await raw.execute("ROLLBACK")
        raw._top_xact = None

    async def restore(self, raw: Any, saved: dict[str, Any]) -> None:
        for name, value in saved.items():
            setattr(raw, name, value)

    async def reset(self, raw: Any, changes: tuple[str, ...]) -> bool:
        for sql in postgresql.reset_sql:
            await raw.execute(sql)
        self.forget_session(raw)
        return True

    def begin_refused(self, exc: BaseException) -> bool:
        # SQLAlchemy's adapter starts its transaction (``Transaction.start()``: BEGIN, alone)
        # before it sends the statement. asyncpg reports a goodbye that answered a request
        # as "connection was closed in the middle of operation", the server's error its cause.
        # A goodbye that came in while idle, its connection's end not read yet, leaves
        # asyncpg's protocol consuming an error: it refuses the BEGIN, unsent, with an
        # InternalClientError (which no server sends: the connection is unusable).
        if isinstance(exc, asyncpg.InternalClientError):
            return True
        seen: BaseException | None = exc
        for _ in range(3):  # the error, its cause, the cause's: bounded
            if seen is None:
                return False
            sqlstate = getattr(seen, "sqlstate", None)
            if isinstance(sqlstate, str) and sqlstate.startswith(_GOODBYE):
                return True
            seen = seen.__cause__
        return False

    def forget_session(self, raw: Any) -> None:
        # DISCARD ALL deallocated asyncpg's prepared statements on the server: drop its
        # cache (it closes the old names lazily; closing a missing one is no error), and
        # the listeners UNLISTEN * left with nothing to hear.
        raw._drop_local_statement_cache()
        raw._listeners.clear()
        # Statements prepared before it are gone too: asyncpg refuses them from now on, as
        # after its own pool's release (SQLAlchemy's adapter keeps them across borrows).
        raw._pool_release_ctr += 1

    async def close(self, raw: Any) -> None:
        try:
            await raw.close(timeout=_CLOSE_TIMEOUT_S)  # aborts the transport itself on failure
        except Exception:
            raw.terminate()
        except BaseException:
            raw.terminate()
            raise


driver = Asyncpg()
