# Generated from _base_async.py by tools/async_to_sync.py: edit that file instead.
"""What the pool and the session need from a Python database driver: one contract.

A driver module subclasses ``Driver`` (for ``tether.Pool``) or ``Driver`` (for
``tether.Pool``, generated from this module): the same methods in both, the calls that
make a round trip awaited in the first. The ones every driver must write raise
``NotImplementedError`` here; the optional capabilities have the defaults that fit a
PEP 249 driver, so nothing asks ``hasattr``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ._settings import write_setting

if TYPE_CHECKING:
    from ..dsn import ConnectionSpec
    from ..vocab import TxStatus


class Opening(Protocol):
    """A transaction's first statement, sent with its BEGIN in one round trip (``opening``)."""

    # After ``run``: the server said the transaction wrote nothing yet and its COMMIT cannot
    # fail (no transaction id assigned, not serializable): its end may go to the background.
    quiet: bool
    marker: tuple[Any, ...] | None  # the ``mark`` statement's row, when one was asked for
    round_trip_s: float  # how long the round trip took (is the server near or far?)
    # After ``run`` or ``begin`` failed: the server's goodbye answered the BEGIN (or, sent
    # alone by ``begin``, the session ended under it), so nothing behind it ran (the
    # statement may go again elsewhere).
    refused: bool

    def run(self, sql: Any, params: Any = None, *, prepare: bool | None = None,
                  binary: bool | None = None) -> Any:
        """Run it as the cursor's ``execute`` would (same result, same errors)."""

    def begin(self) -> None:
        """Send the BEGIN alone, as the driver would before the statement (where the
        pipeline does not pay); the cursor's ``execute`` then sends the statement."""


class Driver:
    """One Python package's way of talking to one database family."""

    name: str  # as in a URL's ``+driver`` suffix
    dialect: str
    # Has ``OperationalError`` and ``InterfaceError``: tether's errors are bound to them.
    module: Any

    # -- capabilities, with the defaults of a PEP 249 driver ------------------------------------
    # The transaction status follows SQL-level BEGIN/COMMIT too (ODBC and DB-Library drivers
    # cannot see a BEGIN TRAN sent in autocommit mode: then the session log trusts the SQL).
    exact_tx_status = True
    # Several statements run as one query (PyMySQL without multi-statements: one each).
    batches = True
    # ``execute()`` returns a cursor (PEP 249); asyncpg returns a status, and its methods
    # that take SQL first are listed in ``sql_methods`` for the proxy to note.
    returns_cursors = True
    sql_methods: frozenset[str] = frozenset()
    # The driver reads its socket as data arrives (asyncpg's transport): a FIN or the
    # server's goodbye is consumed, and the socket closed and its number freed for reuse,
    # so the pool asks ``is_closed`` before it trusts the probe.
    reads_ahead = False
    # ``cancel`` stops a running statement from another thread (command timeouts); a
    # driver that cannot has its connection severed instead.
    cancels = False
    # A statement the server cancelled ends in an error, so one that returns finished
    # first; where a cancelled one may return as if done (fewer rows), the proxy raises.
    cancel_raises = True
    # ``cancel`` works on the connection's own handles (ODBC's SQLCancel) rather than over a
    # connection of its own: nothing may close the connection until it has returned.
    cancel_holds_connection = False
    # ``fetch*`` may wait on the network (rows stream in as read); psycopg's client-side
    # cursors hold every row once ``execute`` returns.
    fetch_reads = True
    # Whether making a cursor may wait on the server (python-tds cancels its previous
    # cursor's unread results), so the proxy bounds it by the command timeout.
    cursor_waits = True
    # ``opening`` pays even where round trips are cheap (asyncio: each one is a trip through
    # the event loop, which costs more than the pipeline); otherwise only where they are dear.
    pipelines_near = False

    # -- what every driver writes -------------------------------------------------------------

    def connect(self, spec: ConnectionSpec, *, timeout_s: float, autocommit: bool | None,
                      extra: dict[str, Any] | None = None) -> Any:
        """Open one connection within ``timeout_s``; raise the driver's own error. ``extra``:
        the pool's ``kwargs`` for the driver's connect, winning over the spec's."""
        raise NotImplementedError

    def socket_fd(self, raw: Any) -> int | None:
        """The connection's socket descriptor, or None where the driver hides it."""
        raise NotImplementedError

    def tx_status(self, raw: Any) -> TxStatus:
        """The connection's transaction status, known without a round trip."""
        raise NotImplementedError

    def ping(self, raw: Any, sql: str, *, timeout_s: float) -> bool:
        """Run ``sql`` within ``timeout_s``; False if it failed or timed out."""
        raise NotImplementedError

    def execute(self, raw: Any, sql: str) -> None:
        """Run one statement for the pool (ping, reset, replay) outside a transaction,
        discarding any result."""
        raise NotImplementedError

    def reset(self, raw: Any, changes: tuple[str, ...]) -> bool:
        """Put the session back as it was after login, outside any transaction, given
        what the borrow changed (``changes`` from the dialect's reading; empty when the
        pool resets on every return). False when it cannot: the pool then discards the
        connection. The cheapest correct way is the driver's to choose (a reset flag on
        the next request, an RPC, or SQL)."""
        raise NotImplementedError

    def close(self, raw: Any) -> None:
        """Close within a bounded time, swallowing the driver's own errors."""
        raise NotImplementedError

    # -- what most drivers inherit --------------------------------------------------------------

    def cancel(self, raw: Any, cursor: Any, timeout_s: float) -> None:
        """Ask the server to stop the statement running on ``raw`` (through ``cursor``
        where the driver cancels through one), from a thread other than the one waiting
        for it, within ``timeout_s``. Plain ``def`` for both contracts: the watchdog's
        thread calls it, and never awaits."""

    def is_closed(self, raw: Any) -> bool:
        """The driver already knows the connection is gone and may have freed its socket
        (asyncpg reads as data arrives); most leave the socket for the probe to tell."""
        return False

    def autocommit(self, raw: Any) -> bool | None:
        """The connection's autocommit mode; None when it cannot be read without a round trip."""
        value = getattr(raw, "autocommit", None)
        return value if isinstance(value, bool) else None

    def commit(self, raw: Any) -> None:
        raw.commit()

    def rollback(self, raw: Any) -> None:
        raw.rollback()

    def restore(self, raw: Any, saved: dict[str, Any]) -> None:
        """Put back client-side settings the borrower changed (``autocommit``, ...)."""
        for name, value in saved.items():
            write_setting(raw, name, value)

    def opening(self, raw: Any, cursor: Any, sql: Any, params: Any, *, mark: str | None,
                ask: bool, guard: bool = False) -> Opening | None:
        """A way to send ``sql`` together with the transaction's BEGIN, in one round trip,
        when ``raw`` is in transaction mode with none open; None to send it as the driver
        does (most drivers: their BEGIN is implicit, or rides on the statement already).
        ``mark``: a statement whose row identifies the transaction, for commit safety,
        sent after the BEGIN; ``ask``: ask whether it wrote (``Opening.quiet``); ``guard``:
        in autocommit, lead the statement with one whose answer comes first, so that the
        server's goodbye answering it proves the statement never ran. No I/O here."""
        return None

    def begin_refused(self, exc: BaseException) -> bool:
        """After a transaction's BEGIN, sent alone (asyncpg's ``transaction()``), failed with
        ``exc``: whether that was the server's goodbye (the session ended before anything of
        the borrower's was sent). Drivers whose BEGIN rides on the statement: False."""
        return False

    def reset_refused(self, raw: Any) -> bool:
        """After a request failed: whether the server refused the session reset that rode
        on it (so the request did not run, and the session is gone). Known without a round
        trip; only drivers that reset lazily, on the next request, can see it."""
        return False

    def forget_session(self, raw: Any) -> None:
        """After a session reset: drop client caches of server state (prepared statements)."""

    def carry_over(self, old: Any, new: Any) -> None:
        """After idle resiliency replaced ``old``: what the application configured on the
        connection object itself (adapters, handlers) comes along."""

    def reported_settings(self, raw: Any) -> dict[str, str | None]:
        """Settings the server reported and the client kept (PostgreSQL's ParameterStatus),
        readable even after the session died; empty where there are none."""
        return {}
