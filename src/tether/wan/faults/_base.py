"""The fault protocol: an immutable setting (:class:`Fault`) and its per-connection runtime.

A :class:`Fault` is a frozen value: what to do, with units in the names. For every connection
it applies to (one roll of ``toxicity`` per connection and direction), it makes a
:class:`Stage`, which holds that connection's state (bytes counted, tokens spent) and turns
items into items: it sets ``ready_at`` times, splits, drops, or appends a :class:`Kill`.
Stages never sleep or touch sockets; the pump in ``_pipe`` does.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from tether.errors import ConfigError
from tether.wan._items import Item, Kill

__all__ = [
    "MAX_BYTES",
    "MAX_SECONDS",
    "Fault",
    "Stage",
    "attribute",
    "check_number",
    "fault_types",
    "register",
]

_F = TypeVar("_F", bound="type[Fault]")
_REGISTRY: dict[str, type[Fault]] = {}

#: Upper bound on any time setting: a day. More is a unit mistake (ms given as s).
MAX_SECONDS = 86_400.0
#: Upper bound on any byte count or rate: 1 TiB.
MAX_BYTES = float(1 << 40)


class Stage:
    """One fault at work on one direction of one connection. The default passes through."""

    #: While true, the pump takes nothing more from the queue (data is held, not dropped).
    holds: bool = False

    def start(self, now: float) -> list[Kill]:
        """Called once when the stage joins a connection; returns actions to schedule."""
        del now
        return []

    def process(self, item: Item, now: float) -> list[Item]:
        """Turn one item into zero or more items, in order."""
        del now
        return [item]


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """Base of every fault. ``toxicity`` is the probability that it applies to a connection."""

    type_name: ClassVar[str] = ""
    #: Applies to the link as a whole (refusing connections), not to a byte stream.
    link_level: ClassVar[bool] = False

    toxicity: float = 1.0

    def __post_init__(self) -> None:
        check_number("toxicity", self.toxicity, low=0.0, high=1.0)
        self._check()

    def _check(self) -> None:
        """Validate the subclass's own fields; raise ConfigError naming the parameter."""

    def new_stage(self, rng: random.Random) -> Stage:
        """Make the runtime for one connection and direction."""
        del rng
        return Stage()

    def to_attributes(self) -> dict[str, Any]:
        """The fault's settings as Toxiproxy attributes (Toxiproxy's names and units)."""
        return {}

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any], *, toxicity: float) -> Fault:
        """Build the fault from Toxiproxy attributes; unknown keys are ignored, as there."""
        del attributes
        return cls(toxicity=toxicity)

    def describe(self) -> str:
        """A short human description, for reprs and the CLI."""
        fields = ", ".join(f"{k}={v!r}" for k, v in self.to_attributes().items())
        return f"{self.type_name}({fields})"


def register(cls: _F) -> _F:
    """Class decorator: make the fault known under its Toxiproxy type name."""
    _REGISTRY[cls.type_name] = cls
    return cls


def fault_types() -> dict[str, type[Fault]]:
    """Every registered fault class, by type name."""
    return dict(_REGISTRY)


def check_number(
    name: str, value: object, *, low: float = 0.0, high: float = math.inf, integer: bool = False
) -> None:
    """Raise ConfigError naming ``name`` unless ``low <= value <= high`` (finite, real)."""
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name} must be {kind}, got {value!r}", key=name)
    number = float(value)  # type: ignore[arg-type]  # checked just above
    if not math.isfinite(number) or not low <= number <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {value!r}", key=name)


def attribute(
    attributes: Mapping[str, Any], name: str, *, default: float = 0, high: float = math.inf
) -> float:
    """Read one Toxiproxy attribute (an integer there), naming it when it is wrong."""
    value = attributes.get(name, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    check_number(name, value, low=0, high=high, integer=True)
    return float(value)
