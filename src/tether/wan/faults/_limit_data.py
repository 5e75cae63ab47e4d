"""Limit data: close the connection (FIN) once ``max_bytes`` have passed in this direction."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tether.wan._items import Action, Chunk, Item, Kill
from tether.wan.faults._base import MAX_BYTES, Fault, Stage, attribute, check_number, register

__all__ = ["LimitData"]


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class LimitData(Fault):
    """Forward exactly ``max_bytes`` bytes, then close both sides gracefully."""

    type_name = "limit_data"

    max_bytes: int

    def _check(self) -> None:
        check_number("max_bytes", self.max_bytes, high=MAX_BYTES, integer=True)

    def new_stage(self, rng: random.Random) -> Stage:
        return _LimitStage(self.max_bytes)

    def to_attributes(self) -> dict[str, Any]:
        return {"bytes": self.max_bytes}

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any], *, toxicity: float) -> LimitData:
        return cls(max_bytes=int(attribute(attributes, "bytes", high=MAX_BYTES)), toxicity=toxicity)


class _LimitStage(Stage):
    __slots__ = ("_done", "_left")

    def __init__(self, max_bytes: int) -> None:
        self._left = max_bytes
        self._done = False

    def start(self, now: float) -> list[Kill]:
        if self._left == 0:
            self._done = True
            return [Kill(Action.CLOSE, now)]
        return []

    def process(self, item: Item, now: float) -> list[Item]:
        if self._done:
            return [item] if isinstance(item, Kill) else []
        if not isinstance(item, Chunk):
            return [item]
        if len(item.data) < self._left:
            self._left -= len(item.data)
            return [item]
        self._done = True
        head = Chunk(item.data[: self._left], item.arrived_at, item.ready_at)
        return [head, Kill(Action.CLOSE, item.ready_at)]
