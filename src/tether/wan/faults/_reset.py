"""Reset: abort the connection with a TCP RST (``SO_LINGER`` 0), as a crashed peer or a
middlebox that forgot the flow would.

- ``after_bytes=N`` (default 0): the first ``N`` bytes in this direction pass; when more
  arrive, the rest is discarded and the connection is reset ``delay_s`` later. With ``N=0``
  this is Toxiproxy's ``reset_peer``: reset ``timeout`` after the first data.
- ``after_bytes=None``: reset ``delay_s`` after the fault met the connection, data or not
  (an idle connection killed by a NAT timeout).

With ``toxicity`` below 1 only that share of connections is reset: an error rate.
Both sides are reset, so the client sees ``ECONNRESET`` and the server a dropped session.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tether.wan._items import Action, Chunk, Item, Kill
from tether.wan.faults._base import (
    MAX_BYTES,
    MAX_SECONDS,
    Fault,
    Stage,
    attribute,
    check_number,
    register,
)

__all__ = ["Reset"]


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Reset(Fault):
    """RST ``delay_s`` after ``after_bytes`` bytes passed (or after meeting the connection)."""

    type_name = "reset_peer"

    delay_s: float = 0.0
    after_bytes: int | None = 0

    def _check(self) -> None:
        check_number("delay_s", self.delay_s, high=MAX_SECONDS)
        if self.after_bytes is not None:
            check_number("after_bytes", self.after_bytes, high=MAX_BYTES, integer=True)

    def new_stage(self, rng: random.Random) -> Stage:
        return _ResetStage(self.delay_s, self.after_bytes)

    def to_attributes(self) -> dict[str, Any]:
        return {"timeout": round(self.delay_s * 1000), "after_bytes": self.after_bytes}

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any], *, toxicity: float) -> Reset:
        after: int | None = 0
        if "after_bytes" in attributes:
            raw = attributes["after_bytes"]
            after = None if raw is None else int(attribute(attributes, "after_bytes"))
        return cls(
            delay_s=attribute(attributes, "timeout", high=MAX_SECONDS * 1000) / 1000,
            after_bytes=after,
            toxicity=toxicity,
        )


class _ResetStage(Stage):
    __slots__ = ("_delay_s", "_fired", "_left")

    def __init__(self, delay_s: float, after_bytes: int | None) -> None:
        self._delay_s = delay_s
        self._left = after_bytes
        self._fired = False

    def start(self, now: float) -> list[Kill]:
        if self._left is None:
            return [Kill(Action.RESET, now + self._delay_s)]
        return []

    def process(self, item: Item, now: float) -> list[Item]:
        if self._fired:
            return [item] if isinstance(item, Kill) else []
        if self._left is None or not isinstance(item, Chunk):
            return [item]
        if len(item.data) <= self._left and self._left > 0:
            self._left -= len(item.data)
            return [item]
        self._fired = True
        out: list[Item] = []
        if self._left:
            out.append(Chunk(item.data[: self._left], item.arrived_at, item.ready_at))
        out.append(Kill(Action.RESET, max(item.ready_at, now) + self._delay_s))
        return out
