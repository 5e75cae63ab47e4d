"""``transaction(session_factory, fn)``: an ORM unit of work with ``pool.transaction``'s
commit safety.

Each run opens a session, runs ``fn(session)`` in its transaction and commits. A run that
fails before COMMIT on a broken connection (the server rolled it back), or on a CONNECT or
TRANSIENT fault, runs again under the retry policy. A COMMIT whose reply was lost is never
sent again: on PostgreSQL behind a tether pool, the transaction id learnt at the start
is asked about on another connection (``txid_status``): committed is a success, aborted
runs again; elsewhere ``tether.CommitOutcomeUnknown``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

from .._retry._async_engine import cancel_aware
from .._retry._classify import classify as tether_classify
from .._retry._engine import RetryDetails, Runner
from .._retry._policy import Retry
from ..errors import CommitOutcomeUnknown, SessionLost
from ..pool import _transaction, _transaction_async
from ..pool._transaction import _NOT_COMMITTED, _ROLLED_BACK, RESOLVE_S, _RunAgain
from ..pool._transaction_async import _RunAgain as _ARunAgain
from ..vocab import Classification, Fault

T = TypeVar("T")
_BROKEN = (Fault.IN_DOUBT, Fault.CONNECT)
_MARKER = "SELECT txid_current(), pg_backend_pid()"


def classify(exc: BaseException) -> Classification:
    """tether's classifier, looking inside SQLAlchemy's wrapper (``exc.orig``)."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        inner = tether_classify(exc.orig)
        if exc.connection_invalidated and inner.fault is Fault.FATAL:
            return Classification(Fault.IN_DOUBT, "SQLAlchemy invalidated the connection")
        return inner
    return tether_classify(exc)


def _lost(error: BaseException) -> bool:
    """tether's SessionLost: the session broke while idle, nothing was sent on it."""
    return isinstance(error.orig if isinstance(error, DBAPIError) else error, SessionLost)


def _broken(error: BaseException) -> bool:
    return _lost(error) or classify(error).fault in _BROKEN


def _tether_pool(bind: Any) -> Any:
    """The tether pool under an engine or connection; None when it has none."""
    engine = getattr(bind, "engine", bind)
    return getattr(getattr(engine, "pool", None), "tether", None)


def _runner(fn: Any, retry: Retry | int | bool | None, on_retry: Any, *, aio: bool) -> Runner:
    return Runner(retry, classify=cancel_aware(classify) if aio else classify, on_retry=on_retry,
                  name=getattr(fn, "__qualname__", "transaction"))


def transaction(
    session_factory: Callable[[], Any],
    fn: Callable[[Any], T],
    *,
    retry: Retry | int | bool | None = None,
    on_retry: Callable[[RetryDetails], object] | None = None,
) -> T:
    """Run ``fn(session)`` in one transaction of a new session, committed when it returns;
    see the module docstring. ``retry``: a ``tether.Retry``, an int of attempts, or False."""
    runner = _runner(fn, retry, on_retry, aio=False)
    return _transaction.run_until_done(runner.start(), lambda: _run_once(session_factory, fn))


def _run_once(session_factory: Callable[[], Any], fn: Callable[[Any], T]) -> T:
    with session_factory() as session:
        try:
            connection = session.connection()
            pool = _tether_pool(connection)
            marker = _marker(connection.exec_driver_sql(_MARKER).one()) if _resolvable(pool) else None
            result = fn(session)
            session.flush()
        except Exception as error:
            if _broken(error):
                raise _RunAgain(error, _ROLLED_BACK) from None
            raise
        try:
            session.commit()
        except Exception as error:
            if _lost(error):  # found broken before the COMMIT was sent
                raise _RunAgain(error, _ROLLED_BACK) from None
            if not _broken(error):
                raise  # the server answered: serialization failure, deferred constraint...
            if pool is None:
                raise CommitOutcomeUnknown("the connection broke during COMMIT, and the engine has no "
                                           "tether pool to ask for the outcome") from error
            if not _transaction._resolve(pool, marker, error, RESOLVE_S):
                raise _RunAgain(error, _NOT_COMMITTED) from None
        return result


async def async_transaction(
    session_factory: Callable[[], Any],
    fn: Callable[[Any], Awaitable[T]],
    *,
    retry: Retry | int | bool | None = None,
    on_retry: Callable[[RetryDetails], object] | None = None,
) -> T:
    """``transaction`` for ``async_sessionmaker``: ``await fn(session)``."""
    runner = _runner(fn, retry, on_retry, aio=True)
    return await _transaction_async.async_run_until_done(runner.start(),
                                                         lambda: _arun_once(session_factory, fn))


async def _arun_once(session_factory: Callable[[], Any], fn: Callable[[Any], Awaitable[T]]) -> T:
    async with session_factory() as session:
        try:
            connection = await session.connection()
            pool = _tether_pool(connection.sync_connection)
            marker = None
            if _resolvable(pool):
                marker = _marker((await connection.exec_driver_sql(_MARKER)).one())
            result = await fn(session)
            await session.flush()
        except Exception as error:
            if _broken(error):
                raise _ARunAgain(error, _ROLLED_BACK) from None
            raise
        try:
            await session.commit()
        except Exception as error:
            if _lost(error):  # found broken before the COMMIT was sent
                raise _ARunAgain(error, _ROLLED_BACK) from None
            if not _broken(error):
                raise
            if pool is None:
                raise CommitOutcomeUnknown("the connection broke during COMMIT, and the engine has no "
                                           "tether pool to ask for the outcome") from error
            if not await _transaction_async._resolve(pool, marker, error, RESOLVE_S):
                raise _ARunAgain(error, _NOT_COMMITTED) from None
        return result


def _resolvable(pool: Any) -> bool:
    return pool is not None and pool.dialect.commit_status_sql is not None


def _marker(row: Any) -> tuple[Any, ...]:
    return tuple(row)
