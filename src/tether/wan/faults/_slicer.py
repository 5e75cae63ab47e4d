"""Slicer: cut the stream into small chunks, optionally spaced by ``delay_s``.

Useful to exercise protocol parsers that assume a message arrives in one ``recv``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tether.errors import ConfigError
from tether.wan._items import Chunk, Item
from tether.wan.faults._base import (
    MAX_BYTES,
    MAX_SECONDS,
    Fault,
    Stage,
    attribute,
    check_number,
    register,
)

__all__ = ["Slicer"]


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Slicer(Fault):
    """Slices of ``average_size`` ± ``size_variation`` bytes, ``delay_s`` apart."""

    type_name = "slicer"

    average_size: int
    size_variation: int = 0
    delay_s: float = 0.0

    def _check(self) -> None:
        check_number("average_size", self.average_size, low=1, high=MAX_BYTES, integer=True)
        check_number("size_variation", self.size_variation, high=MAX_BYTES, integer=True)
        check_number("delay_s", self.delay_s, high=MAX_SECONDS)
        if self.size_variation >= self.average_size:
            raise ConfigError(
                f"size_variation must be smaller than average_size ({self.average_size}),"
                f" got {self.size_variation}",
                key="size_variation",
            )

    def new_stage(self, rng: random.Random) -> Stage:
        return _SlicerStage(self, rng)

    def to_attributes(self) -> dict[str, Any]:
        return {
            "average_size": self.average_size,
            "size_variation": self.size_variation,
            "delay": round(self.delay_s * 1_000_000),
        }

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any], *, toxicity: float) -> Slicer:
        return cls(
            average_size=int(attribute(attributes, "average_size", high=MAX_BYTES)),
            size_variation=int(attribute(attributes, "size_variation", high=MAX_BYTES)),
            delay_s=attribute(attributes, "delay", high=MAX_SECONDS * 1e6) / 1_000_000,
            toxicity=toxicity,
        )


class _SlicerStage(Stage):
    __slots__ = ("_fault", "_last", "_rng")

    def __init__(self, fault: Slicer, rng: random.Random) -> None:
        self._fault = fault
        self._rng = rng
        self._last = 0.0

    def _size(self) -> int:
        f = self._fault
        return f.average_size + self._rng.randint(-f.size_variation, f.size_variation)

    def process(self, item: Item, now: float) -> list[Item]:
        if not isinstance(item, Chunk):
            return [item]
        out: list[Item] = []
        t = max(item.ready_at, self._last) if self._fault.delay_s else item.ready_at
        offset = 0
        while offset < len(item.data):
            size = self._size()
            out.append(Chunk(item.data[offset : offset + size], item.arrived_at, t))
            offset += size
            t += self._fault.delay_s
        self._last = t
        return out
