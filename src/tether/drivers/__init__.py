"""Python database drivers. Adding one is adding a module with a ``driver`` object.

Defaults per database: PostgreSQL → psycopg; SQL Server → the first installed of
mssql_python, pyodbc, pymssql, pytds; MySQL → pymysql.
"""

from __future__ import annotations

import importlib

from ..errors import ConfigError
from ._base import Driver

__all__ = ["KNOWN", "Driver", "load_driver"]

# dialect -> driver names in order of preference; each name is a module here.
KNOWN: dict[str, tuple[str, ...]] = {
    "postgresql": ("psycopg",),
    "sqlserver": ("mssql_python", "pyodbc", "pymssql", "pytds"),
    "mysql": ("pymysql",),
}


def load_driver(dialect: str, name: str | None = None) -> Driver:
    """The driver ``name`` for ``dialect``, or the first installed default."""
    known = KNOWN.get(dialect, ())
    if name is not None and name not in known:
        raise ConfigError(
            f"unknown driver {name!r} for {dialect}; known: {', '.join(known) or 'none'}",
            key="driver",
        )
    missing: list[str] = []
    for candidate in (name,) if name else known:
        try:
            module = importlib.import_module(f"{__name__}.{candidate}")
        except ImportError as exc:
            missing.append(f"{candidate} ({exc})")
            continue
        found: Driver = module.driver
        return found
    raise ConfigError(
        f"no driver for {dialect} could be loaded: {'; '.join(missing) or 'none known'}",
        key="driver",
    )
