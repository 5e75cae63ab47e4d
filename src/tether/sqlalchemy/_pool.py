"""SQLAlchemy's pool, as a thin front of a tether pool.

Every SQLAlchemy checkout borrows from tether (``getconn``: the zero-round-trip check, a
dead idle connection replaced unseen) and every checkin gives back (``close``). SQLAlchemy
keeps nothing idle of its own, so there are never two pools, one of them blind.

SQLAlchemy's connection records are kept per *physical* connection (tether's lease), so
the ``connect`` event (the dialect's own setup: asyncpg's JSON codecs, psycopg's notice
handler, hstore) runs once per connection, as with ``QueuePool``, not at every checkout.
The record's DBAPI connection is tether's proxy of the current borrow (for an asyncio
dialect, SQLAlchemy's adapter around it); ``driver_connection`` is the driver's own
connection, so psycopg's ``TypeInfo.fetch`` and ``register_hstore`` get what they check for.

What SQLAlchemy would do pool-wide after one disconnect (recycle every connection) is
tether's job, done without a round trip: here only the broken connection is discarded.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from typing import Any, cast

from sqlalchemy import exc as sa_exc
from sqlalchemy import pool as sa_pool
from sqlalchemy.pool.base import _ConnectionRecord
from sqlalchemy.util import LRUCache
from sqlalchemy.util.concurrency import await_

from ..errors import SessionLost
from ..session import AsyncConnection, Connection, lease_of
from ..session._tied import Tied, tie

_INVALIDATED = "invalidated by SQLAlchemy"


def driver_connection_of(conn: Any) -> Any:
    """The driver's own connection behind a tether proxy; anything else as it is."""
    if isinstance(conn, (Connection, AsyncConnection)):
        return conn.raw
    return conn


class _Dialect:
    """The engine's dialect as the pool sees it: ``driver_connection`` is the driver's own."""

    def __init__(self, dialect: Any):
        self._real = dialect

    def get_driver_connection(self, connection: Any) -> Any:
        return driver_connection_of(self._real.get_driver_connection(connection))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class TetherPool(sa_pool.Pool):
    """A ``sqlalchemy.pool.Pool`` whose connections come from a ``tether.Pool``.

    Made by the ``tether`` engine plugin (``create_engine(url, plugins=["tether"])``) or
    ``tether.sqlalchemy.create_engine``; ``tether_pool`` is the pool (``owns``: close it
    with the engine's ``dispose()``, and make a new one for the engine's next use).
    """

    _is_asyncio = False

    # SQLAlchemy's rollback on return: tether's return rolls back what is open, in the
    # background; SQLAlchemy's Connection has ended its own transaction by then.
    _default_reset: Any = None

    def __init__(self, creator: Any, *, tether_pool: Any, owns: bool = False, make: Any = None,
                 **kw: Any):
        kw.pop("recycle", None)  # tether's max_lifetime does it, jittered
        kw.setdefault("reset_on_return", self._default_reset)
        super().__init__(creator, recycle=-1, **kw)
        self._tether = tether_pool  # None: made at first use (after a dispose)
        self._owns = owns
        self._make = make  # builds a new tether pool when this one was disposed (owns)
        # One SQLAlchemy record per physical connection, by its lease's number (a plain
        # dict: the checkout's lookup is the cheapest); dropped when the lease is gone.
        self._records: dict[int, _ConnectionRecord] = {}
        self._real_dialect: Any = self._dialect
        self._dialect = cast(Any, _Dialect(self._dialect))

    @property
    def tether(self) -> Any:
        """The tether pool the connections come from."""
        if self._tether is None:
            self._tether = self._make()
        return self._tether

    # -- borrowing ---------------------------------------------------------------------------

    def _give_back(self, conn: Any) -> None:
        conn.close()

    def _adapt(self, conn: Any) -> Any:
        """The DBAPI connection SQLAlchemy works with: the proxy itself."""
        return conn

    def _proxy_of(self, dbapi_connection: Any) -> Any:
        return dbapi_connection

    def _lend(self, record: _ConnectionRecord, conn: Any) -> None:
        record.dbapi_connection = conn

    def _do_get(self) -> _ConnectionRecord:
        # getconn() without its frame, as the threaded pool's needs no loop: the hot path
        return self._record_for((self._tether or self.tether)._getconn(None))

    def _record_for(self, conn: Any) -> _ConnectionRecord:
        try:
            lease = conn._lease
            record = self._records.get(lease.number)
            if record is not None and record.dbapi_connection is not None and \
                    record._soft_invalidate_time <= record.starttime:
                self._lend(record, conn)
                return record
            record = self._new_record(conn)
            self._records[lease.number] = record
            weakref.finalize(lease, self._records.pop, lease.number, None)
            return record
        except BaseException:
            self._discard(conn)
            raise

    def _new_record(self, conn: Any) -> _ConnectionRecord:
        """A record for a connection SQLAlchemy has not seen: its ``connect`` events run
        once, as ``_ConnectionRecord`` runs them for a connection it opened itself."""
        record = _ConnectionRecord(self, connect=False)
        dbapi_connection = record.dbapi_connection = self._adapt(conn)
        record.starttime = time.time()
        record.fresh = True
        if self.dispatch.first_connect:
            self.dispatch.first_connect.for_modify(self.dispatch).exec_once_unless_exception(
                dbapi_connection, record)
        self.dispatch.connect.for_modify(self.dispatch)._exec_w_sync_on_first_run(dbapi_connection, record)
        # What the connect events set is the connection's configuration (as tether's
        # configure hook), not this borrow's change: tether neither resets nor restores it.
        lease = lease_of(conn)
        lease.changes, lease.saved = (), None
        return record

    def _do_return_conn(self, record: Any) -> None:
        conn = record.dbapi_connection  # the proxy; None: invalidated, given back already
        if conn is not None:
            conn.close()  # a second close does nothing

    # -- invalidation ------------------------------------------------------------------------

    def _close_connection(self, connection: Any, *, terminate: bool = False) -> None:
        """SQLAlchemy is done with this connection (invalidated, or a failed connect
        event): tether discards it instead of lending it again."""
        conn = self._proxy_of(connection)
        if conn is not None and not conn.closed:
            self._discard(conn)

    def _discard(self, conn: Any) -> None:
        lease = lease_of(conn)
        self._records.pop(lease.number, None)
        if lease.lost is None:
            lease.lost = SessionLost(f"the connection was {_INVALIDATED}", reasons=(_INVALIDATED,))
        with contextlib.suppress(sa_exc.MissingGreenlet):  # outside the loop's greenlet: tether reclaims it
            self._give_back(conn)

    def _invalidate(self, connection: Any, exception: BaseException | None = None,
                    _checkin: bool = True) -> None:
        # Only the broken connection: the others are checked without a round trip at checkout.
        if _checkin and getattr(connection, "is_valid", False):
            connection.invalidate(exception)

    # -- life cycle --------------------------------------------------------------------------

    def recreate(self) -> TetherPool:
        tether_pool = None if self._owns else self._tether
        return self.__class__(self._creator, tether_pool=tether_pool, owns=self._owns, make=self._make,
                              pre_ping=self._pre_ping, logging_name=self._orig_logging_name,
                              reset_on_return=self._reset_on_return, _dispatch=self.dispatch,
                              dialect=self._real_dialect)

    def dispose(self) -> None:
        """Close the tether pool when it was made for this engine; a pool passed in is the
        application's to close."""
        self._records.clear()
        if self._owns and self._tether is not None:
            self._close_tether()

    def _close_tether(self) -> None:
        self.tether.close()

    def status(self) -> str:
        return f"TetherPool {self.tether!r}"


class AsyncTetherPool(TetherPool):
    """``TetherPool`` for asyncio engines, on a ``tether.AsyncPool``."""

    _is_asyncio = True
    # The adapters keep transaction state of their own (asyncpg's): SQLAlchemy resets it.
    _default_reset: Any = "rollback"

    def _do_get(self) -> _ConnectionRecord:
        return self._record_for(await_(self.tether.getconn()))

    def _do_return_conn(self, record: Any) -> None:
        conn = self._proxy_of(record.dbapi_connection)  # None: invalidated, given back already
        if conn is not None:
            self._give_back(conn)

    def _give_back(self, conn: Any) -> None:
        await_(conn.close())

    def _adapt(self, conn: Any) -> Any:
        """SQLAlchemy's adapter around the proxy (its ``driver_connection``), as the
        dialect's ``connect`` makes it for a connection of the driver's own."""

        async def lent(*args: Any, **kwargs: Any) -> Any:
            return conn

        return self._real_dialect.loaded_dbapi.connect(async_creator_fn=lent)

    def _proxy_of(self, dbapi_connection: Any) -> Any:
        return getattr(dbapi_connection, "_connection", None)

    def _lend(self, record: _ConnectionRecord, conn: Any) -> None:
        adapted: Any = record.dbapi_connection
        adapted._connection = conn

    def _new_record(self, conn: Any) -> _ConnectionRecord:
        record = super()._new_record(conn)
        adapted: Any = record.dbapi_connection
        cache = getattr(adapted, "_prepared_statement_cache", None)
        if cache is not None:  # SQLAlchemy's asyncpg adapter
            # Behind PgBouncer's transaction pooling the next transaction may run on another
            # server session, without the statement: there each borrow prepares its own.
            kept = not self.tether.spec.transaction_pooled
            adapted._prepared_statement_cache = _Statements(adapted, cache.capacity, kept=kept)
        return record


    def _close_tether(self) -> None:
        await_(self.tether.close())


class _Statements(LRUCache[Any, Any]):
    """SQLAlchemy's asyncpg statement cache, across borrows of one physical connection.

    A prepared statement lives in the server's session, not in a borrow: one an earlier
    borrow prepared is used again (tied to this borrow) while the driver's connection is the
    same one and tether has not reset its session since (``DISCARD ALL`` deallocates them;
    the driver's ``forget_session`` then moves asyncpg's release counter, as asyncpg's own
    pool does on release). Otherwise, after idle resiliency replaced the connection or a
    reset, the statement is prepared again (asyncpg: one round trip) by the next borrow
    that runs it. ``kept`` False: one borrow's statements only."""

    def __init__(self, adapted: Any, capacity: int, *, kept: bool = True):
        super().__init__(capacity)
        self._adapted = adapted
        self._kept = kept

    def __contains__(self, key: Any) -> bool:
        if not super().__contains__(key):
            return False
        entry = self[key]
        statement = entry[0]
        proxy: Any = self._adapted._connection
        if proxy is not None and not proxy.closed and isinstance(statement, Tied):
            raw: Any = proxy.raw
            found = statement._obj
            made_on: Any = getattr(found, "_connection", None)  # asyncpg's, and its reset count
            if made_on is raw and found._con_release_ctr == raw._pool_release_ctr and not found._state.closed:
                if statement._borrow is proxy:
                    return True
                if self._kept:  # an earlier borrow's: this one's now
                    self[key] = (tie(proxy, found), *entry[1:])
                    return True
        self.pop(key, None)
        return False
