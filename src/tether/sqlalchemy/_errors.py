"""tether's errors in SQLAlchemy's terms: which of them are disconnects.

SQLAlchemy invalidates a connection (and the engine goes on, as with ``pool_pre_ping``)
when its dialect's ``is_disconnect`` says so. It cannot say so for what tether raises: a
session that broke while idle and could not be rebuilt (``SessionLost``), a COMMIT whose
outcome is unknown, a connection tether found dead. The ``handle_error`` listener below
marks those, and keeps SQLAlchemy from recycling the whole pool for one broken
connection: tether checks each at checkout, without a round trip.
"""

from __future__ import annotations

from typing import Any

from ..errors import CommandTimeout, CommitOutcomeUnknown, SessionLost
from ..session import AsyncConnection, Connection, lease_of
from ..vocab import TxStatus

_ALWAYS = (SessionLost, CommitOutcomeUnknown)


def proxy_of(dbapi_connection: Any) -> Connection | AsyncConnection | None:
    """tether's proxy behind SQLAlchemy's DBAPI connection (asyncio: its adapter)."""
    for candidate in (dbapi_connection, getattr(dbapi_connection, "_connection", None)):
        if isinstance(candidate, (Connection, AsyncConnection)):
            return candidate
    return None


def broken(exc: BaseException, dbapi_connection: Any) -> bool:
    """Whether ``exc`` left the connection unusable: tether's own verdicts, or a driver
    connection that is closed or broken."""
    if isinstance(exc, _ALWAYS):
        return True
    if isinstance(exc, CommandTimeout):
        return bool(exc.severed)
    proxy = proxy_of(dbapi_connection)
    if proxy is None or proxy.closed:
        return False
    lease = lease_of(proxy)
    if lease.lost is not None:
        return True
    try:
        return lease.driver.is_closed(lease.raw) or lease.driver.tx_status(lease.raw) is TxStatus.BROKEN
    except Exception:  # a driver that cannot tell a closed connection's status: broken
        return True


def on_handle_error(context: Any) -> None:
    """The ``handle_error`` listener of engines on a tether pool."""
    context.invalidate_pool_on_disconnect = False
    if context.is_disconnect:
        return
    connection = context.connection
    dbapi_connection = None
    if connection is not None and not connection.invalidated:
        fairy = connection._dbapi_connection
        dbapi_connection = getattr(fairy, "dbapi_connection", None)
    error = context.original_exception
    if broken(error, dbapi_connection) or isinstance(getattr(error, "__cause__", None), _ALWAYS):
        context.is_disconnect = True
