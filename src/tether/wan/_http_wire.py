"""HTTP/1.1 framing for the control API: one request off an asyncio stream, within limits.

Whatever a client sends, :func:`read_request` returns a :class:`Request` or raises
:class:`ApiError` with the 4xx to answer; it never hangs past the caller's timeout and
never reads without bound. The limits:

=============================  ======  ====================================================
request line                   8 KiB   414
request line and headers       64 KiB  431 (also past 100 header fields)
body (``Content-Length``)      1 MiB   413, answered before the body is read
``Content-Length``                     ASCII digits; several must agree; else 400
``Transfer-Encoding``                  411: send a ``Content-Length`` (all clients do)
=============================  ======  ====================================================

Malformed request lines and header lines, control characters in them, HTTP versions other
than 1.0 and 1.1, and a connection that ends mid-request are answered 400. Blank lines
before the request line are skipped, bare LF line ends accepted (RFC 9112 §2.2).
``Expect: 100-continue`` is honoured. :func:`close_gently` ends a connection so the client
reads the answer even when it is still sending a body the server refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from tether.wan._toxics import ApiError

__all__ = [
    "MAX_BODY",
    "MAX_HEAD",
    "Request",
    "close_gently",
    "encode_error",
    "encode_response",
    "read_request",
]

MAX_LINE = 8 << 10
MAX_HEAD = 64 << 10
MAX_FIELDS = 100
MAX_BODY = 1 << 20
#: After refusing a request, what is still read and dropped so the client sees the answer.
_DISCARD_BYTES = 16 << 20
_DISCARD_S = 5.0

_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_METHOD = re.compile(_TOKEN)
_TARGET = re.compile(rb"/[^\x00-\x20\x7f]*")  # origin form; raw UTF-8 passes, decoded later
_VERSION = re.compile(rb"HTTP/1\.[01]")
_FIELD = re.compile(rb"(" + _TOKEN + rb"):[ \t]*(.*?)[ \t]*")
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # in a field value; HTAB is allowed
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    target: str  # as sent (latin-1 decoded); see _api_input.path_segments
    headers: Mapping[str, str]  # lower-case names; a repeated field keeps its last value
    body: bytes


async def read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request | None:
    """The next request, or None if the client closed without sending a byte."""
    lines = await _read_head(reader)
    if lines is None:
        return None
    method, target = _parse_request_line(lines[0])
    fields = [_parse_field(line) for line in lines[1:]]
    length = _body_length(fields)
    headers = {name: value for name, value in fields}
    if length and headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    try:
        body = await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        message = f"incomplete body: the connection ended after {len(exc.partial)} of {length} bytes"
        raise ApiError(400, message) from None
    return Request(method, target, headers, body)


async def _read_head(reader: asyncio.StreamReader) -> list[bytes] | None:
    lines: list[bytes] = []
    size = 0
    while True:
        try:
            raw = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            if size == 0 and not exc.partial:
                return None
            raise ApiError(400, "incomplete request: the connection ended inside the headers") from None
        except asyncio.LimitOverrunError:
            raise _head_too_long(lines) from None
        size += len(raw)
        line = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
        if size > MAX_HEAD or (not lines and len(line) > MAX_LINE):
            raise _head_too_long(lines)
        if line:
            lines.append(line)
            if len(lines) > 1 + MAX_FIELDS:
                raise _head_too_long(lines)
        elif lines:
            return lines


def _head_too_long(lines: list[bytes]) -> ApiError:
    if not lines:
        return ApiError(414, f"request line over the limit of {MAX_LINE} bytes")
    return ApiError(431, f"request headers over the limit of {MAX_HEAD} bytes or {MAX_FIELDS} fields")


def _parse_request_line(line: bytes) -> tuple[str, str]:
    parts = line.split(b" ")
    if len(parts) != 3 or not _METHOD.fullmatch(parts[0]):
        raise ApiError(400, "malformed request line: expected 'METHOD /path HTTP/1.1'")
    method, target, version = parts
    if not _VERSION.fullmatch(version):
        shown = version[:20].decode("latin-1")
        raise ApiError(400, f"unsupported HTTP version {shown!r}: HTTP/1.0 and HTTP/1.1 are")
    if not _TARGET.fullmatch(target):
        raise ApiError(400, "malformed request target: a path starting with '/', no controls")
    return method.decode("ascii").upper(), target.decode("latin-1")


def _parse_field(line: bytes) -> tuple[str, str]:
    match = _FIELD.fullmatch(line)
    if match is None:
        raise ApiError(400, "malformed header line: expected 'Name: value'")
    name, value = match.groups()
    if _CONTROL.search(value):
        raise ApiError(400, f"control character in header {name.decode('ascii')!r}")
    return name.decode("ascii").lower(), value.decode("latin-1")


def _body_length(fields: list[tuple[str, str]]) -> int:
    if any(name == "transfer-encoding" for name, _ in fields):
        raise ApiError(411, "Transfer-Encoding is not supported: send a Content-Length")
    values = {value for name, value in fields if name == "content-length"}
    if len(values) > 1:
        raise ApiError(400, "conflicting Content-Length headers")
    if not values:
        return 0
    text = values.pop()
    if not _DIGITS.fullmatch(text):
        shown = text[:40]
        raise ApiError(400, f"Content-Length must be a number of bytes in ASCII digits, got {shown!r}")
    digits = text.lstrip("0")
    if len(digits) > len(str(MAX_BODY)) or int(digits or 0) > MAX_BODY:
        raise ApiError(413, f"request body over the limit of {MAX_BODY} bytes")
    return int(digits or 0)


@dataclass(frozen=True, slots=True)
class TextBody:
    """A reply that is not JSON (``GET /metrics``: Prometheus's text format)."""

    text: str
    content_type: str


def encode_response(status: int, payload: Any, *, head: bool = False) -> bytes:
    """A complete ``Connection: close`` response; ``head``: the headers only (HEAD)."""
    if isinstance(payload, TextBody):
        body, content_type = payload.text.encode(), payload.content_type
    else:
        body = b"" if payload is None else json.dumps(payload).encode() + b"\n"
        content_type = "application/json"
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "Connection: close"]
    if payload is not None:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else body)


def encode_error(status: int, message: str, *, head: bool = False) -> bytes:
    """Toxiproxy's error shape: ``{"error": message, "status": status}``."""
    return encode_response(status, {"error": message, "status": status}, head=head)


async def close_gently(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Send FIN, then read and drop what the client still sends, then close.

    Closing a socket with unread input makes the kernel send RST, and a RST can destroy an
    answer the client has not read yet: a client still sending a refused 2 MiB body would
    see "connection reset" instead of 413. Bounded by :data:`_DISCARD_BYTES` and
    :data:`_DISCARD_S`.
    """
    with contextlib.suppress(OSError, asyncio.TimeoutError):
        if writer.can_write_eof():
            writer.write_eof()
        await asyncio.wait_for(_discard(reader), _DISCARD_S)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def _discard(reader: asyncio.StreamReader) -> None:
    dropped = 0
    while dropped < _DISCARD_BYTES and (chunk := await reader.read(65536)):
        dropped += len(chunk)
