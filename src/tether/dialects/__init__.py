"""Database families. Adding one is adding a module with a ``dialect`` object."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ._base import Dialect

if TYPE_CHECKING:
    from ..dsn import ConnectionSpec

__all__ = ["Dialect", "dialect_for", "get_dialect"]

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


def dialect_for(spec: ConnectionSpec) -> Dialect:
    """The dialect for one connection string: Azure SQL endpoints get Azure's variant, and
    PostgreSQL behind PgBouncer's transaction pooling (``pool_mode``) its own."""
    if spec.dialect == "sqlserver" and spec.is_azure:
        from .sqlserver import azure

        return azure
    if spec.dialect == "postgresql" and spec.transaction_pooled:
        from .postgresql import behind_transaction_pooler

        return behind_transaction_pooler
    return get_dialect(spec.dialect)
