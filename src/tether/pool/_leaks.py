"""Leak detection: borrows held past ``leak_detection_threshold``, and where they began.

Only when the setting is on does a checkout do anything here: it notes the borrow and
its stack (frames only; source lines are read when a warning needs them). The
maintenance sweep, not the hot path, asks ``sweep`` which borrows just passed the
threshold and which of the suspected ones came back (their lease moved to another
borrow number). No I/O and no logging here: the pool logs what ``sweep`` returns.
"""

from __future__ import annotations

import sys
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any

_FRAMES = 12  # innermost frames kept: the application's call site and a few of its callers
_HERE = __name__.rsplit(".", 2)[0]  # "tether": the pool's own frames are left out


@dataclass(slots=True)
class Borrow:
    slot: Any  # the pool's ``Slot``
    epoch: int  # the lease's borrow number when lent: another number means it came back
    since: float
    stack: traceback.StackSummary = field(repr=False)
    suspected: bool = False

    @property
    def number(self) -> int:
        return int(self.slot.number)

    def site(self) -> str:
        """The borrow site's stack, outermost first, as ``traceback`` prints it."""
        return "".join(self.stack.format()).rstrip()


def borrow_stack() -> traceback.StackSummary:
    """The caller's stack without tether's frames, cheaply (no source lines read yet)."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(_HERE):
        frame = frame.f_back
    stack = traceback.StackSummary.extract(traceback.walk_stack(frame), limit=_FRAMES, lookup_lines=False)
    stack.reverse()
    return stack


class LeakWatch:
    """The borrows of one pool, while leak detection is on."""

    def __init__(self) -> None:
        self._lent: dict[int, Borrow] = {}
        self._lock = threading.Lock()

    def lent(self, slot: Any, epoch: int, now: float) -> None:
        borrow = Borrow(slot, epoch, now, borrow_stack())
        with self._lock:
            self._lent[slot.number] = borrow

    def site(self, slot: Any) -> str:
        """Where ``slot``'s current borrow began ("" when unknown)."""
        with self._lock:
            borrow = self._lent.pop(slot.number, None)
        return "" if borrow is None else borrow.site()

    def sweep(self, now: float, threshold_s: float) -> tuple[list[Borrow], list[Borrow]]:
        """(borrows that just passed the threshold, suspected borrows that came back);
        forgets every borrow that came back."""
        suspected: list[Borrow] = []
        ended: list[Borrow] = []
        with self._lock:
            for number, borrow in list(self._lent.items()):
                if borrow.slot.lease.epoch != borrow.epoch:
                    del self._lent[number]
                    if borrow.suspected:
                        ended.append(borrow)
                elif not borrow.suspected and now - borrow.since > threshold_s:
                    borrow.suspected = True
                    suspected.append(borrow)
        return suspected, ended

    def clear(self) -> None:
        with self._lock:
            self._lent.clear()
