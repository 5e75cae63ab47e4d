"""Python database drivers. Adding one is adding a module with a ``driver`` object.

Defaults per database: PostgreSQL → psycopg; SQL Server → the first installed of
mssql_python, pyodbc, pymssql, pytds; MySQL → pymysql.
"""

from __future__ import annotations

import importlib

from ..errors import ConfigError
from ._base import Driver

__all__ = ["KNOWN", "PACKAGES", "Driver", "load_driver"]

# dialect -> driver names in order of preference; each name is a module here.
KNOWN: dict[str, tuple[str, ...]] = {
    "postgresql": ("psycopg",),
    "sqlserver": ("mssql_python", "pyodbc", "pymssql", "pytds"),
    "mysql": ("pymysql",),
}
# driver name -> (the module it imports, what to pip install)
PACKAGES: dict[str, tuple[str, str]] = {
    "psycopg": ("psycopg", "psycopg[binary]"),
    "mssql_python": ("mssql_python", "mssql-python"),
    "pyodbc": ("pyodbc", "pyodbc"),
    "pymssql": ("pymssql", "pymssql"),
    "pytds": ("pytds", "python-tds"),
    "pymysql": ("pymysql", "PyMySQL"),
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
            missing.append(_why_missing(candidate, exc))
            continue
        found: Driver = module.driver
        return found
    if name:
        raise ConfigError(f"driver {name!r} for {dialect} could not be loaded: {missing[0]}", key="driver")
    raise ConfigError(
        f"no driver for {dialect} could be loaded: {'; '.join(missing) or 'none known'}",
        key="driver",
    )


def _why_missing(candidate: str, exc: ImportError) -> str:
    """What to do about a driver that would not import: the pip package, or the cause."""
    top, package = PACKAGES.get(candidate, (candidate, candidate))
    if exc.name is not None and (exc.name == top or exc.name.startswith(top + ".")):
        return f"{candidate} is not installed (pip install {package})"
    return f"{candidate} failed to import ({exc})"  # installed, but a library it needs is not
