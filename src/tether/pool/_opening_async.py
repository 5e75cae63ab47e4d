"""Opening one physical connection: connect, keepalive, probe; and connect retry.

``connect_with_retry`` has SqlClient's semantics (``ConnectRetry``): the first retry at
once, later ones after the interval, all within the login timeout, each attempt given
only what is left of it. ``_opening.py``, for threads, is generated from this module.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .._acompat import acall_within, asleep
from .._fork import track
from .._retry import ConnectFailure, ConnectRetry
from ..net import Keepalive, SocketProbe, apply_keepalive
from ..session import Lease

if TYPE_CHECKING:
    from ..dialects import Dialect
    from ..drivers import AsyncDriver
    from ..dsn import ConnectionSpec

log = logging.getLogger("tether.pool")
T = TypeVar("T")


async def open_lease(
    driver: AsyncDriver,
    spec: ConnectionSpec,
    *,
    timeout_s: float,
    keepalive: Keepalive,
    autocommit: bool,
    owner: Any,
    dialect: Dialect,
    command_timeout: float = 0.0,
    extra: dict[str, Any] | None = None,
) -> Lease:
    """One attempt: the driver connects within ``timeout_s``, tether arms its socket.

    tether keeps the deadline itself: drivers count a login timeout in whole seconds
    (ODBC, DB-Library), round it up to 2 s (libpq), give it to each address a name
    resolves to (psycopg), or to each read of the handshake (PyMySQL). A driver still
    connecting at the deadline is left to its own timeout, and a connection it opens
    after all is closed. ``extra``: the pool's ``kwargs`` for the driver's connect.
    """
    connect = functools.partial(driver.connect, spec, timeout_s=timeout_s, autocommit=autocommit, extra=extra)
    raw = await acall_within(timeout_s, connect, late=driver.close, what="login")
    try:
        fd = driver.socket_fd(raw)
        probe = None
        if fd is not None:
            apply_keepalive(fd, keepalive)
            probe = SocketProbe(fd)
        lease = Lease(raw, probe, owner=owner, dialect=dialect, driver=driver,
                      command_timeout=command_timeout)
        track(lease)  # abandoned, never used or closed, in a forked child
    except BaseException:
        await driver.close(raw)  # never leave an opened connection behind
        raise
    return lease


async def connect_with_retry(
    open_once: Callable[[float], Awaitable[T]], policy: ConnectRetry
) -> T | ConnectFailure:
    """Call ``open_once(timeout_s)`` until it succeeds or the policy gives up.

    Returns the connection, or a ``ConnectFailure`` for the caller to turn into the
    error it wants to raise (the pool adds host, port and pool name).
    """
    start = time.monotonic()
    deadline = start + policy.login_timeout_s
    attempt = 0
    while True:
        attempt += 1
        try:
            return await open_once(max(deadline - time.monotonic(), 0.001))
        except Exception as exc:
            cause = exc
        delay = policy.delay_before(attempt + 1)
        now = time.monotonic()
        if attempt >= policy.attempts or now + delay >= deadline:
            return ConnectFailure(attempt, now - start, cause)
        log.debug("connect attempt %d failed (%s); retrying in %.1f s", attempt, cause, delay)
        if delay:
            await asleep(delay)
