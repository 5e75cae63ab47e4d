"""tether's connection and cursor: a borrowed driver connection, watched.

The proxy does what the driver cannot: it refuses to act once its borrow ended (a stale
reference never reaches the next borrower's session); it notes which statements change
the session, so the owner resets only when something changed; it remembers client-side
settings the borrower changed (``autocommit``, ``isolation_level``...) so they can be put
back; and with idle resiliency on, it rebuilds a session that broke while idle before the
next statement (``_recovery``). Its state is the ``Lease``'s; everything else goes to the
driver's connection, which stays reachable as ``conn.raw``. PEP 249 drivers get PEP 249
cursors; asyncpg's own API (``fetch``, ``fetchrow``, ``transaction()``...) passes
through, noted. ``_proxy.py``, for threads, is generated from this module.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from .._validate import seconds as check_seconds
from ..drivers._settings import method_getter, read_setting, write_setting
from ..errors import Error, UnitOfWorkError
from ..vocab import PLAIN, TxStatus
from ._recovery_async import recover, renew
from ._tied import MAKERS, LateTransaction, checked, tie
from ._watchdog import Bounded, arm, check_done, disarm, stopped

# A round trip this long (or longer) makes a server far: there a transaction's BEGIN rides
# with its first statement, and one that wrote nothing ends in the background. Nearer (a
# LAN, loopback) the pipeline and the handoff cost more CPU than the round trips they save.
FAR_S = 0.002

if TYPE_CHECKING:
    from ..drivers._base_async import Opening
    from ._lease import Lease
    from ._log import SessionLog


class AsyncOwner(Protocol):
    """Where a connection goes back to (a pool; ``name`` None for an unpooled one)."""

    name: str | None
    target: str  # where it connects, password left out

    async def give_back(self, lease: Lease, *, commit: bool) -> None:
        """Take the connection back: commit first if asked, else roll back."""

    def reclaim(self, lease: Lease) -> None:
        """The proxy was dropped unclosed (from ``__del__``: any thread, no I/O, no locks)."""

    async def reopen(self) -> Lease:
        """A new connection, under the connect-retry policy, for a session that broke."""

    def adopt(self, lease: Lease, new: Lease, *, elapsed_s: float, replayed: str) -> None:
        """``new``'s connection replaces ``lease``'s, whose session was rebuilt on it."""

    def lost(self, lease: Lease) -> None:
        """``lease``'s session broke and could not be rebuilt (it comes back, to be discarded)."""


class AsyncConnection:
    """A database connection borrowed from a tether pool (PEP 249 where the driver is)."""

    __slots__ = ("__weakref__", "_epoch", "_fresh", "_lease")
    _lease: Lease
    _epoch: int
    # asyncpg's transaction() just began, nothing run in it yet: how to begin it again (``_begun``)
    _fresh: Callable[[Any], Awaitable[Any]] | None

    def __init__(self, lease: Lease, log: SessionLog | None = None):
        # A new borrow: a clean slate, and an epoch of its own (odd while lent; a lease
        # lent twice retires the first borrow).
        epoch = lease.epoch + 1 + (lease.epoch & 1)
        lease.epoch = epoch
        lease.changes = ()
        lease.saved = lease.lost = None
        lease.log = log
        lease.unit = False
        lease.command_timeout = lease.default_timeout
        lease.grace = None
        lease.quiet = False
        lease.mark = lease.marker = None
        # Not self._lease = ...: __setattr__ forwards to the driver's connection.
        _set_lease(self, lease)
        _set_epoch(self, epoch)
        _set_fresh(self, None)

    @property
    def raw(self) -> Any:
        """The driver's own connection object (don't keep it past the borrow)."""
        raw = self._live()
        self._lease.quiet = False  # what it sends is not seen here
        return raw

    def _live(self) -> Any:
        """The driver's connection, while this borrow lasts; ``ConnectionReturned`` after."""
        lease = self._lease
        if lease.epoch != self._epoch:
            raise lease.returned_error()
        return lease.raw

    def _drive(self) -> Any:
        """``_live()``, for a driver object of this borrow about to be used (a prepared
        statement, a cursor, a method passed through): it may run statements the session log
        does not see, so a transaction begun alone no longer holds nothing (``_first_call``)."""
        raw = self._live()
        if self._fresh is not None:
            _set_fresh(self, None)
        return raw

    @property
    def closed(self) -> bool:
        """Whether this borrow has ended (the connection went back)."""
        return self._lease.epoch != self._epoch

    @property
    def command_timeout(self) -> float:
        """Seconds a statement may run before it is cancelled (0: no limit); this borrow's.

        Starts at the pool's ``command_timeout``; set it to change it until the connection
        goes back. One call can also pass ``command_timeout=`` to ``execute``."""
        self._live()
        return self._lease.command_timeout

    @command_timeout.setter
    def command_timeout(self, value: float | None) -> None:
        self._live()
        self._lease.command_timeout = seconds("command_timeout", value)

    # -- statements --------------------------------------------------------------------------

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        """A cursor whose statements are noted (asyncpg: its ``cursor(query, ...)``, noted)."""
        lease, raw = self._lease, self._live()
        if lease.driver.returns_cursors:
            name = kwargs.get("name") or (args[0] if args and isinstance(args[0], str) else None)
            if name and lease.log is not None:  # a server-side cursor: no replay brings it back
                lease.log.lose(f"cursor:{name}", f"server-side cursor {name}")
            if lease.log is not None and lease.driver.tx_status(raw) is TxStatus.BROKEN:
                # the session will be rebuilt at the first execute: the cursor is made there
                return AsyncCursor(self, None, None, (args, kwargs), name)
            return AsyncCursor(self, new_cursor(lease, raw, *args, **kwargs), raw, (args, kwargs), name)
        if args:
            lease.note(args[0])
            if lease.log is not None:
                lease.log.lose("cursor:#", "asyncpg cursor")
        return tie(self, raw.cursor(*args, **kwargs))

    async def execute(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one statement and return its cursor (any PEP 249 driver: psycopg's shorthand);
        asyncpg returns its status string. ``command_timeout=`` bounds this one statement."""
        if not self._lease.driver.returns_cursors:
            return await self._call("execute", sql, args, kwargs)
        params = args[0] if args else kwargs.pop("params", None)
        raw = await self._ready()
        return await AsyncCursor(self, new_cursor(self._lease, raw), raw)._run(raw, sql, params, kwargs)

    async def commit(self) -> None:
        """Commit the open transaction (refused inside ``pool.transaction``'s function)."""
        lease = self._lease
        if lease.unit and lease.epoch == self._epoch:
            raise UnitOfWorkError("commit")
        raw = await self._ready()
        log = lease.log
        failed = log is not None and lease.driver.tx_status(raw) is TxStatus.IN_ERROR  # COMMIT rolls back
        await resent(lease, raw, lease.command_timeout, lease.driver.commit)
        if log is not None:
            log.end(commit=not failed)

    async def rollback(self) -> None:
        """Roll back the open transaction (refused inside ``pool.transaction``'s function)."""
        lease = self._lease
        if lease.unit and lease.epoch == self._epoch:
            raise UnitOfWorkError("rollback")
        raw = await self._ready(rolling_back=True)
        try:
            await resent(lease, raw, lease.command_timeout, lease.driver.rollback)
        except Exception:
            if not ended(lease):
                raise
        if lease.log is not None:
            lease.log.end(commit=False)

    async def close(self, *, timeout: float | None = None) -> None:
        """Return the connection to its pool; an open transaction is rolled back.

        ``timeout`` is accepted and not needed (asyncpg's ``close(timeout=)``, which
        SQLAlchemy's adapter calls): the return does not wait on the server, and a reset
        that would is bounded by the pool's ``reset_timeout``."""
        lease = self._lease
        if lease.epoch == self._epoch:  # the borrow ends (a second close does nothing)
            lease.epoch += 1
            await lease.owner.give_back(lease, commit=False)

    async def __aenter__(self) -> AsyncConnection:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        # As psycopg's connection: commit on success, roll back on error, then close.
        lease = self._lease
        if lease.epoch == self._epoch:
            lease.epoch += 1
            await lease.owner.give_back(lease, commit=exc_type is None)

    # -- the session's watch --------------------------------------------------------------------

    async def _ready(self, *, rolling_back: bool = False) -> Any:
        """The driver connection for the next statement: the zero-round-trip check first,
        and a rebuilt session if this one broke while idle."""
        lease = self._lease
        if lease.epoch != self._epoch:
            raise lease.returned_error()
        if lease.lost is not None:
            raise lease.lost
        raw = lease.raw
        if lease.log is None:  # idle resiliency off: straight through
            return raw
        # A quiet socket is the common case and answers alone: a driver that saw its
        # connection break has closed the descriptor, which then polls as not quiet.
        probe = lease.probe
        if probe is not None and probe.quiet():
            return raw
        if (probe is not None and lease.idle_break()) or lease.driver.tx_status(raw) is TxStatus.BROKEN:
            raw = await recover(lease, rolling_back=rolling_back)
        return raw

    async def _begin(self, start: Callable[[Any], Awaitable[Any]]) -> None:
        """``start(raw)``: a transaction's BEGIN sent alone, before any statement of it
        (asyncpg's ``transaction()``, which SQLAlchemy's adapter starts). Where the server's
        goodbye answered it, nothing of the borrower's was sent: once more on a recovered
        session (idle resiliency on; its replay rebuilds what the borrow had set)."""
        raw = await self._ready()
        lease = self._lease
        lease.quiet = False
        outermost = lease.driver.tx_status(raw) is TxStatus.IDLE  # not a savepoint
        _set_fresh(self, None)
        try:
            await start(raw)
        except Exception as exc:
            if not unsent(lease, exc):
                raise
            await start(await renew(lease))
        if lease.log is not None:
            # One is open, and asyncpg binds it to its connection: no replay rebuilds it...
            lease.log.plain(TxStatus.IN_TRANSACTION)
            if outermost:  # ...but until its first statement it holds nothing (``_first_call``)
                _set_fresh(self, start)

    def _settled(self) -> None:
        """asyncpg's transaction ended (``LateTransaction``): nothing to begin again."""
        _set_fresh(self, None)

    async def _call(self, name: str, sql: Any, args: Any, kwargs: Any) -> Any:
        """asyncpg's ``execute``/``fetch``... with the session log."""
        fresh = self._fresh
        if fresh is not None:
            _set_fresh(self, None)
            return await self._first_call(fresh, name, sql, args, kwargs)
        return await self._call_now(name, sql, args, kwargs)

    async def _first_call(self, begin: Callable[[Any], Awaitable[Any]], name: str, sql: Any, args: Any,
                          kwargs: Any) -> Any:
        """The first call in a transaction asyncpg began, which holds nothing yet: when the
        session broke since (idle), or the server's goodbye answers a ``prepare`` (which
        runs nothing: SQLAlchemy's adapter prepares each statement first), the transaction
        is dropped with its session and ``begin`` starts it again on the recovered one."""
        lease = self._lease
        log = lease.log
        assert log is not None
        raw = lease.raw
        log.end(commit=False)  # dropped, if the session is: a recovery rebuilds the session alone
        ready = await self._ready(rolling_back=True)
        if ready is not raw:
            await begin(ready)
        log.plain(TxStatus.IN_TRANSACTION)
        try:
            return await self._call_now(name, sql, args, dict(kwargs))
        except Exception as exc:
            if name != "prepare" or not unsent(lease, exc):
                raise
        log.end(commit=False)
        await begin(await renew(lease))
        log.plain(TxStatus.IN_TRANSACTION)
        return await self._call_now(name, sql, args, kwargs)

    async def _call_now(self, name: str, sql: Any, args: Any, kwargs: Any) -> Any:
        raw = await self._ready()
        lease = self._lease
        lease.quiet = False
        timeout = _timeout_of(lease, kwargs)
        method = getattr(raw, name)
        if lease.log is None:
            lease.note(sql)
            result = await timed(lease, timeout, None, method, sql, *args, **kwargs)
        else:
            effects = lease.read(sql)
            status = lease.driver.tx_status
            before = None if effects is PLAIN else status(raw)
            result = await timed(lease, timeout, None, method, sql, *args, **kwargs)
            lease.recorded(effects, args or None, before, status(raw))
        return tie(self, result) if name in MAKERS else result  # prepare(): a statement of this borrow

    # -- pass-through ------------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name in _OWN:  # not set yet (a failed __init__): never ask the driver for them
            raise AttributeError(name)
        lease, raw = self._lease, self._live()
        attr = getattr(raw, name)
        if name not in _READS_ONLY:
            lease.quiet = False  # what it sends is not seen here
        if name in lease.driver.sql_methods:  # asyncpg's fetch(sql, ...) and friends
            return _with_sql(self, name)
        if name == "transaction" and not lease.driver.returns_cursors:  # asyncpg's: made when it starts
            return functools.partial(LateTransaction, self)
        if name not in _READS_ONLY:  # it may send what no transaction begun again would hold
            _set_fresh(self, None)
        if name in MAKERS and callable(attr):  # transaction(), prepare()...: tied to this borrow
            return checked(self, attr, name)
        return _remembered_setter(lease, raw, name, attr)  # psycopg's set_autocommit(...)

    def __setattr__(self, name: str, value: Any) -> None:
        # Client-side settings (autocommit, isolation_level, read_only, row_factory...) are
        # set on the driver's connection; the old value is kept for the owner to restore.
        raw = self.raw
        if name == "command_timeout":  # tether's own: the property's setter
            object.__setattr__(self, name, value)
            return
        self._lease.remember(name, read_setting(raw, name))
        write_setting(raw, name, value)  # PyMySQL's autocommit is a method

    def __del__(self) -> None:
        lease = getattr(self, "_lease", None)
        if lease is not None and lease.epoch == self._epoch:
            lease.epoch += 1
            lease.owner.reclaim(lease)

    def __repr__(self) -> str:
        return f"<tether.AsyncConnection {self._lease.describe(self._epoch)}>"


_OWN = frozenset(AsyncConnection.__slots__)
# Attributes of a connection or cursor (PEP 249's, psycopg's) that only read what the client
# holds: reading them leaves an open transaction quiet. Anything else reached through the
# proxy may send a statement tether does not see.
_READS_ONLY = frozenset({
    "description", "rowcount", "rownumber", "statusmessage", "arraysize", "closed", "broken",
    "autocommit", "isolation_level", "read_only", "deferrable", "info", "row_factory",
    "cursor_factory", "prepare_threshold", "prepared_max", "adapters", "format",
})
_set_lease = vars(AsyncConnection)["_lease"].__set__
_set_epoch = vars(AsyncConnection)["_epoch"].__set__
_set_fresh = vars(AsyncConnection)["_fresh"].__set__


async def timed(lease: Lease, timeout_s: float, cursor: Any, call: Callable[..., Any], *args: Any,
                **kwargs: Any) -> Any:
    """``await call(*args, **kwargs)``, a statement bounded by ``timeout_s`` (``_watchdog``;
    ``Bounded``'s steps, inlined: this is every statement's path)."""
    number = arm(lease, timeout_s, cursor)
    try:
        result = await call(*args, **kwargs)
    except BaseException as exc:
        disarm(lease)
        error = stopped(lease, number, timeout_s, exc)
        log, driver = lease.log, lease.driver
        if log is not None and not driver.reset_refused(lease.raw):  # refused: it did not run
            log.failed(driver.tx_status(lease.raw))
        if error is not None:
            raise error from exc
        raise
    disarm(lease)
    if number and lease.expired is not None:
        check_done(lease, number, timeout_s)
    return result


async def resent(lease: Lease, raw: Any, timeout_s: float, call: Callable[[Any], Any]) -> Any:
    """``call(raw)`` under the command timeout; when the server refused the session reset
    that rode on it (nothing ran, the session ended), once more on a fresh session."""
    try:
        return await timed(lease, timeout_s, None, call, raw)
    except Exception:
        if not lease.driver.reset_refused(raw):
            raise
    return await timed(lease, timeout_s, None, call, await renew(lease))


async def begun(opening: Opening, cursor: Any, *args: Any, **kwargs: Any) -> Any:
    """The transaction's BEGIN alone (``opening.begin``), then the cursor's statement."""
    await opening.begin()
    return await cursor.execute(*args, **kwargs)


def ended(lease: Lease) -> bool:
    """After a ROLLBACK failed: whether the session is gone, and its transaction with it
    (the server rolls back what a dead session left open). The rollback happened all the
    same, so its error is not the application's: an idle kill's goodbye still on the wire
    answers it, as a dead link would. The next statement rebuilds the session (idle
    resiliency) or raises; the pool discards the connection when it comes back."""
    return lease.driver.tx_status(lease.raw) is TxStatus.BROKEN


def refused(lease: Lease, opening: Opening | None, exc: BaseException) -> bool:
    """Whether the server's goodbye answered the BEGIN of a statement that just failed with
    ``exc``, so that nothing of the statement ran. Only with idle resiliency on: its replay
    rebuilds what the borrow had set, or refuses (``SessionLost``); a later kill looks the
    same to the application but answers the statement, and is never resent here. Never
    after a command timeout: its bound is the application's."""
    return opening is not None and opening.refused and lease.log is not None and not isinstance(exc, Error)


def unsent(lease: Lease, exc: BaseException) -> bool:
    """After a BEGIN sent alone, or a prepare (which runs nothing), failed with ``exc``:
    whether its session ended (the server's goodbye, or a connection the driver now
    reports broken), so that nothing of the borrower's ran and it may go again on a
    recovered session. Only with idle resiliency on, never after a command timeout."""
    if lease.log is None or isinstance(exc, Error):
        return False
    return lease.driver.begin_refused(exc) or lease.driver.tx_status(lease.raw) is TxStatus.BROKEN


def new_cursor(lease: Lease, raw: Any, *args: Any, **kwargs: Any) -> Any:
    """``raw.cursor(...)`` under the command timeout: making one may wait on the server
    (python-tds cancels its previous cursor's unread results first)."""
    if not lease.driver.cursor_waits:
        return raw.cursor(*args, **kwargs)
    with Bounded(lease, lease.command_timeout):
        return raw.cursor(*args, **kwargs)


def _timeout_of(lease: Lease, kwargs: dict[str, Any]) -> float:
    """This call's ``command_timeout=`` (taken out of the driver's arguments), or the borrow's."""
    if kwargs and "command_timeout" in kwargs:
        return seconds("command_timeout", kwargs.pop("command_timeout"))
    return lease.command_timeout


def seconds(name: str, value: Any) -> float:
    """A command timeout as given by a user: seconds >= 0 (0 or None: no limit)."""
    return 0.0 if value is None else check_seconds(name, value)


def _with_sql(conn: AsyncConnection, name: str) -> Callable[..., Any]:
    async def call(sql: Any, *args: Any, **kwargs: Any) -> Any:
        return await conn._call(name, sql, args, kwargs)

    return call


def _remembered_setter(lease: Lease, raw: Any, name: str, method: Any) -> Any:
    """``set_autocommit(...)`` and friends (psycopg's setters of a property ``name[4:]``),
    or PyMySQL's ``autocommit(value)``, wrapped so the old value is remembered too; any
    other attribute as it is."""
    if name.startswith("set_") and isinstance(getattr(type(raw), name[4:], None), property):
        setting = name[4:]

        def call(value: Any) -> Any:
            lease.remember(setting, getattr(raw, setting))
            return method(value)

        return call
    getter = method_getter(raw, name)
    if getter is not None:

        def call_method(value: Any) -> Any:
            lease.remember(name, getter())
            return method(value)

        return call_method
    return method


class AsyncCursor:
    """A driver cursor whose statements are noted and which dies with its borrow.

    After a recovered session the driver's cursor belongs to the dead connection; the
    next ``execute`` makes a new one, the same way, on the new connection (rows already
    fetched into the old one stay readable until then)."""

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
        """The driver's own cursor (don't keep it past the borrow)."""
        cursor = self._live()
        self._conn._lease.quiet = False  # what it sends is not seen here
        return cursor

    @property
    def connection(self) -> AsyncConnection:
        """The connection this cursor runs on (while its borrow lasts)."""
        self._conn._live()
        return self._conn

    @property
    def closed(self) -> bool:
        """Whether the cursor is closed: always once its borrow ended (answered, not refused,
        as PEP 249 code asks it after closing: Django's ``_nodb_cursor`` tests do)."""
        if self._conn.closed:
            return True
        return self._cursor is not None and bool(getattr(self._cursor, "closed", False))

    def _live(self) -> Any:
        """The driver's cursor, while the borrow lasts; ``ConnectionReturned`` after."""
        self._conn._live()
        return self._cursor

    async def execute(self, sql: Any, params: Any = None, **kwargs: Any) -> AsyncCursor:
        """Run ``sql`` (noted, and on a rebuilt session if this one broke while idle);
        ``command_timeout=`` bounds this one statement."""
        raw = await self._conn._ready()
        return await self._run(raw, sql, params, kwargs)

    async def _run(self, raw: Any, sql: Any, params: Any, kwargs: dict[str, Any]) -> AsyncCursor:
        """``execute`` on ``raw``, which ``_ready()`` just vouched for, noted in the lease."""
        lease = self._conn._lease
        timeout = _timeout_of(lease, kwargs)
        args = (sql,) if params is None else (sql, params)
        log = lease.log
        effects = PLAIN if log is None else lease.read(sql)
        if log is None:  # idle resiliency off: only what needs a reset is noted
            lease.note(sql)
        driver = lease.driver
        status = driver.tx_status
        lease.quiet = False  # until the server says so again
        for last_try in (False, True):
            cursor = self._cursor if self._made_on is raw else self._remake(raw)
            before = None if effects is PLAIN else status(raw)
            # The transaction's first statement: with its BEGIN, where the driver can and
            # round trips are dear (on a LAN the pipeline costs more CPU than it saves).
            # In autocommit too, where the server is far (an idle kill's goodbye may be on the
            # wire for a while) and idle resiliency can take the statement elsewhere.
            opening = driver.opening(raw, cursor, sql, params, mark=lease.mark, ask=lease.far,
                                     guard=lease.far and log is not None)
            try:
                if opening is None and (lease.far or log is None):
                    await timed(lease, timeout, cursor, cursor.execute, *args, **kwargs)
                elif opening is None:  # timed: is the server far? (autocommit has no BEGIN to time)
                    sent = time.monotonic()
                    await timed(lease, timeout, cursor, cursor.execute, *args, **kwargs)
                    lease.far = time.monotonic() - sent >= FAR_S
                elif lease.far or lease.mark is not None or driver.pipelines_near:
                    await timed(lease, timeout, cursor, opening.run, *args, **kwargs)
                    lease.quiet, lease.marker = opening.quiet, opening.marker
                    lease.far = opening.round_trip_s >= FAR_S
                else:  # near: BEGIN alone then the statement, as the driver sends them, timed
                    sent = time.monotonic()
                    await timed(lease, timeout, cursor, begun, opening, cursor, *args, **kwargs)
                    lease.far = time.monotonic() - sent >= FAR_S
                break
            except Exception as exc:
                if last_try or not (driver.reset_refused(raw) or refused(lease, opening, exc)):
                    raise
            # The reset riding on it was refused, or the server's goodbye answered its BEGIN:
            # it did not run, and goes again on a new session (idle resiliency's, replayed).
            raw = await renew(lease)
        if log is None:
            return self
        after = status(raw)
        if before is not None or after is not TxStatus.IDLE or log.tx_open:
            lease.recorded(effects, params, before, after)
        return self

    async def executemany(self, sql: Any, seq_of_params: Any, **kwargs: Any) -> AsyncCursor:
        """Run ``sql`` once per parameter set (a session statement here is not replayable)."""
        raw = await self._conn._ready()
        lease = self._conn._lease
        lease.quiet = False
        lease.note(sql)
        log = lease.log
        if log is not None and lease.effects_of(sql) is not PLAIN:
            log.lose("", "session statement run by executemany")
        timeout = _timeout_of(lease, kwargs)
        for last_try in (False, True):
            cursor = self._cursor if self._made_on is raw else self._remake(raw)
            try:
                await timed(lease, timeout, cursor, cursor.executemany, sql, seq_of_params, **kwargs)
                break
            except Exception:
                if last_try or not lease.driver.reset_refused(raw):
                    raise
            raw = await renew(lease)  # the reset riding on it was refused: it did not run
        if log is not None:
            log.plain(lease.driver.tx_status(raw))
        return self

    def _remake(self, raw: Any) -> Any:
        args, kwargs = self._how
        self._cursor = new_cursor(self._conn._lease, raw, *args, **kwargs)
        self._made_on = raw
        return self._cursor

    async def fetchone(self) -> Any:
        """The next row, or None (the driver's)."""
        return await self._fetch("fetchone")

    async def fetchmany(self, size: int | None = None) -> Any:
        """The next ``size`` rows (the driver's ``arraysize`` when None)."""
        return await (self._fetch("fetchmany") if size is None else self._fetch("fetchmany", size))

    async def fetchall(self) -> Any:
        """The remaining rows."""
        return await self._fetch("fetchall")

    async def _fetch(self, name: str, *args: Any) -> Any:
        cursor = self._live()
        lease = self._conn._lease
        if self._name is None and not lease.driver.fetch_reads:  # rows already here
            return await getattr(cursor, name)(*args)
        return await timed(lease, lease.command_timeout, cursor, getattr(cursor, name), *args)

    async def close(self) -> None:
        """Close the driver's cursor (a server-side one stops counting against recovery).

        After the borrow ended this does nothing: the pool's reset closed it already, and
        the driver's cursor must not touch the next borrower's session. A cursor made on a
        broken session has no driver cursor until its first execute: nothing to close."""
        if self._conn.closed or self._cursor is None:
            return
        lease = self._conn._lease
        await timed(lease, lease.command_timeout, None, self._cursor.close)  # it may wait on the server
        log = self._conn._lease.log
        if self._name and log is not None:
            log.find(f"cursor:{self._name}")

    def __aiter__(self) -> AsyncIterator[Any]:
        return tie(self._conn, self._live().__aiter__())  # type: ignore[no-any-return]

    async def __aenter__(self) -> AsyncCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __getattr__(self, name: str) -> Any:
        if name in _CURSOR_OWN:  # not set yet (a failed __init__)
            raise AttributeError(name)
        attr = getattr(self._live(), name)  # stream(), copy(), description...
        if name not in _READS_ONLY:
            self._conn._lease.quiet = False  # what they send is not seen here
        return checked(self._conn, attr, name) if callable(attr) else attr

    def __repr__(self) -> str:
        return f"<tether.AsyncCursor on {self._conn!r}>"


_CURSOR_OWN = frozenset(AsyncCursor.__slots__)
