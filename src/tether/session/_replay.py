"""Idle resiliency's decisions, without I/O: whether a broken session can come back,
how its statements are batched for replay, and whether the new session matches the old.
``_recovery_async`` (and the ``_recovery`` generated from it) carry them out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..vocab import Replay, TxStatus

if TYPE_CHECKING:
    from ._lease import Lease


def settle(lease: Lease, *, rolling_back: bool, refused: bool = False) -> tuple[TxStatus, tuple[str, ...]]:
    """The status to rebuild from, and why the session cannot be (empty when it can).

    ``rolling_back``: the caller is about to roll back, so an open transaction is not a
    reason to give up. ``refused``: the server refused the reset that rode on the last
    request, which therefore did not run; the log says where the session was.

    The same rule for every dialect and driver: an open transaction that ran only
    replayable statements is replayed, whether the driver or the socket saw the break.
    A statement that failed (the break in the middle of it, or any error) has already
    made its transaction unreplayable (``SessionLog.failed``)."""
    log = lease.log
    assert log is not None
    # The last status the driver saw (nothing was sent since), unless it saw the break.
    status = TxStatus.BROKEN if refused else lease.driver.tx_status(lease.raw)
    if status is TxStatus.BROKEN:
        status = TxStatus.IN_TRANSACTION if log.tx_open else TxStatus.IDLE
    if rolling_back:
        log.end(commit=False)
        status = TxStatus.IDLE
    return status, log.unrecoverable(status)


def batches(statements: list[Replay]) -> list[Replay]:
    """Consecutive statements without parameters joined into one batch (one round trip)."""
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
    before, after = driver.reported_settings(old), driver.reported_settings(new)
    for name, value in before.items():
        if after.get(name) != value:
            now = after.get(name)
            raise ValueError(f"setting {name} was {value!r} before the break and is {now!r} after")
