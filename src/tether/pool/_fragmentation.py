"""Pool fragmentation: many pools to one server, from connection strings that differ a little.

``tether.connect`` keeps one implicit pool per connection identity, so strings that
differ only in ``application_name`` (or any other key) make a pool each, and a process can
hold dozens of pools to one database, each with its own idle connections. SqlClient's
counters show this; tether says it: when more than ``limit()`` open pools of the process
reach one server (dialect, host, port, instance, database), one WARNING (and a
``pool.fragmented`` event) names the connection-string keys whose values differ between
them, never the values.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterable
from typing import Any

from .. import events
from ..dsn import ConnectionSpec

log = logging.getLogger("tether.pool")

_SERVER_FIELDS = ("dialect", "host", "port", "instance", "database")
_DEFAULT_LIMIT = 8
_limit: list[int | None] = [_DEFAULT_LIMIT]
_warned: set[tuple[Any, ...]] = set()
_lock = threading.Lock()


def set_limit(pools: int | None) -> None:
    """Warn when more than ``pools`` open pools reach one server (default 8); None: never."""
    if pools is not None and (isinstance(pools, bool) or not isinstance(pools, int) or pools < 1):
        raise ValueError(f"pools must be a positive int or None, not {pools!r}")
    _limit[0] = pools


def limit() -> int | None:
    return _limit[0]


def server_of(spec: ConnectionSpec) -> tuple[Any, ...]:
    return tuple(getattr(spec, name) for name in _SERVER_FIELDS)


def differing_keys(specs: Iterable[ConnectionSpec]) -> list[str]:
    """The keys (settings, options, user, password...) whose values are not all the same:
    names only; a secret's value is compared, never kept or shown."""
    specs = list(specs)
    keys = set()
    names = [f.name for f in dataclasses.fields(ConnectionSpec) if f.name not in _SERVER_FIELDS]
    for name in names:
        if name != "options" and len({_comparable(getattr(spec, name)) for spec in specs}) > 1:
            keys.add(name)
    options = [dict(spec.options) for spec in specs]
    for key in {key for opts in options for key in opts}:
        if len({opts.get(key) for opts in options}) > 1:
            keys.add(key)
    return sorted(keys)


def _comparable(value: Any) -> Any:
    reveal = getattr(value, "reveal", None)  # a Secret: compared by its hash, in memory only
    return ("secret", hash(reveal())) if callable(reveal) else value


def check(spec: ConnectionSpec, pools: Iterable[Any]) -> None:
    """After a pool to ``spec``'s server was made: warn once per server past the limit."""
    most = _limit[0]
    if most is None:
        return
    server = server_of(spec)
    specs = [pool.spec for pool in pools
             if not pool.closed and isinstance(getattr(pool, "spec", None), ConnectionSpec)
             and server_of(pool.spec) == server]
    if len(specs) <= most:
        return
    with _lock:
        if server in _warned:
            return
        _warned.add(server)
    differing = differing_keys(specs)
    where = f"{spec.host}:{spec.port}/{spec.database or ''}"
    event = events.PoolsFragmented("", where, len(specs), tuple(differing))
    events.announce(log, logging.WARNING, event, None,
                    "%d pools of this process reach %s: their connection strings differ only in %s; "
                    "one pool (one connection string) would share the connections",
                    len(specs), where, ", ".join(differing) or "nothing tether compares")
