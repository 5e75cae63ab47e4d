"""Leak detection: borrows held past ``leak_detection_threshold``, and where they began.

Only when the setting is on does a checkout do anything here: it notes the borrow and
its stack (frames only; source lines are read when a warning needs them). The
maintenance sweep, not the hot path, asks ``sweep`` which borrows just passed the
threshold and which of the suspected ones came back (their lease moved to another
borrow number). No I/O and no logging here: the pool logs what ``sweep`` returns.
"""

from __future__ import annotations

import linecache
import sys
import threading
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

_FRAMES = 12  # innermost frames kept: the application's call site and a few of its callers
_HERE = __name__.rsplit(".", 2)[0]  # "tether": the pool's own frames are left out


@dataclass(slots=True)
class Borrow:
    slot: Any  # the pool's ``Slot``
    epoch: int  # the lease's borrow number when lent: another number means it came back
    since: float
    stack: list[tuple[CodeType, int]] = field(repr=False)  # (code, instruction offset), innermost first
    suspected: bool = False

    @property
    def number(self) -> int:
        return int(self.slot.number)

    def site(self) -> str:
        """The borrow site's stack, outermost first, as ``traceback`` prints it."""
        return format_stack(self.stack)


def borrow_stack() -> list[tuple[CodeType, int]]:
    """The caller's stack without tether's frames, cheaply: code objects and line numbers
    only (file names and source lines are looked up when a warning needs them)."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(_HERE):
        frame = frame.f_back
    stack: list[tuple[CodeType, int]] = []
    seen: Any = frame
    while seen is not None and len(stack) < _FRAMES:
        stack.append((seen.f_code, seen.f_lasti))  # f_lineno costs a line-table walk
        seen = seen.f_back
    return stack


def format_stack(stack: list[tuple[CodeType, int]]) -> str:
    lines = []
    for code, offset in reversed(stack):
        lineno = next((line for start, end, line in code.co_lines() if start <= offset < end), None) or 0
        lines.append(f'  File "{code.co_filename}", line {lineno}, in {code.co_name}')
        source = linecache.getline(code.co_filename, lineno).strip()
        if source:
            lines.append(f"    {source}")
    return "\n".join(lines)


class LeakWatch:
    """The borrows of one pool, while leak detection is on."""

    def __init__(self) -> None:
        self._lent: dict[int, Borrow] = {}
        self._lock = threading.Lock()

    def lent(self, slot: Any, epoch: int, now: float) -> None:
        self._lent[slot.number] = Borrow(slot, epoch, now, borrow_stack())  # one store: atomic

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
