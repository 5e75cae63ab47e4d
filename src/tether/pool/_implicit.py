"""``tether.connect(dsn)``: SqlClient's implicit pooling, one pool per connection identity.

Strings that differ only in keyword order, case, synonyms or spelling share a pool
(``ConnectionSpec.pool_key``); ``Pooling=false`` opens a connection of its own that
really closes. ``tether.pools()`` lists every pool, so fragmentation is visible.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import threading
from typing import Any

from .. import metrics
from ..dialects import dialect_for
from ..drivers import load_driver
from ..dsn import ConnectionSpec, parse
from ..errors import ConnectionReturned, bind
from ..net import Keepalive
from ..retry import ConnectFailure, ConnectRetry, connect_with_retry
from ..session import Connection
from ..session._log import SessionLog
from ._config import first_given
from ._opening import connect_error, open_slot
from ._pool import Pool
from ._state import Slot

log = logging.getLogger(__name__)

_implicit: dict[object, Pool] = {}
_lock = threading.Lock()


def connect(dsn: str | ConnectionSpec, *, driver: str | None = None, **settings: Any) -> Connection:
    """Open a connection: from this identity's implicit pool unless ``Pooling=false``.

    ``settings`` are pool settings (``max_size=...``) used when the pool is created.
    """
    spec = dsn if isinstance(dsn, ConnectionSpec) else parse(dsn, driver=driver)
    if spec.pooling is False:
        return _unpooled(spec)
    key = spec.pool_key
    with _lock:
        pool = _implicit.get(key)
        if pool is None or pool.closed:
            # SqlClient's defaults for implicit pools: Min Pool Size 0, Max Pool Size 100.
            settings.setdefault("min_size", spec.min_pool_size or 0)
            settings.setdefault("max_size", spec.max_pool_size or 100)
            pool = Pool(spec, name=f"implicit-{len(_implicit) + 1}", **settings)
            _implicit[key] = pool
    return pool.getconn()


def clear_all_pools() -> None:
    """SqlClient's ``ClearAllPools``: retire every connection of every implicit pool."""
    with _lock:
        pools = list(_implicit.values())
    for pool in pools:
        pool.clear()


@atexit.register
def _close_implicit() -> None:
    with _lock:
        pools = list(_implicit.values())
        _implicit.clear()
    for pool in pools:
        pool.close(timeout=1.0)


class _Unpooled:
    """The owner of a ``Pooling=false`` connection: closing it closes it."""

    def __init__(self, spec: ConnectionSpec):
        self.spec = spec
        self.driver = load_driver(spec.dialect, spec.driver)
        self.dialect = dialect_for(spec)
        self.policy = ConnectRetry(
            count=first_given(spec.connect_retry_count, 2 if spec.is_azure else 1),
            interval_s=first_given(spec.connect_retry_interval, 10.0),
            login_timeout_s=first_given(spec.login_timeout, 15.0),
        )
        self.recovery_attempts = self.policy.count

    def open_once(self, timeout_s: float) -> Slot:
        return open_slot(self.driver, self.spec, timeout_s=timeout_s, keepalive=Keepalive(), autocommit=False)

    # -- idle resiliency, as the pool's ------------------------------------------------------

    def reopen(self, conn: Connection) -> Slot:
        retry = dataclasses.replace(self.policy, count=max(self.policy.count - 1, 0), immediate=0)
        result = connect_with_retry(self.open_once, retry)
        if isinstance(result, ConnectFailure):
            raise connect_error(self.driver, self.spec, result)
        return result

    def swap(self, conn: Connection, new: Slot, *, elapsed_s: float, replayed: str) -> None:
        slot = conn._slot
        assert slot is not None
        old, slot.raw, slot.probe = slot.raw, new.raw, new.probe
        self.driver.close(old)
        log.info("unpooled connection to %s broke while idle; session restored in %.1f ms (replayed: %s)",
                 self.spec.redacted(), elapsed_s * 1000, replayed)

    def drop(self, new: Slot) -> None:
        self.driver.close(new.raw)

    def lost(self, conn: Connection) -> None:
        if conn._slot is not None:
            self.driver.close(conn._slot.raw)
        log.warning("%s", conn._lost)

    def give_back(self, conn: Connection, *, commit: bool) -> None:
        slot = conn.detach()
        if slot is None:
            return
        try:
            if commit:
                slot.raw.commit()
        finally:
            self.driver.close(slot.raw)
            metrics.count_non_pooled(-1)

    def reclaim(self, conn: Connection) -> None:
        slot = conn.detach()
        if slot is not None:
            self.driver.close(slot.raw)
            metrics.count_non_pooled(-1)

    def returned_error(self, conn: Connection) -> Exception:
        error = bind(ConnectionReturned, self.driver.module.InterfaceError)
        return error("this connection is closed (Pooling=false)")

    def describe(self, conn: Connection) -> str:
        state = "closed" if conn.closed else "open"
        return f"{state} unpooled to {self.spec.redacted()}"


def _unpooled(spec: ConnectionSpec) -> Connection:
    owner = _Unpooled(spec)
    result = connect_with_retry(owner.open_once, owner.policy)
    if isinstance(result, ConnectFailure):
        raise connect_error(owner.driver, spec, result)
    metrics.count_non_pooled(+1)
    resilient = owner.recovery_attempts > 0 and hasattr(owner.dialect, "session_effects")
    exact = getattr(owner.driver, "exact_tx_status", True)
    log = SessionLog(exact) if resilient else None
    return Connection(owner, result, owner.dialect, owner.driver, log)
