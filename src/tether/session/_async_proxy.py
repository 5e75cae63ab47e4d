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

from ..sql import PLAIN, TxStatus
from ._async_recovery import recover_async
from ._log import SessionLog
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
    # idle resiliency
    async def reopen(self, conn: AsyncConnection) -> Slot: ...
    def swap(self, conn: AsyncConnection, new: Slot, *, elapsed_s: float, replayed: str) -> None: ...
    async def drop(self, new: Slot) -> None: ...
    def lost(self, conn: AsyncConnection) -> None: ...


class AsyncConnection(Tracking):
    """A database connection borrowed from a ``tether.AsyncPool``."""

    # Attributes go straight into __dict__: ``__setattr__`` forwards to the driver.
    _slot: Slot | None
    _raw: Any
    _owner: AsyncOwner
    _dialect: Dialect
    _driver: AsyncDriver

    def __init__(
        self,
        owner: AsyncOwner,
        slot: Slot,
        dialect: Dialect,
        driver: AsyncDriver,
        log: SessionLog | None = None,
    ):
        attrs = self.__dict__
        attrs["_owner"] = owner
        attrs["_slot"] = slot
        attrs["_raw"] = slot.raw
        attrs["_dialect"] = dialect
        attrs["_driver"] = driver
        if log is not None:
            attrs["_log"] = log

    # -- statements --------------------------------------------------------------------------

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        """psycopg: a noted ``AsyncCursor``; asyncpg: its ``cursor(query, ...)``, noted."""
        raw = self.raw
        if self._driver.returns_cursors:
            name = kwargs.get("name") or (args[0] if args and isinstance(args[0], str) else None)
            if name and self._log is not None:
                self._log.lose(f"cursor:{name}", f"server-side cursor {name}")
            return AsyncCursor(self, raw.cursor(*args, **kwargs), raw, (args, kwargs), name)
        if args:
            self.note(args[0])
            if self._log is not None:
                self._log.lose("cursor:#", "asyncpg cursor")
        return raw.cursor(*args, **kwargs)

    async def execute(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one statement: psycopg returns its cursor, asyncpg its status string."""
        if self._log is None:
            raw = self.raw
            self.note(sql)
            result = await raw.execute(sql, *args, **kwargs)
            return AsyncCursor(self, result, raw) if self._driver.returns_cursors else result
        raw = await self.ready()
        if self._driver.returns_cursors:
            cursor = AsyncCursor(self, raw.cursor(), raw)
            return await cursor.run(raw, sql, args[0] if args else kwargs.pop("params", None), kwargs)
        return await self.run(raw, raw.execute, sql, args, kwargs)

    async def run(self, raw: Any, method: Callable[..., Any], sql: Any, args: Any, kwargs: Any) -> Any:
        """asyncpg's ``execute``/``fetch``... on ``raw``, with the session log."""
        effects = self.read(sql)
        status = self._driver.tx_status
        before = None if effects is PLAIN else status(raw)
        result = await method(sql, *args, **kwargs)
        self.recorded(effects, args or None, before, status(raw))
        return result

    async def commit(self) -> None:
        if self.__dict__.get("_unit"):
            raise UnitOfWorkError("commit")
        log = self._log
        if log is None:
            await self._driver.commit(self.raw)
            return
        raw = await self.ready()
        failed = self._driver.tx_status(raw) is TxStatus.IN_ERROR
        await self._driver.commit(raw)
        log.end(commit=not failed)

    async def rollback(self) -> None:
        if self.__dict__.get("_unit"):
            raise UnitOfWorkError("rollback")
        log = self._log
        if log is None:
            await self._driver.rollback(self.raw)
            return
        await self._driver.rollback(await self.ready(rolling_back=True))
        log.end(commit=False)

    async def ready(self, *, rolling_back: bool = False) -> Any:
        """The driver connection for the next statement: the zero-round-trip check first,
        and a rebuilt session if this one broke while idle (see ``_async_recovery``)."""
        raw = self._raw
        if raw is None:
            raise self._owner.returned_error(self)
        if self._lost is not None:
            raise self._lost
        probe = self._slot.probe  # type: ignore[union-attr]
        if probe is not None and probe.quiet():  # the common case (see Connection.ready)
            return raw
        if (probe is not None and self.idle_break()) or self._driver.tx_status(raw) is TxStatus.BROKEN:
            raw = await recover_async(self, rolling_back=rolling_back)
        return raw

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
            return _noted(self, attr) if self._log is None else _resilient(self, name)
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


def _resilient(conn: AsyncConnection, name: str) -> Callable[..., Any]:
    async def call(sql: Any, *args: Any, **kwargs: Any) -> Any:
        raw = await conn.ready()
        return await conn.run(raw, getattr(raw, name), sql, args, kwargs)

    return call


class AsyncCursor:
    """A psycopg ``AsyncCursor`` whose statements are noted and which dies with its borrow;
    remade on the new connection after a recovered session, as the threaded one is."""

    __slots__ = ("_conn", "_cursor", "_how", "_made_on", "_name")

    def __init__(self, conn: AsyncConnection, cursor: Any, made_on: Any = None,
                 how: tuple[tuple[Any, ...], dict[str, Any]] = ((), {}), name: str | None = None):
        self._conn = conn
        self._cursor = cursor
        self._made_on = made_on
        self._how = how
        self._name = name

    @property
    def raw(self) -> Any:
        return self._cursor

    def _check(self) -> None:
        conn = self._conn
        if conn._raw is None:
            raise conn._owner.returned_error(conn)

    async def execute(self, sql: Any, params: Any = None, **kwargs: Any) -> AsyncCursor:
        conn = self._conn
        if conn._log is None:
            self._check()
            conn.note(sql)
            if params is None:
                await self._cursor.execute(sql, **kwargs)
            else:
                await self._cursor.execute(sql, params, **kwargs)
            return self
        return await self.run(await conn.ready(), sql, params, kwargs)

    async def run(self, raw: Any, sql: Any, params: Any, kwargs: dict[str, Any]) -> AsyncCursor:
        conn = self._conn
        cursor = self._cursor if self._made_on is raw else self._remake(raw)
        effects = conn.read(sql)
        status = conn._driver.tx_status
        before = None if effects is PLAIN else status(raw)
        if params is None:
            await cursor.execute(sql, **kwargs)
        else:
            await cursor.execute(sql, params, **kwargs)
        conn.recorded(effects, params, before, status(raw))
        return self

    async def executemany(self, sql: Any, seq_of_params: Any, **kwargs: Any) -> AsyncCursor:
        conn = self._conn
        log = conn._log
        if log is None:
            self._check()
            conn.note(sql)
            await self._cursor.executemany(sql, seq_of_params, **kwargs)
            return self
        raw = await conn.ready()
        cursor = self._cursor if self._made_on is raw else self._remake(raw)
        conn.note(sql)
        if conn.effects_of(sql, None) is not PLAIN:
            log.lose("", "session statement run by executemany")
        await cursor.executemany(sql, seq_of_params, **kwargs)
        log.plain(conn._driver.tx_status(raw))
        return self

    def _remake(self, raw: Any) -> Any:
        args, kwargs = self._how
        self._cursor = raw.cursor(*args, **kwargs)
        self._made_on = raw
        return self._cursor

    async def fetchone(self) -> Any:
        return await self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> Any:
        return await (self._cursor.fetchmany() if size is None else self._cursor.fetchmany(size))

    async def fetchall(self) -> Any:
        return await self._cursor.fetchall()

    async def close(self) -> None:
        await self._cursor.close()
        log = self._conn._log
        if self._name and log is not None:
            log.find(f"cursor:{self._name}")

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._cursor.__aiter__()  # type: ignore[no-any-return]

    async def __aenter__(self) -> AsyncCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __repr__(self) -> str:
        return f"<tether.AsyncCursor on {self._conn!r}>"
