"""The pool's hooks, with psycopg_pool's names and meaning: ``configure``, ``reset``, ``check``,
and ``kwargs`` for the driver's connect.

Each hook receives the driver's own connection (a ``psycopg.Connection``, an asyncpg
``Connection``, ...), not tether's proxy: type registration needs the real one
(``register_hstore(info, conn)``, ``register_vector(conn)`` check ``isinstance``), and what
a hook does there is the pool's business, not the borrower's, so it never counts as a
session change that forces a reset. A hook that raises, or leaves a transaction open,
gets its connection discarded: it is never lent half-configured.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from .._validate import type_error
from ..dsn import ConnectionSpec, Secret

Hook = Callable[[Any], object]  # the async pool's may return an awaitable

# Keys of ``kwargs`` that carry a password: moved into the spec, whose password is never shown.
PASSWORD_KEYS = ("password", "passwd", "pwd")
# Keys that pool arguments own: given in kwargs they would contradict them.
OWNED_KEYS = {"autocommit": "autocommit"}


@dataclasses.dataclass(frozen=True, slots=True)
class Hooks:
    """The hooks a pool runs; None: that hook is not set."""

    configure: Hook | None = None
    reset: Hook | None = None
    check: Hook | None = None
    # Extra keyword arguments for the driver's connect, without any password (see ``split``).
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)


async def afinish_hook(result: object) -> None:
    """The async pool's hooks may be coroutine functions: await what they return."""
    if inspect.isawaitable(result):
        await result


def finish_hook(result: object) -> None:
    """The threaded pool's hooks are plain functions: an awaitable means an async one."""
    if inspect.isawaitable(result):
        close = getattr(result, "close", None)
        if close is not None:
            close()  # no "never awaited" warning: the error says it
        raise TypeError("a hook of the threaded Pool must be a plain function, not a coroutine function")


def hook_name(hook: Hook) -> str:
    """A hook's name for a log line: ``module.qualname`` where it has one."""
    name = getattr(hook, "__qualname__", None) or type(hook).__qualname__
    module = getattr(hook, "__module__", None)
    return f"{module}.{name}" if module and module != "builtins" else str(name)


def check_hook(name: str, value: object) -> None:
    if not callable(value):
        raise type_error(name, "a callable taking the driver's connection, or None", value)


def check_kwargs(name: str, value: object) -> None:
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise type_error(name, "a dict of the driver's connect keyword arguments", value)
    for key, argument in OWNED_KEYS.items():
        if key in value:
            raise type_error(name, f"without {key!r} (use the pool's {argument} argument)", value)


def split(spec: ConnectionSpec, kwargs: Mapping[str, Any] | None) -> tuple[ConnectionSpec, dict[str, Any]]:
    """Merge ``kwargs`` with the connection string: a keyword argument wins over the
    string, as every pool argument does. A password among them moves into the spec, so
    the pool's repr, logs and error messages hide it as they hide the string's."""
    rest = dict(kwargs or {})
    for key in PASSWORD_KEYS:
        if key in rest:
            password = rest.pop(key)
            if password is not None:
                spec = dataclasses.replace(spec, password=Secret(str(password)))
    return spec, rest
