"""``tether.connect(dsn)``: SqlClient's implicit pooling, one pool per connection identity.

Strings that differ only in keyword order, case, synonyms or spelling share a pool
(``ConnectionSpec.pool_key``); ``Pooling=false`` opens a connection of its own that
really closes. ``tether.pools()`` lists every pool, so fragmentation is visible.
"""

from __future__ import annotations

import atexit
import dataclasses
import inspect
import logging
import random
import sys
import threading
import time
from typing import Any

from .. import metrics
from .._fork import renew_lock
from .._retry import ConnectFailure
from .._retry._classify import classify
from ..dialects import dialect_for
from ..drivers import load_driver
from ..dsn import ConnectionSpec, parse
from ..errors import Error, SettingTypeError
from ..session import Connection, Lease
from ..session._log import SessionLog
from ..vocab import Fault, TxStatus
from . import _fragmentation as fragmentation
from ._config import SETTING_NAMES, PoolConfig, check_arguments, config_for
from ._core import Port, connect_error
from ._hooks import Hook, finish_hook, split
from ._opening import connect_with_retry, open_lease
from ._outage import MAX_DELAY_S, MIN_DELAY_S, Outage
from ._pool import Pool

log = logging.getLogger(__name__)

_implicit: dict[object, Pool] = {}
# Pool's keyword arguments and their defaults: what ``connect(**settings)`` takes.
_ARGUMENTS = {name: p.default for name, p in inspect.signature(Pool).parameters.items()
              if p.kind is p.KEYWORD_ONLY and name != "driver"}
_DEFAULTS = {name: _ARGUMENTS[name] for name in SETTING_NAMES}  # what config_for reads
_CONFIG_FIELDS = frozenset(field.name for field in dataclasses.fields(PoolConfig))
_rng = random.Random()
_lock = threading.Lock()
renew_lock(sys.modules[__name__])  # in a forked child


def connect(dsn: str | ConnectionSpec, *, driver: str | None = None, **settings: Any) -> Connection:
    """Open a connection: from this identity's implicit pool unless ``Pooling=false``.

    ``settings`` are ``Pool``'s (``max_size=...``), checked at every call and used when
    the pool is created; without pooling, those that open a connection apply
    (``login_timeout``, ``connect_retry_count``, ``connect_retry_interval``,
    ``connect_retry``, ``keepalive``).
    """
    if settings or not isinstance(dsn, (str, ConnectionSpec)) or not isinstance(driver, (str, type(None))):
        _check(dsn, driver, settings)
    spec = dsn if isinstance(dsn, ConnectionSpec) else parse(dsn, driver=driver)
    if spec.pooling is False:
        return _unpooled(spec, config_for(spec, **{**_DEFAULTS, **settings}),
                         configure=settings.get("configure"), kwargs=settings.get("kwargs"))
    key = spec.pool_key
    with _lock:
        pool = _implicit.get(key)
        if pool is None or pool.closed:
            # SqlClient's defaults for implicit pools: Min Pool Size 0, Max Pool Size 100.
            settings.setdefault("min_size", spec.min_pool_size or 0)
            settings.setdefault("max_size", spec.max_pool_size or 100)
            pool = Pool(spec, name=f"implicit-{len(_implicit) + 1}", **settings)
            _implicit[key] = pool
            made = True
        else:
            made = False
    if made:
        fragmentation.check(spec, metrics.pools())
    return pool.getconn()


def _check(dsn: object, driver: object, settings: dict[str, Any]) -> None:
    """Refuse a setting Pool does not take, or a bad one, at every call (not only the
    call that creates the pool)."""
    unknown = sorted(set(settings) - set(_ARGUMENTS))
    if unknown:
        raise SettingTypeError(f"connect() got an unexpected keyword argument {unknown[0]!r}", key=unknown[0])
    check_arguments({"dsn": dsn, "driver": driver, **settings})
    PoolConfig(**{name: value for name, value in settings.items()
                  if name in _CONFIG_FIELDS and not callable(value)})  # a callable reset is a hook


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

    def __init__(self, spec: ConnectionSpec, config: PoolConfig, *, configure: Hook | None = None,
                 kwargs: dict[str, Any] | None = None):
        self.spec, self.extra = split(spec, kwargs)
        self.configure = configure  # the pool hook; check and reset have no pool to run in
        spec = self.spec
        self.driver = load_driver(spec.dialect, spec.driver)
        self.dialect = dialect_for(spec)
        self.policy = config.connect_retry
        self.keepalive = config.keepalive
        self.command_timeout = config.command_timeout
        self.port = Port(None, spec.redacted(), give_back=self.give_back, reclaim=self.reclaim,
                         reopen=self.reopen, adopt=self.adopt, lost=self.lost)

    def open_once(self, timeout_s: float) -> Lease:
        lease = open_lease(self.driver, self.spec, timeout_s=timeout_s, keepalive=self.keepalive,
                           autocommit=False, owner=self.port, dialect=self.dialect,
                           command_timeout=self.command_timeout, extra=self.extra or None)
        if self.configure is not None:
            try:
                finish_hook(self.configure(lease.raw))
                if self.driver.tx_status(lease.raw) is not TxStatus.IDLE:
                    raise Error("the configure hook left a transaction open")
            except Exception:
                self.driver.close(lease.raw)  # never lent half-configured
                raise
        return lease

    # -- the Port ----------------------------------------------------------------------------

    def give_back(self, lease: Lease, *, commit: bool) -> None:
        try:
            if commit and lease.lost is None:
                self.driver.commit(lease.raw)
        finally:
            self.driver.close(lease.raw)
            metrics.count_non_pooled(-1)

    def reclaim(self, lease: Lease) -> None:
        self.driver.close(lease.raw)
        metrics.count_non_pooled(-1)

    def reopen(self) -> Lease:
        retry = dataclasses.replace(self.policy, count=max(self.policy.count - 1, 0), immediate=0)
        result = connect_with_retry(self.open_once, retry)
        if isinstance(result, ConnectFailure):
            raise connect_error(self.driver, self.spec, result)
        return result

    def adopt(self, lease: Lease, new: Lease, *, elapsed_s: float, replayed: str) -> None:
        old = lease.raw
        lease.raw, lease.probe = new.raw, new.probe
        self.driver.close(old)
        log.info("unpooled connection to %s broke while idle; session restored in %.1f ms (replayed: %s)",
                 self.spec.redacted(), elapsed_s * 1000, replayed)

    def lost(self, lease: Lease) -> None:
        log.warning("%s", lease.lost)


def _ride_out(owner: _Unpooled) -> Lease:
    """Open under connect retry; through an outage (a fault that can heal), keep trying as
    a pool's probe does, within the login timeout (``Connect Timeout``) for the whole."""
    policy = owner.policy
    started = time.monotonic()
    deadline = started + policy.login_timeout_s
    outage: Outage | None = None
    attempts = 0
    while True:
        result = connect_with_retry(owner.open_once, policy)
        if not isinstance(result, ConnectFailure):
            return result
        now = time.monotonic()
        attempts += result.attempts
        final = classify(result.cause).fault is Fault.FATAL
        if final or now >= deadline:
            failure = ConnectFailure(attempts, now - started, result.cause)
            raise connect_error(owner.driver, owner.spec, failure)
        outage = outage or Outage(since=started)
        delay = outage.failed(now, result.attempts, rng=_rng, min_delay=MIN_DELAY_S, max_delay=MAX_DELAY_S)
        time.sleep(min(delay, deadline - now))
        policy = dataclasses.replace(policy, login_timeout_s=max(deadline - time.monotonic(), 0.001))


def _unpooled(spec: ConnectionSpec, config: PoolConfig, *, configure: Hook | None = None,
              kwargs: dict[str, Any] | None = None) -> Connection:
    owner = _Unpooled(spec, config, configure=configure, kwargs=kwargs)
    result = _ride_out(owner)
    metrics.count_non_pooled(+1)
    resilient = owner.policy.count > 0 and owner.dialect.replays
    return Connection(result, SessionLog(owner.driver.exact_tx_status) if resilient else None)
