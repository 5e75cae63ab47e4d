"""A fleet that loses its server together: ``python -m bench.fleet_sim [--pools N] ...``.

N application processes, each with one pool, lose their database at once; it refuses
every connection for T seconds, then takes at most R new logins per second (one more
is answered "too many connections", as a server at its limit does). How hard do the
pools hit it while it is down and as it comes back, and how long until every pool is
whole again?

A discrete-event model, so 1,000 pools run in a second of CPU: tether's pools are the
real decision code (``PoolState`` with its outage probes and ``RetryBudget``), driven by
simulated time; connect attempts, the server and the applications' requests are the
model. The peers are models of their reconnect rules, each missing connection on its own
schedule: psycopg_pool's (1 s, doubling, ±10 %), and no backoff at all (try again as soon
as the last attempt failed). Reported per policy: peak connect attempts per second while
the server is down and after it returns, the time until every pool has ``min_size``
connections again, connect attempts (in all, and after the server returned), connections
recovered and attempts per connection recovered, and the requests that failed before
their timeout (a waiter must only ever fail at its timeout).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.pool import PoolConfig
from tether.pool._outage import reconnect_budget
from tether.pool._state import Plan, PoolState, Slot

REFUSED_S = 0.001  # a refused connect (RST) costs a round trip on the LAN
LOGIN_S = 0.02  # a login that gets through: several round trips and a backend to start
HOLD_S = 0.01  # a request holds its connection this long


@dataclass
class Scenario:
    pools: int = 1000
    min_size: int = 2
    max_size: int = 4
    down_s: float = 10.0  # the server refuses every connection this long
    accept_per_s: float = 500.0  # then logs in at most this many a second
    requests_per_s: float = 2.0  # per pool, Poisson
    request_timeout_s: float = 30.0
    warmup_s: float = 10.0  # the pools serve their requests this long before the server goes down
    horizon_s: float = 60.0
    seed: int = 1

    @property
    def least_whole_s(self) -> float:
        """The time the server's rate allows for every pool to be whole again: min_size
        connections for each, R a second."""
        return self.pools * self.min_size / self.accept_per_s


@dataclass
class Server:
    """Up until ``down_at``, when every connection dies; down until ``up_at``; then a token
    bucket of ``rate`` logins a second (burst 1/20 s)."""

    down_at: float
    up_at: float
    rate: float
    tokens: float = 0.0
    at: float = 0.0

    def killed(self, slot: Slot, now: float) -> bool:
        """Whether ``slot`` is a connection the outage killed."""
        return slot.created_at < self.down_at <= now

    def login(self, now: float) -> bool:
        if now < self.down_at:
            return True
        if now < self.up_at:
            return False
        burst = max(self.rate / 20, 1.0)
        self.tokens = min(burst, self.tokens + (now - max(self.at, self.up_at)) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class Result:
    attempts: Counter[int] = field(default_factory=Counter)  # connect attempts per whole second
    recovered: int = 0  # connections opened after the server came back
    failed_early: int = 0  # requests failed before their timeout
    timed_out: int = 0  # requests failed at their timeout
    whole_at: float = math.nan  # since the server went down, when the last pool had min_size again

    def summary(self, scenario: Scenario) -> dict[str, float]:
        up = math.floor(scenario.down_s)
        down = [n for second, n in self.attempts.items() if second < up]
        after = [n for second, n in self.attempts.items() if second >= up]
        total = sum(self.attempts.values())
        return {
            "peak_attempts_per_s_down": max(down, default=0),
            "peak_attempts_per_s_after": max(after, default=0),
            "attempts_total": total,
            "attempts_after_return": sum(after),
            "whole_after_return_s": self.whole_at - scenario.down_s,
            "attempts_per_recovered": total / self.recovered if self.recovered else math.inf,
            "recovered": self.recovered,
            "requests_failed_early": self.failed_early,
            "requests_timed_out": self.timed_out,
        }


class Events:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[float], None]]] = []
        self._seq = itertools.count()

    def at(self, when: float, action: Callable[[float], None]) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), action))

    def run(self, until: float) -> None:
        while self._heap and self._heap[0][0] <= until:
            when, _, action = heapq.heappop(self._heap)
            action(when)


# -- tether: the real PoolState ------------------------------------------------------------------


class _Waiter:
    def __init__(self) -> None:
        self.ticket = 0
        self.slot: Slot | None = None
        self.error: BaseException | None = None
        self.done = False

    def wake(self) -> None:
        pass


class TetherPool:
    """One process's ``tether.Pool``, as its ``PoolState`` decides, in simulated time."""

    def __init__(self, sim: Sim, rng: random.Random):
        s = sim.scenario
        self.sim = sim
        config = PoolConfig(min_size=s.min_size, max_size=s.max_size, timeout=s.request_timeout_s)
        self.attempts_per_open = config.connect_retry.attempts  # ConnectRetryCount 1: two tries
        self.state = PoolState(config, rng=rng, budget=reconnect_budget())
        for _ in range(s.min_size):
            self.state.opening += 1
            self.state.opened(Slot(lease=None, created_at=0.0, expires_at=math.inf, generation=0), 0.0)

    def whole(self) -> bool:
        return len(self.state.idle) + self.state.busy >= self.sim.scenario.min_size

    def lose_all(self, now: float) -> None:
        """The server went away: the idle sweep finds each idle connection dead."""
        for slot in [slot for slot in self.state.idle if self.sim.server.killed(slot, now)]:
            self.carry_out(self.state.remove_idle(slot, now), now)

    def request(self, now: float) -> None:
        slot, plan = self.state.checkout(now)
        self.carry_out(plan, now)
        while slot is not None and self.sim.server.killed(slot, now):  # found dead at checkout, no round trip
            self.carry_out(self.state.discard(slot, now), now)
            slot, plan = self.state.checkout(now)
            self.carry_out(plan, now)
        if slot is not None:
            self._hold(slot, now)
            return
        waiter = _Waiter()
        self.carry_out(self.state.wait(waiter, now), now)
        self.sim.events.at(now + self.sim.scenario.request_timeout_s, lambda t: self._timeout(waiter, t))

    def served(self, waiter: _Waiter, now: float) -> None:
        waiter.done = True
        if waiter.error is not None:
            self.sim.result.failed_early += 1
            return
        assert waiter.slot is not None
        self._hold(waiter.slot, now)

    def _hold(self, slot: Slot, now: float) -> None:
        self.sim.events.at(now + HOLD_S, lambda t: self._return(slot, t))

    def _return(self, slot: Slot, now: float) -> None:
        dead = self.sim.server.killed(slot, now)  # its request failed: it was running when the server went
        self.carry_out(self.state.discard(slot, now) if dead else self.state.checkin(slot, now), now)

    def _timeout(self, waiter: _Waiter, now: float) -> None:
        if not waiter.done and self.state.give_up(waiter):
            waiter.done = True
            self.sim.result.timed_out += 1

    def carry_out(self, plan: Plan | None, now: float) -> None:
        if plan is None:
            return
        for woken in plan.wake:
            self.served(woken, now)  # type: ignore[arg-type]
        for _ in range(plan.open):
            self.sim.events.at(now + plan.delay, lambda t, probe=plan.probe: self._open(t, probe))

    def _open(self, now: float, probe: bool = False) -> None:
        """``connect_with_retry``: the first attempt, and at once a second if refused; an
        outage's probe makes one."""
        attempts = 1 if self.state.recovering(now) else self.attempts_per_open
        for _ in range(attempts):
            self.sim.count_attempt(now)
            if self.sim.server.login(now):
                self.sim.events.at(now + LOGIN_S, self._opened)
                return
            now += REFUSED_S
        self.carry_out(self.state.open_failed(ConnectionRefusedError(), now, attempts=attempts), now)

    def _opened(self, now: float) -> None:
        slot = Slot(lease=None, created_at=now, expires_at=math.inf, generation=self.state.generation)
        self.sim.result.recovered += 1
        self.carry_out(self.state.opened(slot, now), now)


# -- the peers: each missing connection on its own reconnect schedule ----------------------------


class ScheduledPool:
    """A pool whose every missing connection retries on ``next_delay(failures)``."""

    def __init__(self, sim: Sim, rng: random.Random, next_delay: Callable[[int, random.Random], float]):
        self.sim, self.rng, self.next_delay = sim, rng, next_delay
        self.have = sim.scenario.min_size
        self.waiting: list[list[float]] = []  # [deadline] of waiting requests

    def whole(self) -> bool:
        return self.have >= self.sim.scenario.min_size

    def lose_all(self, now: float) -> None:
        for _ in range(self.have):
            self.sim.events.at(now, lambda t: self._attempt(t, 0))
        self.have = 0

    def request(self, now: float) -> None:
        if self.have:
            return  # served at once (the model does not hold connections: no contention)
        deadline = now + self.sim.scenario.request_timeout_s
        self.waiting.append([deadline])
        self.sim.events.at(deadline, lambda t: self._expire(t))

    def _expire(self, now: float) -> None:
        expired = [w for w in self.waiting if w[0] <= now]
        self.waiting = [w for w in self.waiting if w[0] > now]
        self.sim.result.timed_out += len(expired)

    def _attempt(self, now: float, failures: int) -> None:
        self.sim.count_attempt(now)
        if self.sim.server.login(now):
            self.sim.events.at(now + LOGIN_S, self._opened)
            return
        delay = self.next_delay(failures + 1, self.rng)
        self.sim.events.at(now + REFUSED_S + delay, lambda t: self._attempt(t, failures + 1))

    def _opened(self, now: float) -> None:
        self.have += 1
        self.sim.result.recovered += 1
        self.waiting.clear()


def psycopg_pool_delay(failures: int, rng: random.Random) -> float:
    # psycopg_pool's ConnectionAttempt: 1 s ±10 %, then doubling (until reconnect_timeout).
    return 1.0 * (1 + rng.uniform(-0.1, 0.1)) * 2.0 ** (failures - 1)


def no_delay(failures: int, rng: random.Random) -> float:
    return 0.01  # "no backoff": the next try on the application's next 10 ms tick


# -- the simulation ------------------------------------------------------------------------------


class Sim:
    def __init__(self, scenario: Scenario, policy: str):
        self.scenario = scenario
        self.events = Events()
        # The timeline: the pools serve their requests from 0, the server goes down at
        # warmup_s (reported as second 0) and comes back down_s later.
        down_at = scenario.warmup_s
        self.server = Server(down_at=down_at, up_at=down_at + scenario.down_s, rate=scenario.accept_per_s)
        self.result = Result()
        rng = random.Random(scenario.seed)
        self.pools: list[Any] = []
        for _ in range(scenario.pools):
            pool_rng = random.Random(rng.random())
            if policy == "tether":
                self.pools.append(TetherPool(self, pool_rng))
            else:
                delay = psycopg_pool_delay if policy == "psycopg_pool" else no_delay
                self.pools.append(ScheduledPool(self, pool_rng, delay))
        for pool in self.pools:  # the idle sweep (1 s) finds the dead connections
            self.events.at(down_at + rng.uniform(0.0, 1.0), pool.lose_all)
            self._next_request(pool, rng.random() / scenario.requests_per_s, rng)

    def _next_request(self, pool: Any, at: float, rng: random.Random) -> None:
        def fire(now: float) -> None:
            pool.request(now)
            self._next_request(pool, now + rng.expovariate(self.scenario.requests_per_s), rng)

        if at < self.scenario.warmup_s + self.scenario.horizon_s:
            self.events.at(at, fire)

    def count_attempt(self, now: float) -> None:
        if now >= self.server.down_at:
            self.result.attempts[math.floor(now - self.server.down_at)] += 1

    def run(self) -> Result:
        step = 0.05
        now = 0.0
        server = self.server
        while now < server.down_at + self.scenario.horizon_s:
            now += step
            self.events.run(now)
            if now > server.up_at and math.isnan(self.result.whole_at) and all(p.whole() for p in self.pools):
                self.result.whole_at = now - server.down_at
        return self.result


def run(scenario: Scenario) -> dict[str, dict[str, float]]:
    return {policy: Sim(scenario, policy).run().summary(scenario)
            for policy in ("tether", "psycopg_pool", "no backoff")}


def render(scenario: Scenario, results: dict[str, dict[str, float]]) -> str:
    fair = scenario.least_whole_s
    lines = [
        f"{scenario.pools} pools (min_size {scenario.min_size}, {scenario.requests_per_s:g} requests/s "
        f"each), server down {scenario.down_s:g} s, then {scenario.accept_per_s:g} logins/s "
        f"(whole again in {fair:.1f} s at the least)",
        f"{'policy':14} {'peak/s down':>12} {'peak/s after':>13} {'x R':>6} {'whole after':>12} "
        f"{'attempts':>9} {'after':>8} {'conns':>6} {'attempts/conn':>14} {'failed early':>13} "
        f"{'timed out':>10}",
    ]
    for policy, r in results.items():
        after = r["peak_attempts_per_s_after"]
        lines.append(
            f"{policy:14} {r['peak_attempts_per_s_down']:12.0f} {after:13.0f} "
            f"{after / scenario.accept_per_s:6.2f} {r['whole_after_return_s']:10.1f} s "
            f"{r['attempts_total']:9.0f} {r['attempts_after_return']:8.0f} {r['recovered']:6.0f} "
            f"{r['attempts_per_recovered']:14.1f} {r['requests_failed_early']:13.0f} "
            f"{r['requests_timed_out']:10.0f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_sim")
    defaults = Scenario()
    parser.add_argument("--pools", type=int, default=defaults.pools)
    parser.add_argument("--down", type=float, default=defaults.down_s)
    parser.add_argument("--rate", type=float, default=defaults.accept_per_s, help="logins/s after the outage")
    parser.add_argument("--requests", type=float, default=defaults.requests_per_s, help="per pool per second")
    parser.add_argument("--out", default="bench/results/fleet.json")
    args = parser.parse_args(argv)
    scenario = Scenario(pools=args.pools, down_s=args.down, accept_per_s=args.rate,
                        requests_per_s=args.requests)
    results = run(scenario)
    print(render(scenario, results))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"scenario": scenario.__dict__, "results": results}, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
