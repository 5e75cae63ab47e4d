"""``pool.transaction(fn)``: a unit of work that is re-run on transient faults and is
never applied twice.

Each run borrows a connection, runs ``fn(conn)`` inside one transaction and commits.
Where a run fails decides what happens next:

- before COMMIT was sent: the server rolls the transaction back when the connection
  breaks, so a broken connection there (IN_DOUBT for a lone statement) is as safe to run
  again as a CONNECT or TRANSIENT fault;
- during COMMIT: the reply was lost (or the COMMIT ran past its command timeout, which a
  cancel may or may not have stopped in time) and the transaction may have committed. Where the
  dialect can tell (PostgreSQL: the transaction id learnt before committing, then
  ``txid_status()`` on another connection), the outcome is resolved: committed is a
  success, aborted is run again. Otherwise ``tether.CommitOutcomeUnknown`` is raised with
  the transaction id. A COMMIT is never simply sent again.

``_transaction.py``, for ``tether.Pool``, is generated from this module by
``tools/async_to_sync.py``.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from .. import events
from .._acompat import asleep
from .._retry._engine import RetryDetails, RetryState, Runner
from ..errors import CommandTimeout, CommitOutcomeUnknown, Error, SessionLost
from ..session import lease_of
from ..vocab import Classification, Fault, TxStatus

if TYPE_CHECKING:
    from .._retry._policy import Retry
    from ..dialects import Dialect
    from ..session import AsyncConnection, Lease
    from ._pool_async import AsyncPool

log = logging.getLogger("tether.pool")
T = TypeVar("T")
P = ParamSpec("P")

RESOLVE_S = 10.0  # how long to keep asking for a lost COMMIT's outcome
# ... and for one that ran past its command timeout: the unit of work returns within the
# timeout + 1 s (the watchdog severs at + 0.5 s), as a lone statement does
RESOLVE_TIMED_OUT_S = 0.5
GRACE_S = 2.0  # how long an "in progress" COMMIT may run before its backend is ended
_BROKEN = (Fault.IN_DOUBT, Fault.CONNECT)
_ROLLED_BACK = "the connection broke before COMMIT: the server rolled the transaction back"
_NOT_COMMITTED = "the COMMIT's reply was lost, and the server says the transaction aborted"


class _RunAgain(Exception):
    """A run failed in a way this module classified itself (safe to run again)."""

    def __init__(self, error: Exception, reason: str):
        super().__init__(reason)
        self.error = error
        self.classification = Classification(Fault.TRANSIENT, reason)


async def async_run_transaction(
    pool: AsyncPool, fn: Callable[[AsyncConnection], Awaitable[T]], runner: Runner, *, timeout: float | None
) -> T:
    """Run ``fn`` in a transaction under ``runner``'s policy; see the module docstring."""
    return await async_run_until_done(runner.start(), lambda: _run_once(pool, fn, runner, timeout))


async def async_run_until_done(state: RetryState, run_once: Callable[[], Awaitable[T]]) -> T:
    """``run_once()`` again, after the policy's delay, until it returns or ``state`` gives
    up; a ``_RunAgain`` is classified as it says (``tether.sqlalchemy``'s unit uses it too)."""
    while True:
        try:
            return await run_once()
        except _RunAgain as again:
            details = state.failed(again.error, again.classification)
            if details is None:
                raise again.error from None
        except Exception as error:
            details = state.failed(error)
            if details is None:
                raise
        await asleep(details.delay_s)


def async_transactional(
    pool: AsyncPool,
    *,
    retry: Retry | int | bool | None,
    on_retry: Callable[[RetryDetails], object] | None,
    timeout: float | None,
) -> Callable[[Callable[Concatenate[AsyncConnection, P], Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """``@pool.transactional(...)``: ``fn(conn, ...)`` runs as ``pool.transaction``."""

    def decorate(
        fn: Callable[Concatenate[AsyncConnection, P], Awaitable[T]],
    ) -> Callable[P, Awaitable[T]]:
        @functools.wraps(fn)
        async def unit(*args: P.args, **kwargs: P.kwargs) -> T:
            async def bound(conn: AsyncConnection) -> T:
                return await fn(conn, *args, **kwargs)

            bound.__qualname__ = fn.__qualname__
            return await pool.transaction(bound, retry=retry, on_retry=on_retry, timeout=timeout)

        return unit

    return decorate


async def _run_once(
    pool: AsyncPool, fn: Callable[[AsyncConnection], Awaitable[T]], runner: Runner, timeout: float | None
) -> T:
    conn = await pool.getconn(timeout)  # ConnectError / PoolTimeout: CONNECT faults
    lease = lease_of(conn)
    try:
        try:
            await _begin(conn, pool.dialect)
            lease.unit = True  # fn may not commit or roll back itself
            result = await fn(conn)
            marker = lease.marker
        except Exception as error:
            if isinstance(error, SessionLost) or runner.classify(error).fault is Fault.IN_DOUBT:
                raise _RunAgain(error, _ROLLED_BACK) from None
            raise
        lease.unit = False
        if marker is None and lease.mark is not None and pool._status(lease) is TxStatus.IN_TRANSACTION:
            marker = await _mark(conn, lease)  # the first statement could not carry it
        try:
            await conn.commit()
        except SessionLost as lost:  # found broken before the COMMIT was sent
            raise _RunAgain(lost, _ROLLED_BACK) from None
        except Exception as error:
            if not isinstance(error, CommandTimeout) and runner.classify(error).fault not in _BROKEN:
                raise  # the server answered: serialization failure, deferred constraint...
            await conn.close()  # broken: discarded, and out of the way
            budget = RESOLVE_TIMED_OUT_S if isinstance(error, CommandTimeout) else RESOLVE_S
            try:
                committed = await _resolve(pool, marker, error, budget)
            except CommitOutcomeUnknown:
                pool._report(events.CommitResolved(pool.name, "unknown"))
                raise
            pool._report(events.CommitResolved(pool.name, "committed" if committed else "aborted"))
            if not committed:
                raise _RunAgain(error, _NOT_COMMITTED) from None
        return result
    finally:
        lease.unit = False
        await conn.close()


async def _begin(conn: AsyncConnection, dialect: Dialect) -> None:
    """Put the connection in transaction mode; the driver's BEGIN goes with fn's first
    statement. Where the dialect can identify a transaction (PostgreSQL: its id, and the
    backend), ``mark_sql`` rides in the same round trip (``lease.marker``), or, when that
    first statement could not carry it, is asked before COMMIT (``_mark``)."""
    lease = lease_of(conn)
    driver = lease.driver
    if not driver.returns_cursors:
        raise Error(
            "pool.transaction needs a driver whose execute() returns a cursor (psycopg); "
            f"{driver.name} has its own transactions: use those"
        )
    if conn.autocommit:
        await conn.set_autocommit(False)  # the proxy puts it back on return
    lease.mark = dialect.mark_sql


async def _mark(conn: AsyncConnection, lease: Lease) -> Any:
    """The marker of the open transaction, asked in a round trip of its own."""
    assert lease.mark is not None
    row = await (await conn.execute(lease.mark)).fetchone()
    return None if row is None else tuple(row)


async def _resolve(pool: AsyncPool, marker: Any, error: Exception, budget_s: float) -> bool:
    """Whether the transaction committed; ``CommitOutcomeUnknown`` when that can't be
    learnt within ``budget_s``."""
    dialect = pool.dialect
    status_sql = dialect.commit_status_sql
    if marker is None or status_sql is None:
        raise CommitOutcomeUnknown(
            f"the connection broke during COMMIT and {dialect.name} cannot tell the outcome",
        ) from error
    xid, backend = marker
    start = time.monotonic()
    deadline = start + budget_s
    last: BaseException = error
    while (left := deadline - time.monotonic()) > 0:
        # "in progress" for a while: the COMMIT may still be running (a slow deferred
        # trigger, a synchronous replica); past GRACE_S, end the old backend, which can
        # never receive a COMMIT now, so that the answer becomes final.
        end_backend = backend if time.monotonic() - start > GRACE_S else None
        try:
            status = await _ask(pool, status_sql, xid, end_backend, left)
        except CommitOutcomeUnknown:
            raise
        except Exception as failure:  # the server may be restarting: ask again
            last = failure
            status = "unreachable"
        if status == "committed":
            log.warning("a COMMIT's reply was lost; transaction %s did commit", xid)
            return True
        if status == "aborted":
            return False
        await asleep(0.05)
    raise CommitOutcomeUnknown(
        f"the connection broke during COMMIT of transaction {xid} and its outcome could not "
        f"be learnt within {budget_s:g} s (last: {type(last).__name__}: {last})",
        transaction_id=xid,
    ) from error


async def _ask(pool: AsyncPool, status_sql: str, xid: Any, backend: Any, left_s: float) -> str:
    async with pool.connection(timeout=left_s) as conn:
        await conn.set_autocommit(True)
        conn.command_timeout = left_s
        lease_of(conn).grace = 0.0  # a question, not work: severed at once, within the budget
        cursor = await conn.execute(status_sql, (xid,))
        row = await cursor.fetchone()
        status = None if row is None else row[0]
        if status == "in progress" and backend is not None:
            # A role may end its own backends; the next question gets a final answer.
            await conn.execute(pool.dialect.terminate_sql, (backend,))
        elif status not in ("committed", "aborted", "in progress"):
            raise CommitOutcomeUnknown(
                f"txid_status({xid}) answered {status!r}: the outcome is no longer known",
                transaction_id=xid,
            )
        return str(status)
