"""SQLAlchemy on a tether pool: ``pip install 'tether[sqlalchemy]'``.

One line turns an engine's pool into tether's::

    engine = sqlalchemy.create_engine(url, plugins=["tether"], tether_max_size=20)
    engine = tether.sqlalchemy.create_engine(url, max_size=20)          # the same

(``create_async_engine`` alike.) The dialect sees a connection it accepts; tether's
broken connections are SQLAlchemy disconnects; ``transaction(session_factory, fn)`` runs
an ORM unit of work with ``pool.transaction``'s commit safety.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy
from sqlalchemy.dialects import plugins as _plugins

from ._errors import on_handle_error
from ._plugin import PREFIX, TetherPlugin, pool_argument_names
from ._pool import AsyncTetherPool, TetherPool, driver_connection_of
from ._unit import async_transaction, transaction

__all__ = [
    "AsyncTetherPool",
    "TetherPlugin",
    "TetherPool",
    "async_transaction",
    "create_async_engine",
    "create_engine",
    "driver_connection_of",
    "on_handle_error",
    "transaction",
]

# Installed, the entry point finds the plugin; registered here too, so that it works from a
# source checkout once ``tether.sqlalchemy`` is imported.
_plugins.register("tether", __name__ + "._plugin", "TetherPlugin")


def _split(kwargs: dict[str, Any], pool: Any) -> dict[str, Any]:
    names = pool_argument_names()
    engine_args = {key: value for key, value in kwargs.items() if key not in names}
    tether_args = {PREFIX + key: value for key, value in kwargs.items() if key in names}
    plugins = [*engine_args.pop("plugins", []), "tether"]
    return {**engine_args, **tether_args, "plugins": plugins,
            **({PREFIX + "pool": pool} if pool is not None else {})}


def create_engine(url: Any, *, pool: Any = None, **kwargs: Any) -> sqlalchemy.Engine:
    """``sqlalchemy.create_engine`` on a tether pool: tether ``Pool``'s arguments
    (``max_size``, ``timeout``, ``configure``...) go to the pool it makes, or ``pool=`` is
    a ``tether.Pool`` of the application's; the rest go to SQLAlchemy."""
    return sqlalchemy.create_engine(url, **_split(kwargs, pool))


def create_async_engine(url: Any, *, pool: Any = None, **kwargs: Any) -> Any:
    """``create_async_engine`` on a ``tether.AsyncPool`` (see ``create_engine``)."""
    from sqlalchemy.ext.asyncio import create_async_engine as _create

    return _create(url, **_split(kwargs, pool))

