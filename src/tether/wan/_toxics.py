"""Toxiproxy's JSON shapes for proxies and toxics, to and from tether's links and faults.

Shapes (as Toxiproxy 2.x serves them)::

    proxy: {"name": str, "listen": "host:port", "upstream": "host:port",
            "enabled": bool, "toxics": [toxic, ...]}
    toxic: {"attributes": {...}, "name": str, "type": str, "stream": "upstream"|"downstream",
            "toxicity": float}

Defaults on creation: ``stream`` downstream, ``toxicity`` 1.0, ``name`` ``<type>_<stream>``,
``enabled`` true. An empty ``listen`` means 127.0.0.1 and a free port (Toxiproxy would
listen on every interface; tether never does unless told).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.errors import ConfigError
from tether.wan._link_state import DIRECTIONS, FaultEntry, LinkState, format_address
from tether.wan._link_state import parse_address as _parse_address
from tether.wan._registry import LinkSpec
from tether.wan.faults import fault_types
from tether.wan.faults._base import check_number

__all__ = ["ApiError", "fault_from_json", "proxy_json", "spec_from_json", "toxic_json"]


class ApiError(Exception):
    """An answer other than success: HTTP status and Toxiproxy's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_body(detail: object) -> ApiError:
    return ApiError(400, f"bad request body: {detail}")


def toxic_json(entry: FaultEntry) -> dict[str, Any]:
    return {
        "attributes": entry.fault.to_attributes(),
        "name": entry.name,
        "type": entry.fault.type_name,
        "stream": entry.direction,
        "toxicity": entry.fault.toxicity,
    }


def proxy_json(state: LinkState) -> dict[str, Any]:
    return {
        "name": state.name,
        "listen": format_address(state.listen),
        "upstream": format_address(state.upstream),
        "enabled": state.enabled,
        "toxics": [toxic_json(e) for e in state.faults.values()],
    }


def _object(body: object) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise bad_body(f"expected a JSON object, got {type(body).__name__}")
    return body


def _string(body: Mapping[str, Any], key: str, default: str = "") -> str:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise bad_body(f"{key} must be a string, got {value!r}")
    return value


def _bool(body: Mapping[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise bad_body(f"{key} must be true or false, got {value!r}")
    return value


def spec_from_json(body: object, *, where: str = "", current: LinkState | None = None) -> LinkSpec:
    """A proxy's fields; missing ones default to ``current`` (update) or Toxiproxy's."""
    fields = _object(body)
    name = current.name if current else _string(fields, "name")
    if not name:
        raise ApiError(400, f"missing required field: name{where}")
    upstream = _string(fields, "upstream", format_address(current.upstream) if current else "")
    if not upstream:
        raise ApiError(400, f"missing required field: upstream{where}")
    listen = _string(fields, "listen", format_address(current.listen) if current else "")
    enabled = _bool(fields, "enabled", current.enabled if current else True)
    try:
        return LinkSpec(
            name=name,
            listen=_parse_address(listen or "127.0.0.1:0", key="listen"),
            upstream=_parse_address(upstream, key="upstream"),
            enabled=enabled,
        )
    except ConfigError as exc:
        raise bad_body(f"{exc}{where}") from exc


def fault_from_json(body: object, state: LinkState) -> FaultEntry:
    """A new toxic for ``state``, with Toxiproxy's defaults and checks, in its order."""
    fields = _object(body)
    stream = _string(fields, "stream", "downstream")
    if stream not in DIRECTIONS:
        raise ApiError(400, "stream was invalid, can be either upstream or downstream")
    type_name = _string(fields, "type")
    name = _string(fields, "name") or f"{type_name}_{stream}"
    cls = fault_types().get(type_name)
    if cls is None:
        raise ApiError(400, f"invalid toxic type: {type_name!r}")
    if name in state.faults:
        raise ApiError(409, "toxic already exists")
    fault = _build(cls, fields.get("attributes"), fields.get("toxicity", 1.0))
    return FaultEntry(name, stream, fault)


def fault_update_from_json(body: object, entry: FaultEntry) -> FaultEntry:
    """Toxiproxy's update: given attributes override the current ones; so does toxicity."""
    fields = _object(body)
    attributes = dict(entry.fault.to_attributes())
    given = fields.get("attributes") or {}
    if not isinstance(given, dict):
        raise bad_body(f"attributes must be an object, got {given!r}")
    attributes.update(given)
    fault = _build(type(entry.fault), attributes, fields.get("toxicity", entry.fault.toxicity))
    return FaultEntry(entry.name, entry.direction, fault)


def _build(cls: Any, attributes: object, toxicity: object) -> Any:
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, dict):
        raise bad_body(f"attributes must be an object, got {attributes!r}")
    try:
        if isinstance(toxicity, int) and not isinstance(toxicity, bool):
            toxicity = float(toxicity)
        check_number("toxicity", toxicity, low=0.0, high=1.0)
        return cls.from_attributes(attributes, toxicity=toxicity)
    except ConfigError as exc:
        raise bad_body(exc) from exc
