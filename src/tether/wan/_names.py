"""Which names a link or a fault may have: those the control API can address again.

A name becomes one path segment (``/proxies/<name>/toxics/<name>``), percent-encoded by
the client and decoded by the server, so it must survive that round trip intact:

* not empty, and at most 255 bytes in UTF-8 (so any two encoded names fit a request line);
* no ``/`` (it would split the segment), and not ``.`` or ``..`` (clients resolve those
  away before sending);
* no control characters: C0 (CR and LF among them), DEL and C1; they break request lines,
  headers and logs;
* valid Unicode: no lone surrogates, which have no UTF-8 encoding.

Everything else (spaces, ``?``, ``#``, ``%``, any other Unicode) is allowed; clients must
percent-encode it in paths.
"""

from __future__ import annotations

import unicodedata

from tether.errors import ConfigError

__all__ = ["MAX_NAME_BYTES", "check_name", "name_problem"]

MAX_NAME_BYTES = 255


def name_problem(name: object) -> str | None:
    """What is wrong with ``name`` as a link or fault name, or None if nothing is."""
    if not isinstance(name, str):
        return f"must be a string, not {type(name).__name__}"
    if not name:
        return "must not be empty"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "must be valid Unicode (a lone surrogate has no UTF-8 encoding)"
    if size > MAX_NAME_BYTES:
        return f"must be at most {MAX_NAME_BYTES} bytes in UTF-8, got {size}"
    if "/" in name:
        return "must not contain '/'"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if any(unicodedata.category(c) == "Cc" for c in name):
        return "must not contain control characters (such as CR, LF or NUL)"
    return None


def check_name(name: object, *, key: str = "name") -> None:
    """Raise :class:`ConfigError` naming ``key`` and the rule unless ``name`` is allowed."""
    problem = name_problem(name)
    if problem is not None:
        shown = repr(name)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        raise ConfigError(f"{key} {problem}, got {shown}", key=key)
