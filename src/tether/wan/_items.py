"""What flows through a fault chain: data chunks, end of stream, and actions on the link.

Every item carries ``ready_at``, the loop time before which it must not be written. Faults
only compute times and split, drop or replace items; the pump does the waiting and writing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Action", "Chunk", "Eof", "Item", "Kill"]


@dataclass(slots=True)
class Chunk:
    """Bytes read from one side, stamped with their arrival time."""

    data: bytes
    arrived_at: float
    ready_at: float


@dataclass(slots=True)
class Eof:
    """The sending side half-closed its connection (FIN)."""

    ready_at: float


class Action(enum.Enum):
    """What a fault may do to the whole connection."""

    RESET = "reset"  # abort both sides with RST (SO_LINGER 0)
    CLOSE = "close"  # close both sides gracefully (FIN)


@dataclass(slots=True)
class Kill:
    """End the connection with ``action`` once ``ready_at`` has passed."""

    action: Action
    ready_at: float


Item = Chunk | Eof | Kill
