"""Bandwidth: the stream flows at no more than ``rate_bps`` bytes per second.

Chunks are cut into pieces of about 10 ms of transmission, each released when the link
would have finished sending it. A rate of 0 means no limit (as in Toxiproxy).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tether.wan._items import Chunk, Item
from tether.wan.faults._base import MAX_BYTES, Fault, Stage, attribute, check_number, register

__all__ = ["Bandwidth"]

_SLICE_S = 0.01  # release granularity
_BURST_S = 0.01  # how far behind the clock the sender may be before it loses the credit


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Bandwidth(Fault):
    """Limit the stream to ``rate_bps`` bytes per second (0: unlimited)."""

    type_name = "bandwidth"

    rate_bps: float

    def _check(self) -> None:
        check_number("rate_bps", self.rate_bps, high=MAX_BYTES)

    def new_stage(self, rng: random.Random) -> Stage:
        return _BandwidthStage(self.rate_bps) if self.rate_bps else Stage()

    def to_attributes(self) -> dict[str, Any]:
        return {"rate": round(self.rate_bps / 1000)}

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any], *, toxicity: float) -> Bandwidth:
        rate_kbps = attribute(attributes, "rate", high=MAX_BYTES / 1000)
        return cls(rate_bps=rate_kbps * 1000, toxicity=toxicity)


class _BandwidthStage(Stage):
    __slots__ = ("_next_free", "_piece", "_rate")

    def __init__(self, rate_bps: float) -> None:
        self._rate = rate_bps
        self._piece = max(1, int(rate_bps * _SLICE_S))
        self._next_free = 0.0

    def process(self, item: Item, now: float) -> list[Item]:
        if not isinstance(item, Chunk):
            item.ready_at = max(item.ready_at, self._next_free)
            return [item]
        t = max(self._next_free, item.ready_at, now - _BURST_S)
        out: list[Item] = []
        data = memoryview(item.data)
        for offset in range(0, len(data), self._piece):
            piece = bytes(data[offset : offset + self._piece])
            t += len(piece) / self._rate
            out.append(Chunk(piece, item.arrived_at, t))
        self._next_free = t
        return out
