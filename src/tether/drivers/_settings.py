"""Client-side settings of a driver's connection object: read, write, and remember.

Most are attributes (``autocommit``, ``isolation_level``, ``row_factory``); PyMySQL's
``autocommit`` is a method (``autocommit(value)`` and ``get_autocommit()``), where an
assignment would hide the method and leave the server's mode unchanged.
"""

from __future__ import annotations

from typing import Any


def read_setting(raw: Any, name: str) -> Any:
    """A client-side setting's value: the attribute, or ``get_<name>()`` where it is a method."""
    getter = method_getter(raw, name)
    return getter() if getter is not None else getattr(raw, name)


def write_setting(raw: Any, name: str, value: Any) -> None:
    """Set a client-side setting: the attribute, or the method where it is one."""
    if method_getter(raw, name) is not None:
        getattr(raw, name)(value)
    else:
        setattr(raw, name, value)


def method_getter(raw: Any, name: str) -> Any:
    """``raw.get_<name>`` where ``<name>`` is a method of the connection's class, else None."""
    if callable(getattr(type(raw), name, None)):
        return getattr(raw, f"get_{name}", None)
    return None
