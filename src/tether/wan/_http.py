"""Toxiproxy's HTTP control API, on asyncio streams in the emulator's loop (stdlib only).

Routes, status codes and error bodies (``{"error": message, "status": code}``) follow
Toxiproxy 2.x, so its clients work unchanged. One request per connection
(``Connection: close``). Requests from browsers (a ``Mozilla/`` user agent) are refused
with 403, as Toxiproxy does, so a web page cannot drive the emulator.

Every request is answered, and whatever the client got wrong is a 4xx with that body,
never a 500, a dropped connection or a traceback in the log (a DEBUG line at most):

* framing (``_http_wire``): request line at most 8 KiB (414), request line and headers
  64 KiB and 100 fields (431), body 1 MiB (413, answered before the body is read, which
  is then read and dropped so the client sees the answer), ``Content-Length`` in ASCII
  digits (400), no ``Transfer-Encoding`` (411), the whole request within 15 s (408);
* path and body (``_api_input``): path segments percent-decoded as UTF-8; JSON nested at
  most 32 levels, integers within 64 bits, finite numbers, no ``NaN``; ports in ASCII
  digits, 1..65535 (0 for ``listen``: any free port); names as ``_names`` allows.

A proxy that cannot listen (address in use, or out of file descriptors: see
``_link_state.RESERVED_FDS``) is a 409, whichever request made it listen. Unknown JSON fields
are ignored, as Toxiproxy (Go's ``encoding/json``) ignores them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from tether.errors import ConfigError
from tether.wan._api_input import check_addresses, check_toxic_name, decode_json, path_segments
from tether.wan._errors import AlreadyExists, ListenError, NotFound
from tether.wan._http_wire import (
    MAX_HEAD,
    Request,
    TextBody,
    close_gently,
    encode_error,
    encode_response,
    read_request,
)
from tether.wan._link_state import Address
from tether.wan._metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from tether.wan._metrics import render as render_metrics
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
READ_TIMEOUT_S = 15.0  # Toxiproxy's read_timeout

Reply = tuple[int, Any]
Handler = Callable[..., Awaitable[Reply]]
# A route is a path pattern, one item per segment: a literal, or "{name}" for a parameter.
Route = tuple[tuple[str, ...], dict[str, Handler]]


class ApiServer:
    """Serves the control API for one :class:`Registry`."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.StreamWriter, asyncio.Task[Any]] = {}
        self._routes: list[Route] = [
            (("proxies",), {"GET": self._proxy_index, "POST": self._proxy_create}),
            (("populate",), {"POST": self._populate}),
            (("reset",), {"POST": self._reset}),
            (("version",), {"GET": self._version}),
            (("stats",), {"GET": self._stats}),  # ours, not Toxiproxy's: for ``tether wan link stats``
            (("metrics",), {"GET": self._metrics}),  # Prometheus's text format, as Toxiproxy 2.6+
            (
                ("proxies", "{proxy}"),
                {
                    "GET": self._proxy_show,
                    "POST": self._proxy_update,
                    "PATCH": self._proxy_update,
                    "DELETE": self._proxy_delete,
                },
            ),
            (
                ("proxies", "{proxy}", "toxics"),
                {"GET": self._toxic_index, "POST": self._toxic_create},
            ),
            (
                ("proxies", "{proxy}", "toxics", "{toxic}"),
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
            self._server = await asyncio.start_server(
                self._serve, host, port, reuse_address=True, limit=MAX_HEAD
            )
        except OSError as exc:
            raise ListenError(f"control API cannot listen on {host}:{port}: {exc}") from exc
        if not self._server.sockets:  # create_server skips addresses it has no socket for
            self._server.close()
            self._server = None
            message = f"control API cannot listen on {host}:{port}: no socket (out of file descriptors?)"
            raise ListenError(message)
        bound = self._server.sockets[0].getsockname()
        return host, bound[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in self._connections:  # ends close_gently's wait for the client
                writer.transport.abort()
            if self._connections:
                await asyncio.wait(self._connections.values(), timeout=1.0)
            await self._server.wait_closed()
            self._server = None

    # -- HTTP ----------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections[writer] = task
        try:
            answer = await self._answer(reader, writer)
            if answer is not None:
                writer.write(answer)
                await writer.drain()
            await close_gently(reader, writer)
        except OSError as exc:
            log.debug("control API: client went away: %r", exc)
        finally:
            writer.close()
            self._connections.pop(writer, None)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes | None:
        """The response to send, or None if the client sent nothing at all."""
        try:
            request = await asyncio.wait_for(read_request(reader, writer), READ_TIMEOUT_S)
        except asyncio.TimeoutError:
            log.debug("control API: no complete request within %.0f s", READ_TIMEOUT_S)
            return encode_error(408, f"no complete request within {READ_TIMEOUT_S:.0f} s")
        except ApiError as exc:
            log.debug("control API: refused a request: %d %s", exc.status, exc.message)
            return encode_error(exc.status, exc.message)
        except Exception as exc:  # a bug, as in _dispatch: still an answer
            log.exception("control API: reading a request failed")
            return encode_error(500, f"internal error: {exc}")
        if request is None:
            return None
        status, payload = await self._dispatch(request)
        if status >= 400:
            log.debug("control API: %s %s -> %d", request.method, request.target[:200], status)
        return encode_response(status, payload, head=request.method == "HEAD")

    async def _dispatch(self, request: Request) -> Reply:
        if request.headers.get("user-agent", "").startswith("Mozilla/"):
            return 403, {"error": "User agent not allowed", "status": 403}
        try:
            return await self._route(request.method, request.target, request.body)
        except ApiError as exc:
            return exc.status, {"error": exc.message, "status": exc.status}
        except ListenError as exc:  # a link listens again (a toxic lifted) on a port now taken
            return 409, {"error": str(exc), "status": 409}
        except Exception as exc:  # a bug: answer 500 rather than drop the request
            log.exception("control API: %s %s failed", request.method, request.target[:200])
            return 500, {"error": f"internal error: {exc}", "status": 500}

    async def _route(self, method: str, target: str, body: bytes) -> Reply:
        segments = path_segments(target)
        path = ("/" + "/".join(segments))[:200]
        for pattern, handlers in self._routes:
            params = _match(pattern, segments)
            if params is None:
                continue
            handler = handlers.get(method)
            if handler is None:
                raise ApiError(405, f"method {method} not allowed on {path}")
            return await handler(body, **params)
        raise ApiError(404, f"no such endpoint: {path}")

    # -- proxies -------------------------------------------------------------------------

    async def _proxy_index(self, body: bytes) -> Reply:
        return 200, {name: proxy_json(s) for name, s in self._registry.links.items()}

    async def _proxy_create(self, body: bytes) -> Reply:
        fields = decode_json(body)
        check_addresses(fields)
        spec = spec_from_json(fields)
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
        fields = decode_json(body)
        check_addresses(fields)
        spec = spec_from_json(fields, current=self._get(proxy))
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
        items = decode_json(body)
        if not isinstance(items, list):
            raise bad_body(f"expected a JSON array of proxies, got {type(items).__name__}")
        for i, item in enumerate(items, 1):
            check_addresses(item, where=f" at proxy {i}")
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

    async def _metrics(self, body: bytes) -> Reply:
        return 200, TextBody(render_metrics(self._registry.links.values()), METRICS_CONTENT_TYPE)

    async def _stats(self, body: bytes) -> Reply:
        return 200, {name: dataclasses.asdict(s.stats()) for name, s in self._registry.links.items()}

    # -- toxics --------------------------------------------------------------------------

    async def _toxic_index(self, body: bytes, proxy: str) -> Reply:
        return 200, [toxic_json(e) for e in self._get(proxy).faults.values()]

    async def _toxic_create(self, body: bytes, proxy: str) -> Reply:
        state = self._get(proxy)
        fields = decode_json(body)
        check_toxic_name(fields)
        entry = fault_from_json(fields, state)
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
        entry = fault_update_from_json(decode_json(body), state.faults[toxic])
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


def _match(pattern: tuple[str, ...], segments: tuple[str, ...]) -> dict[str, str] | None:
    """The parameters if ``segments`` (decoded) fit ``pattern``; parameters are non-empty."""
    if len(pattern) != len(segments):
        return None
    params = {}
    for part, segment in zip(pattern, segments, strict=True):
        if part.startswith("{"):
            if not segment:
                return None
            params[part[1:-1]] = segment
        elif part != segment:
            return None
    return params
