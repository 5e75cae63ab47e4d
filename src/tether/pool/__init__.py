"""The pool: one engine for decisions (``_state``), thin front ends for threads and asyncio."""

from __future__ import annotations

from ._config import PoolConfig
from ._implicit import clear_all_pools, connect
from ._pool import Pool

__all__ = ["Pool", "PoolConfig", "clear_all_pools", "connect"]
