"""The pool: one engine for decisions (``_state``); the asyncio front end (``_pool_async``)
is the source of the threaded one (``_pool``, generated)."""

from __future__ import annotations

from ._config import PoolConfig
from ._fragmentation import set_limit as set_fragmentation_limit
from ._implicit import clear_all_pools, connect
from ._pool import Borrow, Pool
from ._pool_async import AsyncBorrow, AsyncPool

__all__ = ["AsyncBorrow", "AsyncPool", "Borrow", "Pool", "PoolConfig", "clear_all_pools", "connect",
           "set_fragmentation_limit"]
