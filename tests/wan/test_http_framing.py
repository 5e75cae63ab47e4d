"""The control API answers malformed, oversized or incomplete HTTP with a 4xx, never silence.

Each request here is sent over a raw socket (see ``raw_http``), half-closed, and the
answer read to EOF: it must be one complete response with Toxiproxy's error body. Nothing
may be logged at WARNING or above (no traceback for a client's mistake).
"""

from __future__ import annotations

import http.client
import logging
import socket
from collections.abc import Iterator

import pytest
from raw_http import Response, call, exchange, parse_response, request_bytes

from tether.wan import Emulator
from tether.wan import _http as http_module

Address = tuple[str, int]


@pytest.fixture
def api(caplog: pytest.LogCaptureFixture) -> Iterator[Address]:
    with Emulator(api_port=0) as emulator:
        assert emulator.api_address is not None
        yield emulator.api_address
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not loud, loud


def _assert_error(response: Response, status: int, words: str = "") -> None:
    assert response.status == status, response
    assert response.json()["status"] == status
    assert words.lower() in response.json()["error"].lower(), response.json()


def _still_serving(api: Address) -> None:
    assert call(api, request_bytes("GET", "/version")).status == 200


@pytest.mark.parametrize(
    "line",
    [
        b"GARBAGE",
        b"GET /version",
        b"GET  /version HTTP/1.1",
        b"G(T /version HTTP/1.1",
        b"GET version HTTP/1.1",
        b"GET http://127.0.0.1/version HTTP/1.1",
        b"GET /version HTTP/2.0",
        b"GET /version http/1.1",
        b"GET /ver\x00sion HTTP/1.1",
        b"GET /ver\rsion HTTP/1.1",
        b"\xff\xfe GET /version HTTP/1.1",
    ],
)
def test_malformed_request_line_gets_400(api: Address, line: bytes) -> None:
    _assert_error(call(api, line + b"\r\nHost: x\r\n\r\n"), 400)
    _still_serving(api)


@pytest.mark.parametrize(
    "data",
    [
        b"GET /version HTTP/1.1\r\nHost: x\r\n",  # no blank line
        b"GET /vers",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",  # the start of a TLS ClientHello
        b"\r\n",
    ],
)
def test_request_cut_short_gets_400(api: Address, data: bytes) -> None:
    _assert_error(call(api, data), 400, "incomplete")


def test_body_shorter_than_content_length_gets_400(api: Address) -> None:
    data = request_bytes("POST", "/proxies", b'{"name": "x"}', **{"Content-Length": "100"})
    _assert_error(call(api, data), 400, "incomplete body")


@pytest.mark.parametrize("value", ["abc", "-1", "\u00b2", "\u0663", "1e3", "0x10", "+5", "", "5, 5", "5 5"])
def test_bad_content_length_gets_400(api: Address, value: str) -> None:
    data = request_bytes("POST", "/reset", **{"Content-Length": value})
    _assert_error(call(api, data), 400, "Content-Length")


def test_conflicting_content_lengths_get_400(api: Address) -> None:
    data = b"POST /reset HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 2\r\n\r\n{}"
    _assert_error(call(api, data), 400, "conflicting")


@pytest.mark.parametrize("value", ["99999999999999999999", str((1 << 20) + 1), "1" + "0" * 400])
def test_huge_content_length_gets_413_at_once(api: Address, value: str) -> None:
    data = request_bytes("POST", "/proxies", **{"Content-Length": value})
    _assert_error(call(api, data), 413, "over the limit")


def test_leading_zeros_in_content_length_are_fine(api: Address) -> None:
    data = request_bytes("POST", "/reset", b"", **{"Content-Length": "0000"})
    assert call(api, data).status == 204


def test_body_over_the_limit_gets_413_and_the_client_reads_it(api: Address) -> None:
    """http.client sends the whole 2 MiB before it reads: the server must not reset it."""
    conn = http.client.HTTPConnection(*api, timeout=10)
    try:
        conn.request("POST", "/proxies", body=b" " * (2 << 20))
        response = conn.getresponse()
        assert response.status == 413
        assert b"over the limit" in response.read()
    finally:
        conn.close()
    _still_serving(api)


def test_body_over_the_limit_over_a_raw_socket(api: Address) -> None:
    data = request_bytes("POST", "/populate", b"[" + b" " * (2 << 20) + b"]")
    _assert_error(call(api, data), 413)


def test_header_over_the_limit_gets_431(api: Address) -> None:
    data = request_bytes("GET", "/version", **{"X-Big": "a" * 70_000})
    _assert_error(call(api, data), 431)


def test_too_many_header_fields_get_431(api: Address) -> None:
    fields = "".join(f"X-{i}: {i}\r\n" for i in range(101))
    data = f"GET /version HTTP/1.1\r\n{fields}\r\n".encode()
    _assert_error(call(api, data), 431)


def test_request_line_over_the_limit_gets_414(api: Address) -> None:
    _assert_error(call(api, request_bytes("GET", "/proxies/" + "a" * 9000)), 414)


@pytest.mark.parametrize(
    "field",
    [b"NoColon", b"Space Before: x", b"Host : x", b" folded: x", b"X-Ctl: a\x00b", b"X-Cr: a\rb", b": x"],
)
def test_malformed_header_line_gets_400(api: Address, field: bytes) -> None:
    data = b"GET /version HTTP/1.1\r\nHost: x\r\n" + field + b"\r\n\r\n"
    _assert_error(call(api, data), 400, "header")


def test_transfer_encoding_gets_411(api: Address) -> None:
    data = b"POST /reset HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    _assert_error(call(api, data), 411, "Content-Length")


def test_bare_lf_line_ends_and_leading_blank_lines_are_accepted(api: Address) -> None:
    response = call(api, b"\r\n\nGET /version HTTP/1.0\nHost: x\n\n")
    assert response.status == 200
    assert response.json()["version"].startswith("2.")


def test_head_gets_headers_only(api: Address) -> None:
    raw = exchange(api, request_bytes("HEAD", "/proxies"))
    response = parse_response(raw, head=True)
    assert response.status == 405
    assert raw.endswith(b"\r\n\r\n")  # no body, though Content-Length gives its size
    assert int(response.headers["content-length"]) > 0


def test_expect_100_continue_is_honoured(api: Address) -> None:
    with socket.create_connection(api, timeout=5) as sock:
        sock.sendall(b"POST /reset HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        interim = sock.recv(64)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"{}")
        sock.shutdown(socket.SHUT_WR)
        rest = b""
        while chunk := sock.recv(4096):
            rest += chunk
    assert parse_response(rest).status == 204


def test_client_silent_past_the_read_timeout_gets_408(api: Address, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_module, "READ_TIMEOUT_S", 0.3)
    with socket.create_connection(api, timeout=5) as sock:
        sock.sendall(b"GET /version HTTP/1.1\r\n")  # and nothing more, without closing
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    _assert_error(parse_response(data), 408)


def test_connection_closed_without_a_byte_is_not_answered(api: Address) -> None:
    assert exchange(api, b"") == b""
    _still_serving(api)


def test_unknown_path_and_method_keep_toxiproxy_answers(api: Address) -> None:
    _assert_error(call(api, request_bytes("GET", "/nothing/here")), 404, "no such endpoint")
    _assert_error(call(api, request_bytes("PUT", "/proxies")), 405, "not allowed")
    _assert_error(call(api, request_bytes("GET", "/proxies/none")), 404, "proxy not found")
