"""Latency: every chunk is held until ``delay_s`` (± ``jitter_s``) after it arrived.

The delay is measured from arrival, so back-to-back chunks do not add up, and order is kept
(a chunk never overtakes an earlier one, as on a single TCP path).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tether.wan._items import Chunk, Item
from tether.wan.faults._base import MAX_SECONDS, Fault, Stage, attribute, check_number, register

__all__ = ["Latency"]


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Latency(Fault):
    """Delay each chunk by ``delay_s`` plus a uniform jitter in ``[-jitter_s, +jitter_s]``."""

    type_name = "latency"

    delay_s: float
    jitter_s: float = 0.0

    def _check(self) -> None:
        check_number("delay_s", self.delay_s, high=MAX_SECONDS)
        check_number("jitter_s", self.jitter_s, high=MAX_SECONDS)

    def new_stage(self, rng: random.Random) -> Stage:
        return _LatencyStage(self.delay_s, self.jitter_s, rng)

    def to_attributes(self) -> dict[str, Any]:
        return {"latency": round(self.delay_s * 1000), "jitter": round(self.jitter_s * 1000)}

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any], *, toxicity: float) -> Latency:
        ms = MAX_SECONDS * 1000
        return cls(
            delay_s=attribute(attributes, "latency", high=ms) / 1000,
            jitter_s=attribute(attributes, "jitter", high=ms) / 1000,
            toxicity=toxicity,
        )


class _LatencyStage(Stage):
    __slots__ = ("_delay_s", "_jitter_s", "_rng")

    def __init__(self, delay_s: float, jitter_s: float, rng: random.Random) -> None:
        self._delay_s = delay_s
        self._jitter_s = jitter_s
        self._rng = rng

    def _delay(self) -> float:
        if not self._jitter_s:
            return self._delay_s
        return max(0.0, self._delay_s + self._rng.uniform(-self._jitter_s, self._jitter_s))

    def process(self, item: Item, now: float) -> list[Item]:
        start = item.arrived_at if isinstance(item, Chunk) else now
        item.ready_at = max(item.ready_at, start + self._delay())
        return [item]
