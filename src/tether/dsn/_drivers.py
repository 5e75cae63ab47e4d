"""Which ``+driver`` names a connection string may give: those in ``vocab/_drivers.py``
that a pool can use.

The registry also lists packages tether only classifies errors for (mysqlclient,
mariadb). A spec naming one of them would parse and then be refused by every pool, so
it is refused here instead, with a message saying which pool takes which driver.
Only the registry's table is read: no driver package is imported.
"""

from __future__ import annotations

import itertools

from ..errors import ConfigError
from ..vocab import _drivers as registry

# dialect -> the canonical names a pool can use, in order of preference.
KNOWN_DRIVERS: dict[str, tuple[str, ...]] = {
    dialect: tuple(info.name for info in registry.for_dialect(dialect)) for dialect in registry.DIALECTS
}


def canonical_driver(dialect: str, name: str) -> str:
    """The registry's name for ``name`` (itself or an alias, any case); ConfigError if
    no pool of tether's can use it."""
    info = registry.find(dialect, name)
    if info is None or not info.pooled:
        raise unknown_driver(dialect, name)
    return info.name


def unknown_driver(dialect: str, name: str) -> ConfigError:
    return ConfigError(f"unknown driver {name!r} for {dialect}; known: {_known(dialect)}", key="driver")


def _known(dialect: str) -> str:
    """``psycopg (tether.Pool, tether.AsyncPool), asyncpg (tether.AsyncPool)``: drivers by
    preference; neighbours that the same pools take share one note ("all tether.Pool")."""
    runs = itertools.groupby(registry.for_dialect(dialect), key=_pools)
    notes = []
    for pools, infos in runs:
        names = [info.name for info in infos]
        notes.append(f"{', '.join(names)} ({'all ' if len(names) > 1 else ''}{pools})")
    return ", ".join(notes) or "none"


def _pools(info: registry.DriverInfo) -> str:
    modules = (("tether.Pool", info.sync_module), ("tether.AsyncPool", info.async_module))
    return ", ".join(pool for pool, module in modules if module is not None)
