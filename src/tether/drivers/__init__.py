"""Python database drivers. Adding one is adding a module here and a row to
``tether.vocab._drivers``.

Defaults per database, for ``tether.Pool``: PostgreSQL → psycopg; SQL Server → the first
installed of mssql_python, pyodbc, pymssql, pytds; MySQL → pymysql. For
``tether.AsyncPool``: PostgreSQL → psycopg's ``AsyncConnection``, or asyncpg.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ConfigError
from ..vocab._drivers import DriverInfo, find, for_dialect
from ._base import Driver
from ._base_async import AsyncDriver

__all__ = ["AsyncDriver", "Driver", "load_async_driver", "load_driver"]


def load_driver(dialect: str, name: str | None = None) -> Driver:
    """The driver ``name`` for ``dialect`` in ``tether.Pool``, or the first installed default."""
    found: Driver = _load(dialect, name, "sync")
    return found


def load_async_driver(dialect: str, name: str | None = None) -> AsyncDriver:
    """The driver ``name`` for ``dialect`` in ``tether.AsyncPool``, or the first installed default."""
    found: AsyncDriver = _load(dialect, name, "async")
    return found


def _load(dialect: str, name: str | None, mode: str) -> Any:
    candidates = for_dialect(dialect, mode=mode)
    if name is not None:
        info = find(dialect, name)
        if info is None or info not in candidates:
            raise ConfigError(_unknown(dialect, name, mode, candidates, known=info is not None), key="driver")
        candidates = (info,)
    missing: list[str] = []
    for info in candidates:
        module_name = info.sync_module if mode == "sync" else info.async_module
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except ImportError as exc:
            missing.append(_why_missing(info, exc))
            continue
        return module.driver
    if name is not None:
        raise ConfigError(f"driver {name!r} for {dialect} could not be loaded: {missing[0]}", key="driver")
    raise ConfigError(
        f"no {'asyncio ' if mode == 'async' else ''}driver for {dialect} could be loaded: "
        f"{'; '.join(missing) or 'none known'}",
        key="driver",
    )


def _unknown(dialect: str, name: str, mode: str, candidates: tuple[DriverInfo, ...], *, known: bool) -> str:
    """Why ``name`` is refused: the other pool's driver (the parser took it), or unknown."""
    names = ", ".join(info.name for info in candidates) or "none"
    if mode == "async":
        return (f"no asyncio driver {name!r} for {dialect}; known: {names} "
                "(for a threaded application use tether.Pool)")
    if known:  # asyncpg: a connection string may name it, for tether.AsyncPool
        return (f"no threaded driver {name!r} for {dialect}; known: {names} "
                "(for an asyncio application use tether.AsyncPool)")
    return f"unknown driver {name!r} for {dialect}; known: {names}"


def _why_missing(info: DriverInfo, exc: ImportError) -> str:
    """What to do about a driver that would not import: tether's extra, or the cause."""
    top = info.imports
    if "cannot open shared object file" in str(exc):  # a C extension's ImportError names itself
        return f"{info.name} is installed, but a system library it needs is missing ({exc})"
    if exc.name is not None and (exc.name == top or exc.name.startswith(top + ".")):
        return f"{info.name} is not installed: {info.install}"
    return f"{info.name} failed to import ({exc})"  # installed, but a library it needs is not
