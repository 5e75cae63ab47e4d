"""tether's exceptions.

::

    Error                          root of everything tether raises
    ├── ConfigError (ValueError)   a malformed connection string or an impossible setting
    ├── ConnectError               no connection after the retries: host, port, attempts, cause
    ├── PoolError
    │   ├── PoolTimeout            no connection free within the acquire timeout
    │   ├── PoolClosed             the pool was closed
    │   └── ConnectionReturned     a connection proxy used after it went back to the pool
    ├── SessionLost                a broken session could not be restored (idle resiliency)
    ├── CommandTimeout             a statement ran past its command timeout: cancelled or severed
    ├── CommitOutcomeUnknown       the reply to a COMMIT was lost and could not be resolved
    └── UnitOfWorkError            commit() or rollback() inside pool.transaction's function

A pool built on a driver raises its errors as subclasses of both tether's class and the
driver's own PEP 249 class (``PoolTimeout`` from a psycopg pool is also a
``psycopg.OperationalError``), so code that already catches the driver's errors keeps
working; see :func:`bind`.
"""

from __future__ import annotations

import threading
from typing import Any, TypeVar, cast

__all__ = [
    "CommandTimeout",
    "CommitOutcomeUnknown",
    "ConfigError",
    "ConnectError",
    "ConnectionReturned",
    "Error",
    "PoolClosed",
    "PoolError",
    "PoolTimeout",
    "SessionLost",
    "UnitOfWorkError",
    "bind",
]


class Error(Exception):
    """Root of tether's exceptions."""


class ConfigError(Error, ValueError):
    """A malformed connection string or setting; ``key`` names what was wrong."""

    def __init__(self, message: str, *, key: str | None = None, position: int | None = None):
        super().__init__(message)
        self.key = key
        self.position = position


class SettingTypeError(ConfigError, TypeError):
    """A setting of the wrong type (also a ``ValueError``, through ``ConfigError``)."""


class ConnectError(Error):
    """No connection could be opened after the connect retries."""

    def __init__(
        self,
        message: str,
        *,
        host: str | None = None,
        port: int | None = None,
        attempts: int = 0,
        blocking_until: float | None = None,
    ):
        super().__init__(message)
        self.host = host
        self.port = port
        self.attempts = attempts
        self.blocking_until = blocking_until


class PoolError(Error):
    """A problem with the pool itself rather than the database."""

    def __init__(self, message: str, *, pool: str | None = None):
        super().__init__(message)
        self.pool = pool


class PoolTimeout(PoolError):
    """No connection became free within the acquire timeout; during an outage,
    ``last_connect_error`` and ``connect_attempts`` say what the server answered."""

    def __init__(
        self,
        message: str,
        *,
        pool: str | None = None,
        waited: float = 0.0,
        idle: int = 0,
        busy: int = 0,
        waiting: int = 0,
        last_connect_error: BaseException | None = None,
        connect_attempts: int = 0,
    ):
        super().__init__(message, pool=pool)
        self.waited = waited
        self.idle = idle
        self.busy = busy
        self.waiting = waiting
        self.last_connect_error = last_connect_error
        self.connect_attempts = connect_attempts


class PoolClosed(PoolError):
    """The pool was closed."""


class ConnectionReturned(PoolError):
    """A connection proxy was used after it had been returned to its pool."""


class SessionLost(Error):
    """A broken session could not be restored; ``reasons`` says what made it unrecoverable."""

    def __init__(self, message: str, *, reasons: tuple[str, ...] = ()):
        super().__init__(message)
        self.reasons = reasons


class CommandTimeout(Error):
    """A statement ran past its command timeout (SqlClient's ``CommandTimeout``).

    ``severed`` is False when the server confirmed the cancel: the connection stays usable
    (an open transaction is aborted, as after any failed statement). True when the cancel
    got no answer in time and tether severed the socket: the connection is discarded, and
    whether the statement ran is unknown (a COMMIT's outcome is then resolved by
    ``pool.transaction``, or unknown).
    """

    def __init__(self, message: str, *, timeout_s: float, severed: bool):
        super().__init__(message)
        self.timeout_s = timeout_s
        self.severed = severed


class CommitOutcomeUnknown(Error):
    """The connection broke during COMMIT and the outcome could not be resolved."""

    def __init__(self, message: str, *, transaction_id: object = None):
        super().__init__(message)
        self.transaction_id = transaction_id


E = TypeVar("E", bound=Error)
_bound: dict[tuple[type[Error], type[BaseException]], type[Error]] = {}
_bound_lock = threading.Lock()


class UnitOfWorkError(Error):
    """``commit()`` or ``rollback()`` called inside ``pool.transaction``'s function."""

    def __init__(self, what: str):
        super().__init__(
            f"{what}() inside pool.transaction(): the pool commits when the function returns "
            "and rolls back when it raises, so that a lost COMMIT is never applied twice"
        )


def bind(cls: type[E], driver_base: type[BaseException] | None) -> type[E]:
    """Return a subclass of both ``cls`` and the driver's exception ``driver_base``.

    The subclass keeps ``cls``'s name, so tracebacks read ``tether.errors.PoolTimeout``;
    it is made once per pair and cached.
    """
    if driver_base is None or issubclass(cls, driver_base):
        return cls
    key = (cls, driver_base)
    with _bound_lock:
        made = _bound.get(key)
        if made is None:
            made = _bound[key] = _make(cls, driver_base)
        return cast("type[E]", made)


def _make(cls: type[Error], driver_base: type[BaseException]) -> type[Error]:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        cls.__init__(self, *args, **kwargs)
        self._tether_message = str(args[0]) if args else ""

    def __str__(self: Any) -> str:  # tether's message, not the driver's format of its arguments
        return str(getattr(self, "_tether_message", ""))

    namespace = {"__init__": __init__, "__str__": __str__, "__module__": cls.__module__,
                 "__qualname__": cls.__qualname__}  # fmt: skip
    bases: tuple[type, ...] = (cls, driver_base)
    missing = _required_after_message(driver_base)
    if missing:  # mssql-python's errors take (driver_error, ddbc_error), not a message
        bases = (cls, _padded_init(driver_base, missing), driver_base)
    made = type(cls.__name__, bases, namespace)
    return made


def _required_after_message(driver_base: type[BaseException]) -> int:
    """How many positional arguments the driver's ``__init__`` requires beyond a message."""
    import inspect

    try:
        parameters = list(inspect.signature(driver_base.__init__).parameters.values())[1:]
    except (TypeError, ValueError):  # a C type's __init__: takes *args
        return 0
    required = [p for p in parameters if p.default is p.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]  # fmt: skip
    return max(0, len(required) - 1)


def _padded_init(driver_base: type[BaseException], missing: int) -> type:
    """Sits between tether's class and the driver's in the MRO: tether's ``__init__``
    passes a message on, this passes the driver what else it requires, empty."""

    class Padded(Exception):
        def __init__(self, message: object = "", *args: Any) -> None:
            super().__init__(message, *args, *([""] * missing))

    Padded.__name__ = Padded.__qualname__ = f"_{driver_base.__name__}Init"
    return Padded
