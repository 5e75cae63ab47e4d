"""Driver objects made from a borrowed connection, tied to that borrow.

A cursor's ``stream`` or ``copy``, psycopg's ``transaction()`` and ``pipeline()``,
asyncpg's transactions, prepared statements and cursors: each keeps the driver's
connection, and used after the borrow ended it would run on the next borrower's session.
``Tied`` stands in for such an object and checks the borrow before every use (attribute,
call, ``with``, ``async with``, iteration, ``await``); what those uses make is tied in
turn, and plain data (rows, numbers, text) passes through as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Protocol

from ..vocab import TxStatus

# The calls whose results keep the driver's connection: their results are tied.
MAKERS = frozenset({"copy", "cursor", "pipeline", "prepare", "stream", "transaction"})
_DATA = (type(None), bool, int, float, str, bytes, bytearray, memoryview, list, tuple, dict)


class Borrow(Protocol):
    """A connection proxy: its ``_drive()`` is the driver's connection while the borrow
    lasts, for a driver object about to run something the proxy does not see."""

    def _drive(self) -> Any: ...


def tie(borrow: Borrow, value: Any) -> Any:
    """``value``, or a ``Tied`` for it when it can reach the driver's connection."""
    return value if isinstance(value, _DATA) else Tied(borrow, value)


def checked(borrow: Borrow, method: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``method`` refusing once the borrow ended; a maker's result is tied."""
    makes = name in MAKERS

    def call(*args: Any, **kwargs: Any) -> Any:
        borrow._drive()
        result = method(*args, **kwargs)
        return tie(borrow, result) if makes else result

    return call


class LateTransaction:
    """asyncpg's ``conn.transaction(...)`` through the proxy: asyncpg binds a transaction
    to the connection it was made on, so the driver's is made when this one starts, after
    the proxy's check (a session that broke while idle is rebuilt first, as before any
    statement), and tied to the borrow."""

    __slots__ = ("_borrow", "_kwargs", "_tx")

    def __init__(self, borrow: Any, **kwargs: Any):
        self._borrow = borrow
        self._kwargs = kwargs
        self._tx: Any = None

    async def _start(self, raw: Any) -> None:
        self._tx = tie(self._borrow, raw.transaction(**self._kwargs))
        await self._tx.start()

    async def _enter(self, raw: Any) -> None:
        self._tx = tie(self._borrow, raw.transaction(**self._kwargs))
        await self._tx.__aenter__()

    async def start(self) -> None:
        await self._borrow._begin(self._start)  # the proxy's: a BEGIN the goodbye answered goes again

    async def __aenter__(self) -> LateTransaction:
        await self._borrow._begin(self._enter)
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        try:
            return await self._tx.__aexit__(*exc)
        except Exception:
            if exc[0] is None or not self._gone():
                raise
            return None  # the rollback after the block's error: done by the session's end
        finally:
            self._ended(commit=exc[0] is None)

    async def commit(self) -> None:
        await self._tx.commit()
        self._ended(commit=True)

    async def rollback(self) -> None:
        try:
            await self._tx.rollback()
        except Exception:
            if not self._gone():
                raise
        finally:
            self._ended(commit=False)

    def _gone(self) -> bool:
        """A ROLLBACK that failed on a session that ended: rolled back all the same (the
        server rolls back what a dead session left open; see the proxy's ``ended``)."""
        lease = self._borrow._lease
        return bool(lease.driver.tx_status(lease.raw) is TxStatus.BROKEN)

    def _ended(self, *, commit: bool) -> None:
        """The session log learns the transaction ended, as from the proxy's commit()."""
        self._borrow._settled()
        log = self._borrow._lease.log
        if log is not None:
            log.end(commit=commit)

    def __getattr__(self, name: str) -> Any:  # is_active(), ...
        if self._tx is None:
            raise AttributeError(f"{name}: the transaction has not started")
        return getattr(self._tx, name)


class Tied:
    """A driver object that refuses (``ConnectionReturned``) once its borrow ended."""

    __slots__ = ("_borrow", "_obj")

    def __init__(self, borrow: Borrow, obj: Any):
        self._borrow = borrow
        self._obj = obj

    def _own(self) -> Any:
        self._borrow._drive()
        return self._obj

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._own(), name)
        return checked(self._borrow, attr, name) if callable(attr) else attr

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return tie(self._borrow, self._own()(*args, **kwargs))

    def __enter__(self) -> Any:
        entered = self._own().__enter__()
        return self if entered is self._obj else tie(self._borrow, entered)

    def __exit__(self, *exc: Any) -> Any:
        return self._own().__exit__(*exc)

    async def __aenter__(self) -> Any:
        entered = await self._own().__aenter__()
        return self if entered is self._obj else tie(self._borrow, entered)

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._own().__aexit__(*exc)

    def __iter__(self) -> Tied:
        return Tied(self._borrow, iter(self._own()))

    def __next__(self) -> Any:
        return next(self._own())

    def __aiter__(self) -> Tied:
        return Tied(self._borrow, self._own().__aiter__())

    async def __anext__(self) -> Any:
        return await self._own().__anext__()

    def __await__(self) -> Generator[Any, None, Any]:
        result = yield from self._own().__await__()
        return tie(self._borrow, result)

    def __repr__(self) -> str:
        return f"<tied {self._obj!r}>"
