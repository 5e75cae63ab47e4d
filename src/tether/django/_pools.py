"""One tether pool per Django alias per process, rebuilt when its settings change.

Django's tests change ``TIME_ZONE`` and ``USE_TZ`` on the fly; a pool is keyed by what
its connections are made from, so a connection never comes from a pool made for other
settings. A pool that is replaced is closed (its borrowed connections close when they
come back).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

from ..pool import Pool

_lock = threading.Lock()
_pools: dict[str, tuple[Hashable, Pool]] = {}


def pool_for(alias: str, key: Hashable, make: Callable[[], Pool]) -> Pool:
    """The pool of ``alias`` made for ``key``: the one there, or a new one (the old closed)."""
    with _lock:
        entry = _pools.get(alias)
        if entry is not None and entry[0] == key:
            return entry[1]
        pool = make()
        _pools[alias] = (key, pool)
    if entry is not None:
        entry[1].close()
    return pool


def pool_for_alias(alias: str = "default") -> Pool | None:
    """The tether pool behind a Django alias in this process, once it has lent a connection
    (for ``pool.stats()``, or ``pool.transaction`` beside the ORM); None before."""
    with _lock:
        entry = _pools.get(alias)
    return None if entry is None else entry[1]


def close_pool(alias: str) -> None:
    """Close ``alias``'s pool (idle connections now, borrowed ones when they come back)."""
    with _lock:
        entry = _pools.pop(alias, None)
    if entry is not None:
        entry[1].close()


def pool_settings(options: dict[str, Any]) -> dict[str, Any]:
    """``OPTIONS["tether"]``, checked to be a dict (``tether.Pool`` checks each setting)."""
    settings = options.get("tether") or {}
    if not isinstance(settings, dict):
        from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]

        raise ImproperlyConfigured(
            f"OPTIONS['tether'] must be a dict of tether.Pool settings, not {type(settings).__name__}")
    return dict(settings)
