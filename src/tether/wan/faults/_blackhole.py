"""Blackhole: stop forwarding without closing; Toxiproxy's ``timeout`` toxic.

As in Toxiproxy, data that arrives while the blackhole is in place is **discarded**: it
will never be delivered, even after the fault is removed. With ``timeout_s`` above 0 the
connection is closed (FIN) that long after the fault met it; with 0 it stays open.

``hold=True`` (a tether extension) holds the data instead, as a stalled path would: nothing
is read past the buffers (backpressure reaches the sender) and everything is delivered,
in order, once the fault is removed.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tether.wan._items import Action, Chunk, Item, Kill
from tether.wan.faults._base import MAX_SECONDS, Fault, Stage, attribute, check_number, register

__all__ = ["Blackhole"]


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Blackhole(Fault):
    """Forward nothing; close ``timeout_s`` later (0: never); ``hold`` keeps the data."""

    type_name = "timeout"

    timeout_s: float = 0.0
    hold: bool = False

    def _check(self) -> None:
        check_number("timeout_s", self.timeout_s, high=MAX_SECONDS)
        if not isinstance(self.hold, bool):
            from tether.errors import ConfigError

            raise ConfigError(f"hold must be a bool, got {self.hold!r}", key="hold")

    def new_stage(self, rng: random.Random) -> Stage:
        return _BlackholeStage(self.timeout_s, self.hold)

    def to_attributes(self) -> dict[str, Any]:
        return {"timeout": round(self.timeout_s * 1000), "hold": self.hold}

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any], *, toxicity: float) -> Blackhole:
        return cls(
            timeout_s=attribute(attributes, "timeout", high=MAX_SECONDS * 1000) / 1000,
            hold=attributes.get("hold", False),
            toxicity=toxicity,
        )


class _BlackholeStage(Stage):
    __slots__ = ("_timeout_s", "holds")

    def __init__(self, timeout_s: float, hold: bool) -> None:
        self._timeout_s = timeout_s
        self.holds = hold

    def start(self, now: float) -> list[Kill]:
        return [Kill(Action.CLOSE, now + self._timeout_s)] if self._timeout_s else []

    def process(self, item: Item, now: float) -> list[Item]:
        return [] if isinstance(item, Chunk) else [item]
