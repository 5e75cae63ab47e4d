"""The asyncio connection proxy: a borrowed driver connection, watched.

The twin of ``_proxy.Connection`` with the same tracking (``Tracking``, one copy): it
refuses use after the connection went back to its pool, notes statements that change
the session, and remembers client-side settings for the pool to put back. psycopg's
``AsyncConnection`` gets PEP 249-style cursors; asyncpg is not PEP 249, so its own API
(``fetch``, ``fetchrow``, ``fetchval``, ``transaction()``, ...) passes through, noted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Protocol

from ._proxy import UnitOfWorkError
from ._tracking import Tracking, remembered_setter

if TYPE_CHECKING:
    from ..dialects import Dialect
    from ..drivers._async_base import AsyncDriver
    from ..pool._state import Slot


class AsyncOwner(Protocol):
    """Where an async proxy goes back to: an ``AsyncPool``."""

    async def give_back(self, conn: AsyncConnection, *, commit: bool) -> None: ...
    def reclaim(self, conn: AsyncConnection) -> None: ...
    def returned_error(self, conn: AsyncConnection) -> Exception: ...
    def describe(self, conn: AsyncConnection) -> str: ...


class AsyncConnection(Tracking):
    """A database connection borrowed from a ``tether.AsyncPool``."""

    # Attributes go straight into __dict__: ``__setattr__`` forwards to the driver.
    _slot: Slot | None
    _raw: Any
    _owner: AsyncOwner
    _dialect: Dialect
    _driver: AsyncDriver

    def __init__(self, owner: AsyncOwner, slot: Slot, dialect: Dialect, driver: AsyncDriver):
        attrs = self.__dict__
        attrs["_owner"] = owner
        attrs["_slot"] = slot
        attrs["_raw"] = slot.raw
        attrs["_dialect"] = dialect
        attrs["_driver"] = driver

    # -- statements --------------------------------------------------------------------------

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        """psycopg: a noted ``AsyncCursor``; asyncpg: its ``cursor(query, ...)``, noted."""
        raw = self.raw
        if self._driver.returns_cursors:
            return AsyncCursor(self, raw.cursor(*args, **kwargs))
        if args:
            self.note(args[0])
        return raw.cursor(*args, **kwargs)

    async def execute(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one statement: psycopg returns its cursor, asyncpg its status string."""
        raw = self.raw
        self.note(sql)
        result = await raw.execute(sql, *args, **kwargs)
        return AsyncCursor(self, result) if self._driver.returns_cursors else result

    async def commit(self) -> None:
        if self.__dict__.get("_unit"):
            raise UnitOfWorkError("commit")
        await self._driver.commit(self.raw)

    async def rollback(self) -> None:
        if self.__dict__.get("_unit"):
            raise UnitOfWorkError("rollback")
        await self._driver.rollback(self.raw)

    async def close(self) -> None:
        """Return the connection to its pool; an open transaction is rolled back."""
        if self._slot is not None:
            await self._owner.give_back(self, commit=False)

    async def __aenter__(self) -> AsyncConnection:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._slot is not None:
            await self._owner.give_back(self, commit=exc_type is None)

    # -- pass-through ------------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        raw = self.raw
        attr = getattr(raw, name)
        if name in self._driver.sql_methods:  # asyncpg's fetch(sql, ...) and friends
            return _noted(self, attr)
        return remembered_setter(self, raw, name, attr)  # psycopg's set_autocommit(...)

    def __setattr__(self, name: str, value: Any) -> None:
        # Plain client-side attributes (row_factory, prepare_threshold...): set on the
        # driver's connection, the old value kept for the pool to restore.
        raw = self.raw
        self.remember(name, getattr(raw, name))
        setattr(raw, name, value)

    def __del__(self) -> None:
        if self.__dict__.get("_slot") is not None:
            self._owner.reclaim(self)

    def __repr__(self) -> str:
        return f"<tether.AsyncConnection {self._owner.describe(self)}>"


def _noted(conn: AsyncConnection, method: Callable[..., Any]) -> Callable[..., Any]:
    def call(sql: Any, *args: Any, **kwargs: Any) -> Any:
        if conn._raw is None:
            raise conn._owner.returned_error(conn)
        conn.note(sql)
        return method(sql, *args, **kwargs)

    return call


class AsyncCursor:
    """A psycopg ``AsyncCursor`` whose statements are noted and which dies with its borrow."""

    __slots__ = ("_conn", "_cursor")

    def __init__(self, conn: AsyncConnection, cursor: Any):
        self._conn = conn
        self._cursor = cursor

    @property
    def raw(self) -> Any:
        return self._cursor

    def _check(self) -> None:
        conn = self._conn
        if conn._raw is None:
            raise conn._owner.returned_error(conn)

    async def execute(self, sql: Any, params: Any = None, **kwargs: Any) -> AsyncCursor:
        self._check()
        self._conn.note(sql)
        if params is None:
            await self._cursor.execute(sql, **kwargs)
        else:
            await self._cursor.execute(sql, params, **kwargs)
        return self

    async def executemany(self, sql: Any, seq_of_params: Any, **kwargs: Any) -> AsyncCursor:
        self._check()
        self._conn.note(sql)
        await self._cursor.executemany(sql, seq_of_params, **kwargs)
        return self

    async def fetchone(self) -> Any:
        return await self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> Any:
        return await (self._cursor.fetchmany() if size is None else self._cursor.fetchmany(size))

    async def fetchall(self) -> Any:
        return await self._cursor.fetchall()

    async def close(self) -> None:
        await self._cursor.close()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._cursor.__aiter__()  # type: ignore[no-any-return]

    async def __aenter__(self) -> AsyncCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._cursor.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __repr__(self) -> str:
        return f"<tether.AsyncCursor on {self._conn!r}>"
