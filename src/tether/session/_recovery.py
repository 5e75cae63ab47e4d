# Generated from _recovery_async.py by tools/async_to_sync.py: edit that file instead.
"""Idle connection resiliency: a session that broke while idle comes back, state and all.

Before each statement the proxy polls its socket (no round trip). When the session broke
while idle and what it carried can be replayed, the owner (a pool) opens a new connection
under the connect-retry policy, the session's settings, prepared statements and LISTENs
are replayed in one round trip, and the statement runs there. When it cannot be replayed,
``SessionLost`` names why, the dead connection is closed at once, and every later call on
the proxy raises the error again: state is never lost silently. A break noticed *during*
a statement is the driver's error, in doubt, and the statement is never re-sent here (the
retry layer decides). The decisions are ``_replay``'s; this module does the I/O.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..drivers._settings import read_setting
from ..errors import SessionLost, bind
from ._replay import batches, settle, verify

if TYPE_CHECKING:
    from ..drivers import Driver
    from ..vocab import Replay, TxStatus
    from ._lease import Lease
    from ._log import SessionLog


def recover(lease: Lease, *, rolling_back: bool = False, refused: bool = False) -> Any:
    """Rebuild ``lease``'s broken session on a new connection and return the new driver
    connection, or raise ``SessionLost``."""
    owner, driver, log = lease.owner, lease.driver, lease.log
    assert log is not None
    old = lease.raw
    started = time.monotonic()
    status, reasons = settle(lease, rolling_back=rolling_back, refused=refused)
    if reasons:
        raise lose(lease, reasons)
    try:
        new = owner.reopen()
    except Exception as exc:
        raise lose(lease, (f"no new connection: {exc}",)) from exc
    try:
        restore(driver, old, new.raw, lease.saved, log, status)
    except Exception as exc:
        driver.close(new.raw)
        raise lose(lease, (f"replaying the session failed: {type(exc).__name__}: {exc}",)) from exc
    owner.adopt(lease, new, elapsed_s=time.monotonic() - started, replayed=log.describe())
    return lease.raw


def renew(lease: Lease) -> Any:
    """The server refused the session reset that rode on a request and ended the session
    (Babelfish and RESETCONNECTIONSKIPTRAN): that request did not run. A new connection
    takes the session's place, with what the borrow had set replayed as after an idle
    break, so that the request can go again there, once; the new driver connection."""
    if lease.log is not None:
        return recover(lease, refused=True)
    started = time.monotonic()
    try:
        new = lease.owner.reopen()
    except Exception as exc:
        raise lose(lease, (f"the server refused the session reset; no new connection: {exc}",)) from exc
    lease.owner.adopt(lease, new, elapsed_s=time.monotonic() - started,
                      replayed="nothing (the server had refused the session reset)")
    return lease.raw


def restore(driver: Driver, old: Any, new: Any, saved: dict[str, Any] | None, log: SessionLog,
                  status: TxStatus) -> None:
    """Client settings, then the session's state, then an open transaction's statements."""
    if saved:  # what the borrower set on the connection object
        driver.restore(new, {name: read_setting(old, name) for name in saved})
    driver.carry_over(old, new)
    session = log.session_replay()
    if session:
        replay(driver, new, session, outside_transaction=True)
    in_transaction = log.transaction_replay(status)
    if in_transaction:
        replay(driver, new, in_transaction, outside_transaction=False)
    verify(driver, old, new)


def replay(
    driver: Driver, raw: Any, statements: list[Replay], *, outside_transaction: bool
) -> None:
    """Run ``statements`` in order; consecutive ones without parameters as one batch,
    where the driver runs batches (PyMySQL without multi-statements does not)."""
    for text, params in batches(statements) if driver.batches else statements:
        if params is None and (outside_transaction or not driver.returns_cursors):
            driver.execute(raw, text)
        elif driver.returns_cursors:  # a cursor, in the connection's own transaction mode
            cursor = raw.cursor()
            try:
                (cursor.execute(text) if params is None else cursor.execute(text, params))
            finally:
                cursor.close()
        else:  # asyncpg: positional parameters
            raw.execute(text, *params)


def lose(lease: Lease, reasons: tuple[str, ...]) -> SessionLost:
    """The error for a session that cannot come back; the proxy keeps raising it, and its
    dead connection is closed now (the owner discards it when it comes back)."""
    error_class = bind(SessionLost, lease.driver.module.OperationalError)
    error = error_class(
        f"the session of {lease.describe(lease.epoch)} broke while idle and was not restored: "
        f"{'; '.join(reasons)}",
        reasons=reasons,
    )
    assert isinstance(error, SessionLost)
    lease.lost = error
    lease.driver.close(lease.raw)
    lease.owner.lost(lease)
    return error
