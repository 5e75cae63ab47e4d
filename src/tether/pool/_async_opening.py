"""Opening one physical connection on the event loop: the twin of ``_opening.open_slot``,
and connect retry with ``tether.retry._connect``'s semantics (its policy, its failure)."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..drivers._async_base import AsyncDriver
from ..dsn import ConnectionSpec
from ..net import Keepalive, SocketProbe, apply_keepalive
from ..retry import ConnectFailure, ConnectRetry
from ._state import Slot

log = logging.getLogger("tether.pool")
T = TypeVar("T")


async def open_slot_async(
    driver: AsyncDriver,
    spec: ConnectionSpec,
    *,
    timeout_s: float,
    keepalive: Keepalive,
    autocommit: bool,
) -> Slot:
    """One attempt: the driver connects, tether arms its socket."""
    raw = await driver.connect(spec, timeout_s=timeout_s, autocommit=autocommit)
    fd = driver.socket_fd(raw)
    probe = None
    if fd is not None:
        apply_keepalive(fd, keepalive)
        probe = SocketProbe(fd)
    now = time.monotonic()
    return Slot(raw=raw, probe=probe, created_at=now, expires_at=math.inf, generation=0)


async def connect_with_retry_async(
    open_once: Callable[[float], Awaitable[T]], policy: ConnectRetry
) -> T | ConnectFailure:
    """Await ``open_once(timeout_s)`` until it succeeds or the policy gives up.

    The same attempts, gaps and login-timeout bound as ``connect_with_retry``; the
    waits are ``asyncio.sleep`` so the loop keeps serving everyone else.
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
            await asyncio.sleep(delay)
