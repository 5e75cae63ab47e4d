"""What the sync and async proxies share (one copy, not two): the borrowed connection and its tracking.

A proxy notes each statement before it is sent: what it leaves in the session (a SET,
a temporary table, a prepared statement) decides whether the pool must reset the
session on return. It also remembers the old value of every client-side setting the
borrower changed (``autocommit``, ``isolation_level``, ...) so the pool can put it back.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..net import Liveness
from ..sql import PLAIN, Effect, Op, TxStatus
from ._log import SessionLog

if TYPE_CHECKING:
    from ..dialects import Dialect
    from ..pool._state import Slot


_UNREADABLE = (Effect(Op.LOST, reason="statement that could not be read"),)


class Tracking:
    """What both proxies share: the borrowed connection (``_raw``, ``_slot``, ``_owner``
    in ``__dict__``) and what its session and client settings carry."""

    _raw: Any
    _slot: Slot | None
    _owner: Any
    _dialect: Dialect
    _driver: Any
    changes: tuple[str, ...] = ()  # what the session now carries beyond the borrow
    saved: dict[str, Any] | None = None  # client-side settings to put back
    _log: SessionLog | None = None  # replayable state, when idle resiliency is on
    _lost: Exception | None = None  # the SessionLost every later call raises

    @property
    def raw(self) -> Any:
        """The driver's own connection object (don't keep it past the borrow)."""
        raw = self._raw
        if raw is None:
            raise self._owner.returned_error(self)
        return raw

    @property
    def closed(self) -> bool:
        return self._raw is None

    def detach(self) -> Slot | None:
        """Take the connection away from this proxy (the pool does this on return)."""
        attrs = self.__dict__
        slot: Slot | None = attrs["_slot"]
        attrs["_slot"] = attrs["_raw"] = None
        return slot

    def note(self, sql: Any) -> None:
        """Record what ``sql`` leaves in the session, before it is sent."""
        if type(sql) is str:  # the common case: one cached lookup
            found = self._dialect.session_changes(sql)
        else:
            text = _text_of(sql, self._raw)
            found = (
                ("statement that could not be read",)
                if text is None
                else self._dialect.session_changes(text)
            )
        if found and not set(found) <= set(self.changes):
            self.__dict__["changes"] = tuple(dict.fromkeys((*self.changes, *found)))

    # -- idle resiliency (the I/O is the proxies'; the decisions are here) ---------------------

    def effects_of(self, sql: Any, params: Any) -> tuple[Effect, ...]:
        """The session effects of ``sql``; PLAIN (the same object) when it has none."""
        effects = self._dialect.session_effects
        if type(sql) is str:
            return effects(sql)
        text = _text_of(sql, self._raw)
        return effects(text) if text is not None else _UNREADABLE

    def read(self, sql: Any) -> tuple[Effect, ...]:
        """``note(sql)`` and ``effects_of(sql)`` in one cached lookup (the statement path)."""
        if type(sql) is not str:
            self.note(sql)
            return self.effects_of(sql, None)
        dialect: Any = self._dialect
        effects, found = _read(dialect, sql)
        if found and not set(found) <= set(self.changes):
            self.__dict__["changes"] = tuple(dict.fromkeys((*self.changes, *found)))
        return effects

    def idle_break(self) -> bool:
        """Whether the socket says the session broke while it sat idle (zero round trips).

        Called only when the probe polled readable: EOF, a reset, or the server's goodbye
        mean broken; anything else (a NOTIFY) leaves the driver to read it."""
        slot = self._slot
        probe = slot.probe if slot is not None else None
        if probe is None:
            return False
        liveness = probe.check()
        if liveness is Liveness.DATA:
            return self._dialect.idle_bytes_mean_dead(probe.peek()[1])
        return liveness is Liveness.CLOSED

    def recorded(
        self, effects: tuple[Effect, ...], params: Any, before: TxStatus | None, after: TxStatus
    ) -> None:
        """Fold a statement that succeeded into the session log."""
        log = self._log
        if log is None:
            return
        if effects is PLAIN:
            log.plain(after)
        else:
            assert before is not None
            log.record(effects, params, before, after, self._autocommit)

    def _autocommit(self) -> bool | None:
        """The driver's autocommit mode; None when it cannot be read without a round trip."""
        read = getattr(self._driver, "autocommit", None)  # drivers where it is a method
        value = read(self._raw) if read is not None else getattr(self._raw, "autocommit", None)
        return value if isinstance(value, bool) else None

    def remember(self, name: str, old: Any) -> None:
        """Keep the first value of a client-side setting the borrower changes."""
        saved = self.saved
        if saved is None:
            saved = self.__dict__["saved"] = {}
        if name not in saved:
            saved[name] = old


def remembered_setter(conn: Tracking, raw: Any, name: str, method: Any) -> Any:
    """``set_autocommit(...)`` and friends (psycopg's setters for a property ``name[4:]``)
    wrapped so the old value is remembered too; any other attribute as it is."""
    setting = name[4:]
    if not (name.startswith("set_") and isinstance(getattr(type(raw), setting, None), property)):
        getter = _method_getter(raw, name)
        if getter is None:
            return method

        def call_method(value: Any) -> Any:  # PyMySQL's autocommit(value)
            conn.remember(name, getter())
            return method(value)

        return call_method

    def call(value: Any) -> Any:
        conn.remember(setting, getattr(raw, setting))
        return method(value)

    return call


def read_setting(raw: Any, name: str) -> Any:
    """A client-side setting's value: the attribute, or ``get_<name>()`` where the setting
    is a method (PyMySQL: ``autocommit(value)`` and ``get_autocommit()``)."""
    getter = _method_getter(raw, name)
    return getter() if getter is not None else getattr(raw, name)


def write_setting(raw: Any, name: str, value: Any) -> None:
    """Set a client-side setting: the attribute, or the method where it is one (PyMySQL's
    autocommit: assigning would hide the method and leave the server's mode unchanged)."""
    if _method_getter(raw, name) is not None:
        getattr(raw, name)(value)
    else:
        setattr(raw, name, value)


def _method_getter(raw: Any, name: str) -> Any:
    if callable(getattr(type(raw), name, None)):
        return getattr(raw, f"get_{name}", None)
    return None


@lru_cache(maxsize=2048)
def _read(dialect: Any, sql: str) -> tuple[tuple[Effect, ...], tuple[str, ...]]:
    # ``dialect`` is a module-level singleton, hashed by identity: one entry per text.
    return dialect.session_effects(sql), dialect.session_changes(sql)


def _text_of(sql: Any, raw: Any) -> str | None:
    if isinstance(sql, str):
        return sql
    if isinstance(sql, (bytes, bytearray)):
        return bytes(sql).decode("utf-8", "replace")
    as_string = getattr(sql, "as_string", None)  # psycopg.sql.Composable
    if as_string is not None and raw is not None:
        try:
            text: str = as_string(raw)
            return text
        except Exception:
            return None
    return None
