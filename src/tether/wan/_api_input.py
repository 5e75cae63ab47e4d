"""What a control-API request says, checked before it reaches the registry: path and body.

* The path is split on ``/`` and each segment percent-decoded (strictly: ``%`` then two hex
  digits) and read as UTF-8, so ``/proxies/sp%20ace`` addresses the proxy ``sp ace``.
* The body is UTF-8 JSON nested at most :data:`MAX_DEPTH` levels, without ``NaN`` or
  ``Infinity``; integers fit in 64 bits (Toxiproxy's ``int64``) and floats are finite.
* ``listen`` and ``upstream`` ports are ASCII digits (``int()`` would also take ``²``).

Every refusal is an :class:`ApiError` 400 whose message says which rule was broken.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote_to_bytes

from tether.errors import ConfigError
from tether.wan._names import check_name
from tether.wan._toxics import ApiError, bad_body

__all__ = ["MAX_DEPTH", "check_addresses", "check_toxic_name", "decode_json", "path_segments"]

#: Deepest JSON accepted; the deepest valid request (populate → proxy → toxic) needs 3.
MAX_DEPTH = 32
_INT64 = 1 << 63
_ESCAPES = re.compile(rb"(?:[^%]|%[0-9A-Fa-f]{2})*")
_PORT = re.compile(r"[0-9]{1,5}")


def path_segments(target: str) -> tuple[str, ...]:
    """``"/proxies/sp%20ace/?x"`` → ``("proxies", "sp ace")``; trailing slashes ignored."""
    path = target.split("?", 1)[0].rstrip("/")
    raw = path.encode("latin-1")  # the bytes as sent: raw UTF-8 is decoded like %-escapes
    return tuple(_decode_segment(s) for s in raw.split(b"/")[1:])


def _decode_segment(segment: bytes) -> str:
    if not _ESCAPES.fullmatch(segment):
        raise ApiError(400, "malformed percent-escape in path: '%' must be followed by two hex digits")
    try:
        return unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "path is not UTF-8 once percent-decoded") from None


class _Refused(ValueError):
    """A JSON value json.loads would take but the API does not."""


def decode_json(body: bytes) -> Any:
    """The body as JSON (None when empty), within the limits above."""
    try:
        text = body.decode("utf-8")
        value = json.loads(
            text or "null",
            parse_int=_bounded_int,
            parse_float=_finite_float,
            parse_constant=_no_constant,
        )
    except _Refused as exc:
        raise bad_body(exc) from None
    except RecursionError:
        raise bad_body(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise bad_body(exc) from None
    if _depth(value) > MAX_DEPTH:
        raise bad_body(f"JSON nested deeper than {MAX_DEPTH} levels")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > 20 or not -_INT64 <= int(text) < _INT64:
        raise _Refused(f"integer out of range (64 bits): {_shorten(text)}")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Refused(f"number out of range: {_shorten(text)}")
    return value


def _no_constant(text: str) -> float:
    raise _Refused(f"{text} is not valid JSON")


def _depth(value: Any) -> int:
    """Nesting depth of containers, without recursion (json.loads went up to ~1000)."""
    deepest = 0
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def check_addresses(fields: object, *, where: str = "") -> None:
    """Refuse a ``listen`` or ``upstream`` whose port is not plain ASCII digits."""
    if not isinstance(fields, dict):
        return  # the shape check downstream names the problem
    for key in ("listen", "upstream"):
        value = fields.get(key)
        if isinstance(value, str) and value:
            port = value.rpartition(":")[2]
            if not _PORT.fullmatch(port):
                message = f"{key} must be host:port with a port of 1 to 5 ASCII digits"
                raise bad_body(f"{message}, got {_shorten(value)!r}{where}")


def check_toxic_name(fields: object) -> None:
    """Refuse a toxic ``name`` the API could not address later (see ``_names``)."""
    if isinstance(fields, dict) and isinstance(fields.get("name"), str) and fields["name"]:
        try:
            check_name(fields["name"])
        except ConfigError as exc:
            raise bad_body(exc) from exc


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
