"""From Django's psycopg connection parameters to a tether pool, and back to the objects
Django gives each connection (adapters, cursor factories), which are not text.

Django builds its connections with ``context=`` (its adapters: the time zone loader, jsonb
and inet as text, its range dumper) and ``cursor_factory=``; a pool opens them from a
connection string. Text goes into the string (the session's time zone too, as a startup
option, so that ``DISCARD ALL`` returns to it and no ``SET TIME ZONE`` is ever needed); the
objects go to psycopg's connect through the pool's ``kwargs`` and ``configure`` hook, so
that a connection opened by idle connection resiliency has them too.
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
    """What every driver connection of a pool gets, beyond its connection string: Django's
    adapters and cursor class as psycopg's connect arguments (the pool's ``kwargs``), and,
    in the pool's ``configure`` hook, its server-side cursor class and ``assume_role``."""

    adapters: Any  # a psycopg AdaptersMap: Django's template for its USE_TZ and time zone
    cursor_factory: Any
    server_cursor_factory: Any
    role: str | None = None

    def kwargs(self) -> dict[str, Any]:
        return {"context": self.adapters, "cursor_factory": self.cursor_factory}

    def configure(self, raw: Any) -> None:
        """The pool's configure hook: on every new driver connection (the one idle
        resiliency opens too) and after each session reset (DISCARD ALL resets the role)."""
        raw.server_cursor_factory = self.server_cursor_factory
        if self.role:
            from psycopg import sql

            raw.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self.role)))


def spec_and_setup(params: dict[str, Any], *, timezone_name: str | None, server_cursor_factory: Any,
                   role: str | None) -> tuple[ConnectionSpec, DriverSetup, Hashable]:
    """The connection string, the driver setup, and a key that changes when either does."""
    params = dict(params)
    setup = DriverSetup(params.pop("context"), params.pop("cursor_factory"), server_cursor_factory, role)
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
    key = (spec, id(setup.adapters), setup.cursor_factory, server_cursor_factory, role)
    return spec, setup, key
