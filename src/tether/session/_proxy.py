"""tether's PEP 249 connection and cursor: a borrowed driver connection, watched.

The proxy does three things the driver cannot: it refuses to be used after it went back
to its pool (a stale reference never reaches the next borrower's session); it notes
which statements change the session, so the pool resets only when something changed;
and it remembers client-side settings the borrower changed (``autocommit``,
``isolation_level``, ...) so the pool can put them back. Everything else goes straight
to the driver's connection, which stays reachable as ``conn.raw``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ..errors import Error
from ._tracking import Tracking, remembered_setter

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..dialects import Dialect
    from ..pool._state import Slot


class Owner(Protocol):
    """Where a proxy goes back to: a pool, or nothing for an unpooled connection."""

    def give_back(self, conn: Connection, *, commit: bool) -> None: ...
    def reclaim(self, conn: Connection) -> None: ...
    def returned_error(self, conn: Connection) -> Exception: ...
    def describe(self, conn: Connection) -> str: ...


class UnitOfWorkError(Error):
    """``commit()`` or ``rollback()`` called inside ``pool.transaction``'s function."""

    def __init__(self, what: str):
        super().__init__(
            f"{what}() inside pool.transaction(): the pool commits when the function returns "
            "and rolls back when it raises, so that a lost COMMIT is never applied twice"
        )


class Connection(Tracking):
    """A database connection borrowed from a tether pool (PEP 249).

    ``note()``, ``changes`` and ``saved`` come from ``Tracking``, shared with the async proxy.
    """

    # Attributes go straight into __dict__: ``__setattr__`` forwards to the driver's
    # connection, and this is the checkout's hot path.
    _slot: Slot | None
    _raw: Any
    _owner: Owner
    _dialect: Dialect

    def __init__(self, owner: Owner, slot: Slot, dialect: Dialect):
        attrs = self.__dict__
        attrs["_owner"] = owner
        attrs["_slot"] = slot
        attrs["_raw"] = slot.raw
        attrs["_dialect"] = dialect

    # -- PEP 249 ---------------------------------------------------------------------------

    def cursor(self, *args: Any, **kwargs: Any) -> Cursor:
        return Cursor(self, self.raw.cursor(*args, **kwargs))

    def execute(self, sql: Any, params: Any = None, **kwargs: Any) -> Cursor:
        """Run one statement and return its cursor (psycopg's shorthand, for any driver)."""
        cursor = self.cursor()
        return cursor.execute(sql, params, **kwargs)

    def commit(self) -> None:
        if self.__dict__.get("_unit"):
            raise UnitOfWorkError("commit")
        self.raw.commit()

    def rollback(self) -> None:
        if self.__dict__.get("_unit"):
            raise UnitOfWorkError("rollback")
        self.raw.rollback()

    def close(self) -> None:
        """Return the connection to its pool; an open transaction is rolled back."""
        if self._slot is not None:
            self._owner.give_back(self, commit=False)

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        # As psycopg's connection: commit on success, roll back on error, then close.
        if self._slot is not None:
            self._owner.give_back(self, commit=exc_type is None)

    # -- pass-through ----------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        raw = self.raw
        return remembered_setter(self, raw, name, getattr(raw, name))

    def __setattr__(self, name: str, value: Any) -> None:
        # Client-side settings (autocommit, isolation_level, read_only, row_factory...)
        # are set on the driver's connection; the old value is kept for the pool to
        # restore before the next borrower.
        raw = self.raw
        self.remember(name, getattr(raw, name))
        setattr(raw, name, value)

    def __del__(self) -> None:
        if self.__dict__.get("_slot") is not None:
            self._owner.reclaim(self)

    def __repr__(self) -> str:
        return f"<tether.Connection {self._owner.describe(self)}>"


class Cursor:
    """A driver cursor whose statements are noted and which dies with its borrow."""

    __slots__ = ("_conn", "_cursor")

    def __init__(self, conn: Connection, cursor: Any):
        self._conn = conn
        self._cursor = cursor

    @property
    def raw(self) -> Any:
        return self._cursor

    def execute(self, sql: Any, params: Any = None, **kwargs: Any) -> Cursor:
        conn = self._conn
        if conn._raw is None:
            raise conn._owner.returned_error(conn)
        conn.note(sql)
        if params is None:
            self._cursor.execute(sql, **kwargs)
        else:
            self._cursor.execute(sql, params, **kwargs)
        return self

    def executemany(self, sql: Any, seq_of_params: Any, **kwargs: Any) -> Cursor:
        conn = self._conn
        if conn._raw is None:
            raise conn._owner.returned_error(conn)
        conn.note(sql)
        self._cursor.executemany(sql, seq_of_params, **kwargs)
        return self

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchmany(self, size: int | None = None) -> Any:
        return self._cursor.fetchmany() if size is None else self._cursor.fetchmany(size)

    def fetchall(self) -> Any:
        return self._cursor.fetchall()

    def close(self) -> None:
        self._cursor.close()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._cursor.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __repr__(self) -> str:
        return f"<tether.Cursor on {self._conn!r}>"

