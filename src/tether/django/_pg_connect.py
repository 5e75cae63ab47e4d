"""From Django's psycopg connection parameters to a tether pool, and back to the objects
Django gives each connection (adapters, cursor factories), which are not text.

Django builds its connections with ``context=`` (its adapters: the time zone loader, jsonb
and inet as text, its range dumper) and ``cursor_factory=``; a pool opens them from a
connection string. Text goes into the string (the session's time zone too, as a startup
option, so that ``DISCARD ALL`` returns to it); the objects are put on each new driver
connection by ``prepare``.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from ..dsn import ConnectionSpec, parse

# Django's connection parameters that are psycopg's objects or settings, not libpq's text.
_OBJECTS = ("context", "cursor_factory", "autocommit", "row_factory")
# Renamed on the way: Django's (libpq's) names to tether's URL keys.
_RENAMED = {"dbname": "database"}


@dataclass(frozen=True, slots=True)
class DriverSetup:
    """What every driver connection of a pool gets, beyond its connection string."""

    adapters: Any  # a psycopg AdaptersMap: Django's template for its USE_TZ and time zone
    cursor_factory: Any
    server_cursor_factory: Any | None  # None: psycopg's own ServerCursor

    def prepare(self, raw: Any) -> None:
        """Put Django's objects on a new driver connection (once; cheap to repeat)."""
        if getattr(raw, "_tether_django_setup", None) is self:
            return
        from psycopg.adapt import AdaptersMap

        raw._adapters = AdaptersMap(self.adapters)  # what connect(context=) does
        raw.cursor_factory = self.cursor_factory
        if self.server_cursor_factory is not None:
            raw.server_cursor_factory = self.server_cursor_factory
        raw._tether_django_setup = self


def spec_and_setup(params: dict[str, Any], *, timezone_name: str | None,
                   server_cursor_factory: Any | None) -> tuple[ConnectionSpec, DriverSetup, Hashable]:
    """The connection string, the driver setup, and a key that changes when either does."""
    params = dict(params)
    setup = DriverSetup(params.pop("context"), params.pop("cursor_factory"), server_cursor_factory)
    for name in _OBJECTS:
        params.pop(name, None)
    if timezone_name:
        startup = f"-c TimeZone={timezone_name.replace(' ', chr(92) + ' ')}"
        params["options"] = f"{params['options']} {startup}" if params.get("options") else startup
    if "prepare_threshold" in params:  # Django's default None: no prepared statements
        threshold = params["prepare_threshold"]
        params["prepare_threshold"] = "none" if threshold is None else str(threshold)
    overrides = {_RENAMED.get(k, k): v for k, v in params.items() if v is not None}
    spec = parse("postgresql://", driver="psycopg", **overrides)
    key = (spec, id(setup.adapters), setup.cursor_factory, server_cursor_factory)
    return spec, setup, key
