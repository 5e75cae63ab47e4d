"""Raw HTTP against the control API, for requests no client library would send (imported).

:func:`exchange` sends bytes as given, half-closes and reads until the server closes;
:func:`parse_response` insists on one complete response: a status line, headers, a
``Content-Length`` and exactly that many body bytes, nothing after.
"""

from __future__ import annotations

import json
import re
import socket
import time
from dataclasses import dataclass
from typing import Any

_STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) [^\r\n]*")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request_bytes(method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
    """A well-formed request, with Content-Length unless a header says otherwise."""
    fields = {"Host": "127.0.0.1", "Content-Length": str(len(body)), **headers}
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return head.encode("utf-8") + b"\r\n" + body


def exchange(address: tuple[str, int], data: bytes, *, timeout_s: float = 10.0) -> bytes:
    """Send ``data``, half-close, and return everything read until the server closes."""
    deadline = time.monotonic() + timeout_s
    received = bytearray()
    with socket.create_connection(address, timeout=timeout_s) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):
                received += chunk
                sock.settimeout(max(0.01, deadline - time.monotonic()))
        except OSError as exc:  # one failure, whichever call saw it (for Hypothesis)
            raise AssertionError(f"connection broken after {len(received)} bytes: {exc!r}") from exc
    return bytes(received)


def call(address: tuple[str, int], data: bytes, *, head: bool = False) -> Response:
    return parse_response(exchange(address, data), head=head)


def parse_response(data: bytes, *, head: bool = False) -> Response:
    """The one complete response in ``data``; AssertionError if there is not exactly one.

    ``head``: the request was HEAD, so the body may be absent (a refusal of a request the
    server could not parse may still carry one).
    """
    data = data.removeprefix(_CONTINUE)
    head_end = data.find(b"\r\n\r\n")
    assert head_end >= 0, f"no complete response head in {data[:200]!r}"
    lines = data[:head_end].split(b"\r\n")
    match = _STATUS.fullmatch(lines[0])
    assert match, f"bad status line {lines[0]!r}"
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.decode("latin-1").partition(":")
        assert sep, f"bad header line {line!r}"
        headers[name.strip().lower()] = value.strip()
    assert "content-length" in headers, headers
    length = int(headers["content-length"])
    body = data[head_end + 4 :]
    if head and not body:
        return Response(int(match.group(1)), headers, b"")
    assert len(body) == length, f"body of {len(body)} bytes, Content-Length {length}: {body[:200]!r}"
    return Response(int(match.group(1)), headers, body)
