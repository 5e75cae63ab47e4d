"""Opening one physical connection: connect, keepalive, probe; and the error if it fails."""

from __future__ import annotations

import math
import time

from ..drivers import Driver
from ..dsn import ConnectionSpec
from ..errors import ConnectError, bind
from ..net import Keepalive, SocketProbe, apply_keepalive
from ..retry import ConnectFailure
from ._state import Slot


def open_slot(
    driver: Driver,
    spec: ConnectionSpec,
    *,
    timeout_s: float,
    keepalive: Keepalive,
    autocommit: bool,
) -> Slot:
    """One attempt: the driver connects, tether arms its socket."""
    raw = driver.connect(spec, timeout_s=timeout_s, autocommit=autocommit)
    fd = driver.socket_fd(raw)
    probe = None
    if fd is not None:
        apply_keepalive(fd, keepalive)
        probe = SocketProbe(fd)
    now = time.monotonic()
    return Slot(raw=raw, probe=probe, created_at=now, expires_at=math.inf, generation=0)


def connect_error(
    driver: Driver, spec: ConnectionSpec, failure: ConnectFailure, *, pool: str | None = None
) -> ConnectError:
    """The error for a failed open: host, port, attempts and cause, never the password."""
    where = f" (pool {pool!r})" if pool else ""
    cause = scrub(str(failure.cause), spec)
    error = bind(ConnectError, driver.module.OperationalError)(
        f"could not connect to {spec.host}:{spec.port}{where} after {failure.attempts} "
        f"attempt(s) in {failure.elapsed_s:.2f} s: {type(failure.cause).__name__}: {cause}",
        host=spec.host,
        port=spec.port,
        attempts=failure.attempts,
    )
    error.__cause__ = failure.cause
    assert isinstance(error, ConnectError)
    return error


def scrub(text: str, spec: ConnectionSpec) -> str:
    """Driver messages may echo a connection string: never let a password through."""
    if spec.password is not None:
        secret = spec.password.reveal()
        if secret:
            text = text.replace(secret, "***")
    return text

