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
from ..sql import PLAIN, TxStatus
from ._log import SessionLog
from ._recovery import recover
from ._tracking import Tracking, read_setting, remembered_setter, write_setting

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..dialects import Dialect
    from ..drivers import Driver
    from ..pool._state import Slot


class Owner(Protocol):
    """Where a proxy goes back to: a pool, or nothing for an unpooled connection."""

    def give_back(self, conn: Connection, *, commit: bool) -> None: ...
    def reclaim(self, conn: Connection) -> None: ...
    def returned_error(self, conn: Connection) -> Exception: ...
    def describe(self, conn: Connection) -> str: ...
    # idle resiliency
    recovery_attempts: int
    def reopen(self, conn: Connection) -> Slot: ...
    def swap(self, conn: Connection, new: Slot, *, elapsed_s: float, replayed: str) -> None: ...
    def drop(self, new: Slot) -> None: ...
    def lost(self, conn: Connection) -> None: ...


class UnitOfWorkError(Error):
    """``commit()`` or ``rollback()`` called inside ``pool.transaction``'s function."""

    def __init__(self, what: str):
        super().__init__(
            f"{what}() inside pool.transaction(): the pool commits when the function returns "
            "and rolls back when it raises, so that a lost COMMIT is never applied twice"
        )


class Connection(Tracking):
    """A database connection borrowed from a tether pool (PEP 249).

    ``note()``, ``changes`` and ``saved`` come from ``Tracking``, shared with the async
    proxy. With idle resiliency on (``connect_retry_count`` > 0, the default), each
    statement first polls the socket: a session that broke while idle is rebuilt on a
    new connection (``_recovery``), or ``tether.SessionLost`` says why it cannot be.
    """

    # Attributes go straight into __dict__: ``__setattr__`` forwards to the driver's
    # connection, and this is the checkout's hot path.
    _slot: Slot | None
    _raw: Any
    _owner: Owner
    _dialect: Dialect
    _driver: Driver

    def __init__(self, owner: Owner, slot: Slot, dialect: Dialect, driver: Driver, log: SessionLog | None):
        attrs = self.__dict__
        attrs["_owner"] = owner
        attrs["_slot"] = slot
        attrs["_raw"] = slot.raw
        attrs["_dialect"] = dialect
        attrs["_driver"] = driver
        if log is not None:
            attrs["_log"] = log

    # -- PEP 249 ---------------------------------------------------------------------------

    def cursor(self, *args: Any, **kwargs: Any) -> Cursor:
        raw = self.raw if self._log is None else self.ready()
        name = kwargs.get("name") or (args[0] if args and isinstance(args[0], str) else None)
        if name and self._log is not None:  # psycopg's server-side cursor: no replay brings it back
            self._log.lose(f"cursor:{name}", f"server-side cursor {name}")
        return Cursor(self, raw.cursor(*args, **kwargs), raw, (args, kwargs), name)

    def execute(self, sql: Any, params: Any = None, **kwargs: Any) -> Cursor:
        """Run one statement and return its cursor (psycopg's shorthand, for any driver)."""
        if self._log is None:
            return self.cursor().execute(sql, params, **kwargs)
        raw = self.ready()
        return Cursor(self, raw.cursor(), raw).run(raw, sql, params, kwargs)

    def commit(self) -> None:
        if self.__dict__.get("_unit"):
            raise UnitOfWorkError("commit")
        log = self._log
        if log is None:
            self.raw.commit()
            return
        raw = self.ready()
        failed = self._driver.tx_status(raw) is TxStatus.IN_ERROR  # COMMIT then rolls back
        raw.commit()
        log.end(commit=not failed)

    def rollback(self) -> None:
        if self.__dict__.get("_unit"):
            raise UnitOfWorkError("rollback")
        log = self._log
        if log is None:
            self.raw.rollback()
            return
        self.ready(rolling_back=True).rollback()
        log.end(commit=False)

    def close(self) -> None:
        """Return the connection to its pool; an open transaction is rolled back."""
        if self._slot is not None:
            self._owner.give_back(self, commit=False)

    def ready(self, *, rolling_back: bool = False) -> Any:
        """The driver connection to send the next statement on: the zero-round-trip check
        first, and a rebuilt session if this one broke while idle."""
        raw = self._raw
        if raw is None:
            raise self._owner.returned_error(self)
        if self._lost is not None:
            raise self._lost
        # A quiet socket is the common case and answers alone: a driver that saw its
        # connection break has closed the descriptor, which then polls as not quiet.
        probe = self._slot.probe  # type: ignore[union-attr]
        if probe is not None and probe.quiet():
            return raw
        if (probe is not None and self.idle_break()) or self._driver.tx_status(raw) is TxStatus.BROKEN:
            raw = recover(self, rolling_back=rolling_back)
        return raw

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
        self.remember(name, read_setting(raw, name))
        write_setting(raw, name, value)  # PyMySQL's autocommit is a method

    def __del__(self) -> None:
        if self.__dict__.get("_slot") is not None:
            self._owner.reclaim(self)

    def __repr__(self) -> str:
        return f"<tether.Connection {self._owner.describe(self)}>"


class Cursor:
    """A driver cursor whose statements are noted and which dies with its borrow.

    After a recovered session the driver's cursor belongs to the dead connection; the
    next ``execute`` makes a new one, the same way, on the new connection (rows already
    fetched into the old one stay readable until then)."""

    __slots__ = ("_conn", "_cursor", "_how", "_made_on", "_name")

    def __init__(self, conn: Connection, cursor: Any, made_on: Any = None,
                 how: tuple[tuple[Any, ...], dict[str, Any]] = ((), {}), name: str | None = None):
        self._conn = conn
        self._cursor = cursor
        self._made_on = made_on
        self._how = how
        self._name = name

    @property
    def raw(self) -> Any:
        return self._cursor

    def execute(self, sql: Any, params: Any = None, **kwargs: Any) -> Cursor:
        conn = self._conn
        if conn._log is None:  # idle resiliency off: straight through
            if conn._raw is None:
                raise conn._owner.returned_error(conn)
            conn.note(sql)
            if params is None:
                self._cursor.execute(sql, **kwargs)
            else:
                self._cursor.execute(sql, params, **kwargs)
            return self
        return self.run(conn.ready(), sql, params, kwargs)

    def run(self, raw: Any, sql: Any, params: Any, kwargs: dict[str, Any]) -> Cursor:
        """``execute`` on ``raw``, which ``ready()`` just vouched for, with the session log."""
        conn = self._conn
        cursor = self._cursor if self._made_on is raw else self._remake(raw)
        effects = conn.read(sql)
        status = conn._driver.tx_status
        before = None if effects is PLAIN else status(raw)
        if params is None:
            cursor.execute(sql, **kwargs)
        else:
            cursor.execute(sql, params, **kwargs)
        after = status(raw)
        if before is not None or after is not TxStatus.IDLE or conn._log.tx_open:  # type: ignore[union-attr]
            conn.recorded(effects, params, before, after)
        return self

    def executemany(self, sql: Any, seq_of_params: Any, **kwargs: Any) -> Cursor:
        conn = self._conn
        log = conn._log
        if log is None:
            if conn._raw is None:
                raise conn._owner.returned_error(conn)
            conn.note(sql)
            self._cursor.executemany(sql, seq_of_params, **kwargs)
            return self
        raw = conn.ready()
        cursor = self._cursor if self._made_on is raw else self._remake(raw)
        conn.note(sql)
        if conn.effects_of(sql, None) is not PLAIN:
            log.lose("", "session statement run by executemany")
        cursor.executemany(sql, seq_of_params, **kwargs)
        log.plain(conn._driver.tx_status(raw))
        return self

    def _remake(self, raw: Any) -> Any:
        args, kwargs = self._how
        self._cursor = raw.cursor(*args, **kwargs)
        self._made_on = raw
        return self._cursor

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchmany(self, size: int | None = None) -> Any:
        return self._cursor.fetchmany() if size is None else self._cursor.fetchmany(size)

    def fetchall(self) -> Any:
        return self._cursor.fetchall()

    def close(self) -> None:
        self._cursor.close()
        log = self._conn._log
        if self._name and log is not None:
            log.find(f"cursor:{self._name}")

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __repr__(self) -> str:
        return f"<tether.Cursor on {self._conn!r}>"
