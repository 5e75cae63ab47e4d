"""Choosing an asyncio driver: ``load_async_driver``, the twin of ``load_driver``.

The URL's ``+driver`` names the package (``postgresql+asyncpg://``); psycopg, the
default, brings its ``AsyncConnection``, so a plain ``postgresql://`` URL works for both
``tether.Pool`` and ``tether.AsyncPool``.
"""

from __future__ import annotations

import importlib

from ..errors import ConfigError
from ._async_base import AsyncDriver

# dialect -> {driver name in URLs: module here}, in order of preference.
ASYNC_KNOWN: dict[str, dict[str, str]] = {
    "postgresql": {"psycopg": "psycopg_async", "asyncpg": "asyncpg"},
}


def load_async_driver(dialect: str, name: str | None = None) -> AsyncDriver:
    """The async driver ``name`` for ``dialect``, or the first installed default."""
    known = ASYNC_KNOWN.get(dialect, {})
    if name is not None and name not in known:
        raise ConfigError(
            f"no asyncio driver {name!r} for {dialect}; known: {', '.join(known) or 'none'} "
            "(for a threaded application use tether.Pool)",
            key="driver",
        )
    missing: list[str] = []
    for candidate in (name,) if name else tuple(known):
        try:
            module = importlib.import_module(f"{__package__}.{known[candidate]}")
        except ImportError as exc:
            missing.append(f"{candidate} ({exc})")
            continue
        found: AsyncDriver = module.driver
        return found
    raise ConfigError(
        f"no asyncio driver for {dialect} could be loaded: {'; '.join(missing) or 'none known'}",
        key="driver",
    )
