"""Slow close: the end of the stream (FIN) is passed on ``delay_s`` late."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tether.wan._items import Eof, Item
from tether.wan.faults._base import MAX_SECONDS, Fault, Stage, attribute, check_number, register

__all__ = ["SlowClose"]


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class SlowClose(Fault):
    """Delay the half-close of this direction by ``delay_s``; data is not delayed."""

    type_name = "slow_close"

    delay_s: float

    def _check(self) -> None:
        check_number("delay_s", self.delay_s, high=MAX_SECONDS)

    def new_stage(self, rng: random.Random) -> Stage:
        return _SlowCloseStage(self.delay_s)

    def to_attributes(self) -> dict[str, Any]:
        return {"delay": round(self.delay_s * 1000)}

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any], *, toxicity: float) -> SlowClose:
        ms = attribute(attributes, "delay", high=MAX_SECONDS * 1000)
        return cls(delay_s=ms / 1000, toxicity=toxicity)


class _SlowCloseStage(Stage):
    __slots__ = ("_delay_s",)

    def __init__(self, delay_s: float) -> None:
        self._delay_s = delay_s

    def process(self, item: Item, now: float) -> list[Item]:
        if isinstance(item, Eof):
            item.ready_at = max(item.ready_at, now) + self._delay_s
        return [item]
