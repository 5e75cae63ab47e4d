"""What the checker reports: one frozen :class:`Event` per step, collected in a :class:`Report`."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event", "Outcome", "Report", "Status"]


class Status(str, enum.Enum):
    """A step's verdict, from best to worst (``skip`` means it did not run).

    ``incomplete`` is a report's verdict only: no step warned or failed, but a step that
    matters (the login) could not run here, e.g. for want of a driver: never "all good".
    """

    OK = "ok"
    SKIP = "skip"
    INCOMPLETE = "incomplete"
    WARN = "warn"
    FAIL = "fail"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Status.OK: 0, Status.SKIP: 0, Status.INCOMPLETE: 1, Status.WARN: 2, Status.FAIL: 3}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a step returns; the runner adds the step's name and duration."""

    status: Status
    detail: str
    advice: tuple[str, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    """One finished step: ``step`` name, ``status``, a one-line ``detail``, ``advice``."""

    step: str
    status: Status
    detail: str
    duration_s: float
    advice: tuple[str, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def incomplete(self) -> bool:
        """Skipped for a reason the user must fix (a missing driver, the deadline), not by design."""
        return self.status is Status.SKIP and bool(self.data.get("incomplete"))

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready data (``tether check --json``)."""
        return {
            "step": self.step,
            "status": self.status.value,
            "detail": self.detail,
            "duration_s": round(self.duration_s, 6),
            "advice": list(self.advice),
            "data": dict(self.data),
        }


@dataclass(frozen=True, slots=True)
class Report:
    """Every step's event, in order, for the connection ``target`` (password redacted)."""

    target: str
    dialect: str
    host: str
    port: int
    events: tuple[Event, ...]
    duration_s: float

    @property
    def status(self) -> Status:
        """The worst status of any step; ``incomplete`` if none warned or failed but a step that
        matters could not run (:attr:`Event.incomplete`); ``ok`` only when everything ran."""
        worst = max(self.events, key=lambda e: e.status.rank, default=None)
        if worst is not None and worst.status.rank > 0:
            return worst.status
        return Status.INCOMPLETE if any(e.incomplete for e in self.events) else Status.OK

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def actions(self) -> tuple[str, ...]:
        """Recommended actions: the advice of every step that warned, failed or left the check
        incomplete, once each."""
        seen: dict[str, None] = {}
        for event in self.events:
            if event.status.rank > 0 or event.incomplete:
                seen.update(dict.fromkeys(event.advice))
        return tuple(seen)

    def event(self, step: str) -> Event:
        """The event of ``step``; ``KeyError`` if it did not run."""
        for event in self.events:
            if event.step == step:
                return event
        raise KeyError(step)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``tether check --json``)."""
        return {
            "target": self.target,
            "dialect": self.dialect,
            "host": self.host,
            "port": self.port,
            "status": self.status.value,
            "ok": self.ok,
            "duration_s": round(self.duration_s, 6),
            "steps": [event.to_dict() for event in self.events],
            "actions": list(self.actions),
        }
