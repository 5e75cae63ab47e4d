"""Idle connection resiliency: a session that broke while idle comes back, state and all.

Before each statement the proxy polls its socket (no round trip). When the session broke
while idle and what it carried can be replayed, the owner (a pool) opens a new connection
under the connect-retry policy, the session's settings, prepared statements and LISTENs
are replayed in one round trip, and the statement runs there. When it cannot be replayed,
``SessionLost`` names why, and every later call on the proxy raises it again: state is
never lost silently. A break noticed *during* a statement is the driver's error, in doubt,
and the statement is never re-sent here (the retry layer decides).

The I/O for the threaded proxy is here; ``_async_recovery`` is its asyncio twin.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..errors import SessionLost, bind
from ..sql import Replay, TxStatus
from ._tracking import read_setting, write_setting

if TYPE_CHECKING:
    from ..drivers import Driver
    from ._log import SessionLog
    from ._tracking import Tracking


def recover(conn: Any, *, rolling_back: bool = False) -> Any:
    """Rebuild ``conn``'s broken session on a new connection and return the new raw
    connection, or raise ``SessionLost``. ``rolling_back``: the caller is about to roll
    back, so an open transaction is not a reason to give up."""
    owner, driver, log = conn._owner, conn._driver, conn._log
    old = conn._raw
    started = time.monotonic()
    status = settle(conn, rolling_back=rolling_back)
    try:
        new = owner.reopen(conn)
    except Exception as exc:
        raise lose(conn, (f"no new connection: {exc}",)) from exc
    try:
        restore(driver, old, new.raw, conn.saved, log, status)
    except Exception as exc:
        owner.drop(new)
        raise lose(conn, (f"replaying the session failed: {type(exc).__name__}: {exc}",)) from exc
    owner.swap(conn, new, elapsed_s=time.monotonic() - started, replayed=log.describe())
    conn.__dict__["_raw"] = new.raw
    return new.raw


def settle(conn: Any, *, rolling_back: bool) -> TxStatus:
    """The status to rebuild from, or ``SessionLost`` naming why the session cannot be."""
    driver, log = conn._driver, conn._log
    status: TxStatus = driver.tx_status(conn._raw)  # the last status it saw: nothing was sent since
    if status is TxStatus.BROKEN:  # the driver saw the break: idle, or a statement failed
        if log.tx_open:
            log.tx_pure = False  # which of the two is not known: the transaction is gone
        status = TxStatus.IN_TRANSACTION if log.tx_open else TxStatus.IDLE
    if rolling_back:
        log.end(commit=False)
        status = TxStatus.IDLE
    reasons = log.unrecoverable(status)
    if reasons:
        raise lose(conn, reasons)
    return status


def restore(driver: Driver, old: Any, new: Any, saved: dict[str, Any] | None, log: SessionLog,
            status: TxStatus) -> None:
    """Client settings, then the session's state, then an open transaction's statements."""
    for name in saved or ():  # what the borrower set on the connection object
        write_setting(new, name, read_setting(old, name))  # PyMySQL: autocommit is a method
    carry_over = getattr(driver, "carry_over", None)
    if carry_over is not None:
        carry_over(old, new)
    session = log.session_replay()
    if session:
        replay(driver, new, session, outside_transaction=True)
    in_transaction = log.transaction_replay(status)
    if in_transaction:
        replay(driver, new, in_transaction, outside_transaction=False)
    verify(driver, old, new)


def replay(driver: Driver, raw: Any, statements: list[Replay], *, outside_transaction: bool) -> None:
    """Run ``statements`` in order; consecutive ones without parameters as one batch."""
    # A driver that sends one statement per query (PyMySQL without CLIENT_MULTI_STATEMENTS)
    # says so with ``batches = False``: its statements go one by one.
    for text, params in batches(statements) if getattr(driver, "batches", True) else statements:
        if outside_transaction and params is None:
            driver.execute(raw, text)
        else:
            cursor = raw.cursor()
            try:
                cursor.execute(text) if params is None else cursor.execute(text, params)
            finally:
                cursor.close()


def batches(statements: list[Replay]) -> list[Replay]:
    out: list[Replay] = []
    texts: list[str] = []
    for text, params in statements:
        if params is None:
            texts.append(text)
            continue
        if texts:
            out.append((";\n".join(texts), None))
            texts = []
        out.append((text, params))
    if texts:
        out.append((";\n".join(texts), None))
    return out


def verify(driver: Any, old: Any, new: Any) -> None:
    """Where the server reports settings (PostgreSQL's ParameterStatus), compare what the
    old session last reported with the new one's: a change tether did not see (a function
    that called set_config) shows up here instead of as silently different results."""
    reported = getattr(driver, "reported_settings", None)
    if reported is None:
        return
    before, after = reported(old), reported(new)
    for name, value in before.items():
        if after.get(name) != value:
            now = after.get(name)
            raise ValueError(f"setting {name} was {value!r} before the break and is {now!r} after")


def lose(conn: Tracking, reasons: tuple[str, ...]) -> SessionLost:
    """The error for a session that cannot come back; the proxy keeps raising it."""
    owner, driver = conn._owner, conn.__dict__["_driver"]
    error_class = bind(SessionLost, driver.module.OperationalError)
    error = error_class(
        f"the session of {owner.describe(conn)} broke while idle and was not restored: {'; '.join(reasons)}",
        reasons=reasons,
    )
    assert isinstance(error, SessionLost)
    conn.__dict__["_lost"] = error
    owner.lost(conn)
    return error
