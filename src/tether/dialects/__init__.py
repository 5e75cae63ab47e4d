"""Database families. Adding one is adding a module with a ``dialect`` object."""

from __future__ import annotations

import importlib

from ..errors import ConfigError
from ._base import Dialect, TxStatus

__all__ = ["Dialect", "TxStatus", "get_dialect"]

_MODULES = {"postgresql": "postgresql", "sqlserver": "sqlserver", "mysql": "mysql"}


def get_dialect(name: str) -> Dialect:
    module_name = _MODULES.get(name)
    if module_name is None:
        raise ConfigError(f"unknown database {name!r}; known: {', '.join(_MODULES)}", key="dialect")
    try:
        module = importlib.import_module(f"{__name__}.{module_name}")
    except ModuleNotFoundError as exc:
        raise ConfigError(f"tether does not support {name!r} yet", key="dialect") from exc
    found: Dialect = module.dialect
    return found
