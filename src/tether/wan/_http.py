"""Toxiproxy's HTTP control API, on asyncio streams in the emulator's loop (stdlib only).

Routes, status codes and error bodies (``{"error": message, "status": code}``) follow
Toxiproxy 2.x, so its clients work unchanged. One request per connection
(``Connection: close``). Requests from browsers (a ``Mozilla/`` user agent) are refused
with 403, as Toxiproxy does, so a web page cannot drive the emulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from tether.errors import ConfigError
from tether.wan._errors import AlreadyExists, ListenError, NotFound
from tether.wan._link_state import Address
from tether.wan._registry import Registry
from tether.wan._toxics import (
    ApiError,
    bad_body,
    fault_from_json,
    fault_update_from_json,
    proxy_json,
    spec_from_json,
    toxic_json,
)

__all__ = ["TOXIPROXY_VERSION", "ApiServer"]

log = logging.getLogger(__name__)

#: What ``GET /version`` answers: the Toxiproxy API level served, tagged as tether's.
TOXIPROXY_VERSION = "2.12.0+tether"
_MAX_BODY = 1 << 20
_READ_TIMEOUT_S = 15.0

Reply = tuple[int, Any]
Handler = Callable[..., Awaitable[Reply]]


class ApiServer:
    """Serves the control API for one :class:`Registry`."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._server: asyncio.Server | None = None
        self._routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
            (re.compile(r"/proxies"), {"GET": self._proxy_index, "POST": self._proxy_create}),
            (re.compile(r"/populate"), {"POST": self._populate}),
            (re.compile(r"/reset"), {"POST": self._reset}),
            (re.compile(r"/version"), {"GET": self._version}),
            (
                re.compile(r"/proxies/(?P<proxy>[^/]+)"),
                {
                    "GET": self._proxy_show,
                    "POST": self._proxy_update,
                    "PATCH": self._proxy_update,
                    "DELETE": self._proxy_delete,
                },
            ),
            (
                re.compile(r"/proxies/(?P<proxy>[^/]+)/toxics"),
                {"GET": self._toxic_index, "POST": self._toxic_create},
            ),
            (
                re.compile(r"/proxies/(?P<proxy>[^/]+)/toxics/(?P<toxic>[^/]+)"),
                {
                    "GET": self._toxic_show,
                    "POST": self._toxic_update,
                    "PATCH": self._toxic_update,
                    "DELETE": self._toxic_delete,
                },
            ),
        ]

    async def start(self, host: str, port: int) -> Address:
        try:
            self._server = await asyncio.start_server(self._serve, host, port, reuse_address=True)
        except OSError as exc:
            raise ListenError(f"control API cannot listen on {host}:{port}: {exc}") from exc
        bound = self._server.sockets[0].getsockname()
        return host, bound[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    # -- HTTP ----------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(_read_request(reader), _READ_TIMEOUT_S)
            status, payload = await self._dispatch(*request) if request else (0, None)
            if status:
                writer.write(_response(status, payload))
                await writer.drain()
        except (asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError) as exc:
            log.debug("control API: client went away: %r", exc)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _dispatch(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if headers.get("user-agent", "").startswith("Mozilla/"):
            return 403, {"error": "User agent not allowed", "status": 403}
        try:
            return await self._route(method, path, body)
        except ApiError as exc:
            return exc.status, {"error": exc.message, "status": exc.status}
        except Exception as exc:  # a bug: answer 500 rather than drop the request
            log.exception("control API: %s %s failed", method, path)
            return 500, {"error": f"internal error: {exc}", "status": 500}

    async def _route(self, method: str, path: str, body: bytes) -> Reply:
        path = path.split("?", 1)[0].rstrip("/") or "/"
        for pattern, handlers in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            handler = handlers.get(method)
            if handler is None:
                raise ApiError(405, f"method {method} not allowed on {path}")
            return await handler(body, **match.groupdict())
        raise ApiError(404, f"no such endpoint: {path}")

    # -- proxies -------------------------------------------------------------------------

    async def _proxy_index(self, body: bytes) -> Reply:
        return 200, {name: proxy_json(s) for name, s in self._registry.links.items()}

    async def _proxy_create(self, body: bytes) -> Reply:
        spec = spec_from_json(_json(body))
        try:
            state = await self._registry.create(spec)
        except AlreadyExists as exc:
            raise ApiError(409, "proxy already exists") from exc
        except ListenError as exc:
            raise ApiError(409, str(exc)) from exc
        return 201, proxy_json(state)

    async def _proxy_show(self, body: bytes, proxy: str) -> Reply:
        return 200, proxy_json(self._get(proxy))

    async def _proxy_update(self, body: bytes, proxy: str) -> Reply:
        spec = spec_from_json(_json(body), current=self._get(proxy))
        try:
            state = await self._registry.update(proxy, spec)
        except ListenError as exc:
            raise ApiError(409, str(exc)) from exc
        return 200, proxy_json(state)

    async def _proxy_delete(self, body: bytes, proxy: str) -> Reply:
        self._get(proxy)
        await self._registry.remove(proxy)
        return 204, None

    async def _populate(self, body: bytes) -> Reply:
        items = _json(body)
        if not isinstance(items, list):
            raise bad_body(f"expected a JSON array of proxies, got {type(items).__name__}")
        specs = [spec_from_json(item, where=f" at proxy {i}") for i, item in enumerate(items, 1)]
        try:
            states = await self._registry.populate(specs)
        except ConfigError as exc:
            raise bad_body(exc) from exc
        except ListenError as exc:
            raise ApiError(409, str(exc)) from exc
        return 201, {"proxies": [proxy_json(s) for s in states]}

    async def _reset(self, body: bytes) -> Reply:
        try:
            await self._registry.reset()
        except ListenError as exc:
            raise ApiError(409, str(exc)) from exc
        return 204, None

    async def _version(self, body: bytes) -> Reply:
        return 200, {"version": TOXIPROXY_VERSION}

    # -- toxics --------------------------------------------------------------------------

    async def _toxic_index(self, body: bytes, proxy: str) -> Reply:
        return 200, [toxic_json(e) for e in self._get(proxy).faults.values()]

    async def _toxic_create(self, body: bytes, proxy: str) -> Reply:
        state = self._get(proxy)
        entry = fault_from_json(_json(body), state)
        await state.add_fault(entry)
        return 200, toxic_json(entry)

    async def _toxic_show(self, body: bytes, proxy: str, toxic: str) -> Reply:
        state = self._get(proxy)
        if toxic not in state.faults:
            raise ApiError(404, "toxic not found")
        return 200, toxic_json(state.faults[toxic])

    async def _toxic_update(self, body: bytes, proxy: str, toxic: str) -> Reply:
        state = self._get(proxy)
        if toxic not in state.faults:
            raise ApiError(404, "toxic not found")
        entry = fault_update_from_json(_json(body), state.faults[toxic])
        await state.update_fault(entry)
        return 200, toxic_json(entry)

    async def _toxic_delete(self, body: bytes, proxy: str, toxic: str) -> Reply:
        state = self._get(proxy)
        try:
            await state.remove_fault(toxic)
        except NotFound as exc:
            raise ApiError(404, "toxic not found") from exc
        return 204, None

    def _get(self, name: str) -> Any:
        try:
            return self._registry.get(name)
        except NotFound as exc:
            raise ApiError(404, "proxy not found") from exc


def _json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_body(exc) from exc


async def _read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, str, dict[str, str], bytes] | None:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    headers = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    if not 0 <= length <= _MAX_BODY:
        return None
    body = await reader.readexactly(length) if length else b""
    return parts[0].upper(), parts[1], headers, body


def _response(status: int, payload: Any) -> bytes:
    reason = HTTPStatus(status).phrase
    body = b"" if payload is None else json.dumps(payload).encode() + b"\n"
    head = [f"HTTP/1.1 {status} {reason}", "Connection: close"]
    if payload is not None:
        head.append("Content-Type: application/json")
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
