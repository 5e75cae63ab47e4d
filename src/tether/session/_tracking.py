"""What the sync and async proxies share (one copy, not two): the borrowed connection and its tracking.

A proxy notes each statement before it is sent: what it leaves in the session (a SET,
a temporary table, a prepared statement) decides whether the pool must reset the
session on return. It also remembers the old value of every client-side setting the
borrower changed (``autocommit``, ``isolation_level``, ...) so the pool can put it back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..dialects import Dialect
    from ..pool._state import Slot


class Tracking:
    """What both proxies share: the borrowed connection (``_raw``, ``_slot``, ``_owner``
    in ``__dict__``) and what its session and client settings carry."""

    _raw: Any
    _slot: Slot | None
    _owner: Any
    _dialect: Dialect
    changes: tuple[str, ...] = ()  # what the session now carries beyond the borrow
    saved: dict[str, Any] | None = None  # client-side settings to put back

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
        return method

    def call(value: Any) -> Any:
        conn.remember(setting, getattr(raw, setting))
        return method(value)

    return call


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
