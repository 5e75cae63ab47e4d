"""Counters: one pool's ``stats()`` and the process-wide view over every pool.

Names follow SqlClient's event counters (``hard-connects``, ``soft-connects``,
``number-of-free-connections``, ...) so dashboards built for .NET read the same here;
``PoolStats.as_counters()`` gives them under those names.
"""

from __future__ import annotations

import sys
import threading
import weakref
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Protocol

from ._fork import renew_lock
from ._timings import BOUNDS_S, HistogramSnapshot, Timings

if TYPE_CHECKING:
    from .pool._state import PoolState


class Observed(Protocol):
    """What the registry needs of a pool, threaded or async."""

    @property
    def name(self) -> str: ...

    def stats(self) -> PoolStats: ...

__all__ = ["TIME_BUCKETS_S", "HistogramSnapshot", "PoolStats", "ProcessStats", "Timings", "pools",
           "register", "snapshot", "stats"]

TIME_BUCKETS_S = BOUNDS_S  # the upper bounds of the wait, use and create time buckets, in seconds


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A consistent snapshot of one pool."""

    name: str
    idle: int  # number-of-free-connections
    busy: int  # number-of-active-connections (borrowed, or being reset)
    resetting: int  # number-of-stasis-connections
    opening: int
    waiting: int
    generation: int
    hard_connects: int
    hard_disconnects: int
    soft_connects: int
    soft_disconnects: int
    reclaimed: int  # number-of-reclaimed-connections: dropped without close()
    discarded_dead: int  # found dead at checkout, on return or by the idle sweep
    pings: int
    waits: int
    timeouts: int
    connect_failures: int
    resets: int
    recovered: int  # sessions rebuilt on a new connection after an idle break
    sessions_lost: int  # sessions that broke while idle and could not be rebuilt
    blocking: bool  # in SqlClient's blocking period (opt-in): checkouts fail fast
    reconnecting: bool = False  # opens fail with a fault that can heal: waiters wait, one probe tries
    outage_attempts: int = 0  # connect attempts the server refused since the outage began
    hook_failures: int = 0  # configure, check or reset raised (or left a transaction): discarded
    min_size: int = 0
    max_size: int = 0
    blocking_periods: int = 0  # blocking periods begun
    leaks_suspected: int = 0  # borrows held past leak_detection_threshold
    commit_outcome_resolved: int = 0  # COMMIT replies lost, outcome learnt (committed or not)
    commit_outcome_unknown: int = 0  # COMMIT replies lost, outcome unknown (CommitOutcomeUnknown)
    retries: tuple[tuple[str, int], ...] = ()  # (fault class, units of work run again)
    timings: Timings | None = None  # wait, use and create time histograms (None: turned off)

    @property
    def open(self) -> int:
        """Physical connections open now (active-hard-connections)."""
        return self.idle + self.busy

    def as_counters(self) -> dict[str, int]:
        """SqlClient's counter names for this pool."""
        return {
            "active-hard-connections": self.open,
            "hard-connects": self.hard_connects,
            "hard-disconnects": self.hard_disconnects,
            "active-soft-connects": self.busy - self.resetting,
            "soft-connects": self.soft_connects,
            "soft-disconnects": self.soft_disconnects,
            "number-of-pooled-connections": self.open,
            "number-of-active-connections": self.busy - self.resetting,
            "number-of-free-connections": self.idle,
            "number-of-stasis-connections": self.resetting,
            "number-of-reclaimed-connections": self.reclaimed,
        }

    def as_dict(self) -> dict[str, object]:
        """Every field, by name (for JSON and logs)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ProcessStats:
    """Every live pool of this process, added up."""

    pools: tuple[PoolStats, ...]
    non_pooled_connections: int
    non_pooled_connects: int

    def as_counters(self) -> dict[str, int]:
        """SqlClient's counter names for the process: every pool's counters summed, with the
        pools and the non-pooled connections counted."""
        totals: dict[str, int] = {}
        for pool_stats in self.pools:
            for key, value in pool_stats.as_counters().items():
                totals[key] = totals.get(key, 0) + value
        active = sum(1 for p in self.pools if p.open)
        totals.update(
            {
                "number-of-non-pooled-connections": self.non_pooled_connections,
                "number-of-active-connection-pools": active,
                "number-of-inactive-connection-pools": len(self.pools) - active,
                # one pool per connection string and identity: groups and pools coincide
                "number-of-active-connection-pool-groups": active,
                "number-of-inactive-connection-pool-groups": len(self.pools) - active,
            }
        )
        return totals

    def total(self, field: str) -> int:
        """Sum one ``PoolStats`` field over all pools."""
        if field not in {f.name for f in fields(PoolStats)}:
            raise ValueError(f"PoolStats has no field {field!r}")
        return sum(int(getattr(p, field)) for p in self.pools)


_pools: weakref.WeakSet[Observed] = weakref.WeakSet()
_lock = threading.Lock()
renew_lock(sys.modules[__name__])  # in a forked child
_non_pooled = {"open": 0, "connects": 0}


def register(pool: Observed) -> None:
    with _lock:
        _pools.add(pool)


def unregister(pool: Observed) -> None:
    with _lock:
        _pools.discard(pool)


def count_non_pooled(delta: int) -> None:
    with _lock:
        _non_pooled["open"] += delta
        if delta > 0:
            _non_pooled["connects"] += delta


def snapshot(name: str, state: PoolState, now: float) -> PoolStats:
    """A pool's stats from its state (the caller holds the pool's lock)."""
    c = state.counters
    return PoolStats(
        name=name,
        idle=len(state.idle),
        busy=state.busy,
        resetting=state.resetting,
        opening=state.opening,
        waiting=len(state.waiters),
        generation=state.generation,
        hard_connects=c.hard_connects,
        hard_disconnects=c.hard_disconnects,
        soft_connects=c.soft_connects,
        soft_disconnects=c.soft_disconnects,
        reclaimed=c.reclaimed,
        discarded_dead=c.discarded_dead,
        pings=c.pings,
        waits=c.waits,
        timeouts=c.timeouts,
        connect_failures=c.connect_failures,
        resets=c.resets,
        recovered=c.recovered,
        sessions_lost=c.sessions_lost,
        blocking=state.blocking(now),
        reconnecting=state.outage is not None,
        outage_attempts=state.outage.attempts if state.outage is not None else 0,
        hook_failures=c.hook_failures,
        min_size=state.config.min_size,
        max_size=state.config.max_size,
        blocking_periods=c.blocking_periods,
        leaks_suspected=c.leaks_suspected,
        commit_outcome_resolved=c.commit_outcome_resolved,
        commit_outcome_unknown=c.commit_outcome_unknown,
        retries=tuple(sorted(c.retries.items())),
        timings=None if state.timings is None else state.timings.snapshot(c.soft_connects - state.served),
    )


def pools() -> list[Observed]:
    """Every open pool of this process, explicit and implicit: fragmentation shows here."""
    with _lock:
        return sorted(_pools, key=lambda p: p.name)


def stats() -> ProcessStats:
    """The process-wide counters."""
    snapshot = tuple(pool.stats() for pool in pools())
    with _lock:
        return ProcessStats(snapshot, _non_pooled["open"], _non_pooled["connects"])
