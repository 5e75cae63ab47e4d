"""What the steps share: the target, the options, and the outcomes of earlier steps."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..dsn import ConnectionSpec
from ._events import Outcome

__all__ = ["Context", "Options", "Step", "op_timeout"]

Resolver = tuple[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """The checker's knobs, validated once by :func:`tether.check.run_check`."""

    attempts: int
    timeout_s: float  # one network operation: a connect, a query, a handshake, a login
    resolvers: tuple[Resolver, ...] | None  # None: the nameservers of /etc/resolv.conf
    hosts_file: str
    resolv_conf: str


@dataclass(slots=True)
class Context:
    """The target and, by step name, the outcomes that have finished so far."""

    spec: ConnectionSpec
    host: str
    port: int
    options: Options
    results: dict[str, Outcome] = field(default_factory=dict)

    def data(self, step: str, key: str, default: Any = None) -> Any:
        """``key`` from the data of ``step``'s outcome, or ``default`` if it did not run."""
        outcome = self.results.get(step)
        return default if outcome is None else outcome.data.get(key, default)

    def addresses(self) -> list[str]:
        """The addresses to try: those DNS found, or the host itself when it is an address."""
        found: list[str] = self.data("dns", "addresses", [])
        return found or ([self.host] if self.data("name", "is_address", False) else [])


@dataclass(frozen=True, slots=True)
class Step:
    """A named check: ``run(ctx, deadline)`` within ``budget_s(ctx)`` seconds."""

    name: str
    title: str
    run: Callable[[Context, float], Outcome]
    budget_s: Callable[[Context], float]
    hang_advice: str
    doing: Callable[[Context], str] = lambda ctx: ""  # what it is about to do, shown as it starts


def op_timeout(ctx: Context, deadline: float) -> float:
    """The timeout for one operation: the option, cut to what is left before ``deadline``."""
    return max(0.001, min(ctx.options.timeout_s, deadline - time.monotonic()))
