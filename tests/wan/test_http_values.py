"""What the control API accepts inside a well-formed request: paths, names, numbers, ports.

Path segments are percent-decoded, so any name the API accepts can be addressed again;
names it could not address are refused at creation with a 400 naming the rule. Numbers
beyond 64-bit integers or finite floats, JSON nested too deep, ports not in ASCII digits
and hosts the resolver would choke on are 400s, not 500s.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from raw_http import Response, call, request_bytes

from tether.errors import ConfigError
from tether.wan import Emulator

Address = tuple[str, int]
UPSTREAM = "127.0.0.1:9"  # never connected to by these tests


@pytest.fixture
def api(caplog: pytest.LogCaptureFixture) -> Iterator[Address]:
    with Emulator(api_port=0) as emulator:
        assert emulator.api_address is not None
        yield emulator.api_address
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not loud, loud


def _send(api: Address, method: str, path: str, body: object = None) -> Response:
    data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    return call(api, request_bytes(method, path, data))


def _proxy(name: str, **fields: object) -> dict[str, object]:
    return {"name": name, "listen": "127.0.0.1:0", "upstream": UPSTREAM, **fields}


def _assert_400(response: Response, words: str) -> None:
    assert response.status == 400, response
    error = response.json()
    assert error["status"] == 400
    assert words in error["error"], error


# -- names and paths ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["sp ace", "a?b#c", "100%", "a+b", "é-ü", "日本語", "🙂", "x" * 255, " lead", "back\\slash"]
)
def test_any_allowed_name_can_be_created_shown_and_deleted(api: Address, name: str) -> None:
    assert _send(api, "POST", "/proxies", _proxy(name)).status == 201
    path = "/proxies/" + quote(name, safe="")
    shown = _send(api, "GET", path)
    assert shown.status == 200 and shown.json()["name"] == name
    assert _send(api, "DELETE", path).status == 204
    assert _send(api, "GET", path).status == 404


def test_raw_utf8_in_the_path_is_decoded_like_escapes(api: Address) -> None:
    assert _send(api, "POST", "/proxies", _proxy("é")).status == 201
    raw = b"GET /proxies/\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n"
    assert call(api, raw).json()["name"] == "é"


def test_toxic_names_follow_the_same_rules(api: Address) -> None:
    assert _send(api, "POST", "/proxies", _proxy("p")).status == 201
    toxic = {"name": "sp ace", "type": "latency", "attributes": {"latency": 5}}
    assert _send(api, "POST", "/proxies/p/toxics", toxic).status == 200
    assert _send(api, "GET", "/proxies/p/toxics/sp%20ace").json()["name"] == "sp ace"
    assert _send(api, "DELETE", "/proxies/p/toxics/sp%20ace").status == 204
    bad = {"name": "a\r\nb", "type": "latency"}
    _assert_400(_send(api, "POST", "/proxies/p/toxics", bad), "control characters")


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("a/b", "'/'"),
        (".", "'.' or '..'"),
        ("..", "'.' or '..'"),
        ("a\r\nb", "control characters"),
        ("a\nb", "control characters"),
        ("nul\x00", "control characters"),
        ("tab\t", "control characters"),
        ("del\x7f", "control characters"),
        ("nel\x85", "control characters"),
        ("x" * 256, "at most 255 bytes"),
        ("é" * 128, "at most 255 bytes"),
        ("\ud800", "valid Unicode"),
    ],
)
def test_names_the_api_could_not_address_are_refused(api: Address, name: str, rule: str) -> None:
    _assert_400(_send(api, "POST", "/proxies", _proxy(name)), rule)
    _assert_400(_send(api, "POST", "/populate", [_proxy("ok"), _proxy(name)]), rule)
    assert _send(api, "GET", "/proxies").json() == {}


def test_python_api_refuses_the_same_names() -> None:
    with Emulator(api_port=None) as emulator, pytest.raises(ConfigError, match="control characters"):
        emulator.create(upstream=("127.0.0.1", 9), name="a\nb")


@pytest.mark.parametrize(
    "path", ["/proxies/%zz", "/proxies/%", "/proxies/a%2", "/proxies/%e9", "/proxies/%ff"]
)
def test_malformed_escapes_in_the_path_get_400(api: Address, path: str) -> None:
    response = _send(api, "GET", path)
    assert response.status == 400 and "path" in response.json()["error"]


def test_an_escaped_slash_names_nothing(api: Address) -> None:
    assert _send(api, "POST", "/proxies", _proxy("a")).status == 201
    assert _send(api, "GET", "/proxies/a%2Ftoxics").status == 404


# -- numbers and nesting ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (b"1e400", "out of range"),
        (b"-1e400", "out of range"),
        (b"9" * 400, "out of range"),
        (b"-" + b"9" * 400, "out of range"),
        (str(1 << 63).encode(), "64 bits"),
        (b"NaN", "not valid JSON"),
        (b"Infinity", "not valid JSON"),
    ],
)
def test_numbers_out_of_range_get_400(api: Address, number: bytes, words: str) -> None:
    assert _send(api, "POST", "/proxies", _proxy("p")).status == 201
    attributes = b'{"type": "latency", "attributes": {"latency": ' + number + b"}}"
    _assert_400(_send(api, "POST", "/proxies/p/toxics", attributes), words)
    toxicity = b'{"type": "latency", "toxicity": ' + number + b"}"
    _assert_400(_send(api, "POST", "/proxies/p/toxics", toxicity), words)
    assert _send(api, "GET", "/proxies/p/toxics").json() == []


def test_largest_64_bit_integer_is_judged_by_the_attribute_range(api: Address) -> None:
    assert _send(api, "POST", "/proxies", _proxy("p")).status == 201
    body = {"type": "latency", "attributes": {"latency": (1 << 63) - 1}}
    _assert_400(_send(api, "POST", "/proxies/p/toxics", body), "latency")


@pytest.mark.parametrize("depth", [33, 1000, 100_000])
def test_json_nested_too_deep_gets_400(api: Address, depth: int) -> None:
    body = b"[" * depth + b"]" * depth
    _assert_400(_send(api, "POST", "/populate", body), "nested deeper than 32")


def test_json_at_the_depth_limit_is_judged_by_its_shape(api: Address) -> None:
    body = b"[" * 32 + b"]" * 32
    _assert_400(_send(api, "POST", "/populate", body), "expected a JSON object")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"\xff\xfe{}", "bad request body"),
        (b'{"name": ', "bad request body"),
        (b"[]", "expected a JSON object"),
        (b'"proxy"', "expected a JSON object"),
        (b'{"name": 5, "upstream": "127.0.0.1:9"}', "name must be a string"),
        (b'{"name": "p", "upstream": "127.0.0.1:9", "enabled": "yes"}', "enabled"),
        (b'{"name": "p", "upstream": ["127.0.0.1:9"]}', "upstream must be a string"),
    ],
)
def test_bodies_of_the_wrong_shape_get_400(api: Address, body: bytes, words: str) -> None:
    _assert_400(_send(api, "POST", "/proxies", body), words)


def test_unknown_fields_are_ignored_as_toxiproxy_does(api: Address) -> None:
    assert _send(api, "POST", "/proxies", _proxy("p", colour="red")).status == 201


# -- addresses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "port", ["\u00b2", "\u0663", "\uff18\uff10", "-1", "+80", "1e3", " 80", "123456", "", "0x50"]
)
@pytest.mark.parametrize("key", ["listen", "upstream"])
def test_ports_must_be_ascii_digits(api: Address, key: str, port: str) -> None:
    response = _send(api, "POST", "/proxies", _proxy("p", **{key: f"127.0.0.1:{port}"}))
    _assert_400(response, key)
    patch = _send(api, "POST", "/populate", [_proxy("q", **{key: f"127.0.0.1:{port}"})])
    _assert_400(patch, key)


@pytest.mark.parametrize(("key", "port"), [("listen", "65536"), ("upstream", "65536"), ("upstream", "0")])
def test_ports_out_of_range_get_400(api: Address, key: str, port: str) -> None:
    _assert_400(_send(api, "POST", "/proxies", _proxy("p", **{key: f"127.0.0.1:{port}"})), key)


def test_update_checks_ports_too(api: Address) -> None:
    assert _send(api, "POST", "/proxies", _proxy("p")).status == 201
    _assert_400(_send(api, "PATCH", "/proxies/p", {"upstream": "127.0.0.1:\u00b2"}), "upstream")


@pytest.mark.parametrize("host", ["\x00", "a..b", "x" * 64, "y" * 300, "é.example", "a b", "a[b", "."])
@pytest.mark.parametrize("key", ["listen", "upstream"])
def test_hosts_the_resolver_would_choke_on_get_400(api: Address, key: str, host: str) -> None:
    _assert_400(_send(api, "POST", "/proxies", _proxy("p", **{key: f"{host}:1"})), f"{key} host")


def test_listen_port_zero_picks_a_free_port(api: Address) -> None:
    created = _send(api, "POST", "/proxies", _proxy("p", listen="localhost:0"))
    assert created.status == 201
    assert not created.json()["listen"].endswith(":0")


# -- listening again, out of file descriptors -----------------------------------------------


def test_lifting_down_on_a_port_taken_meanwhile_gets_409(api: Address) -> None:
    created = _send(api, "POST", "/proxies", _proxy("p"))
    port = int(created.json()["listen"].rpartition(":")[2])
    assert _send(api, "POST", "/proxies/p/toxics", {"type": "down"}).status == 200
    with socket.create_server(("127.0.0.1", port)):  # the link's port, while it is down
        response = _send(api, "DELETE", "/proxies/p/toxics/down_downstream")
        assert response.status == 409, response
        assert "cannot listen" in response.json()["error"]
    shown = _send(api, "GET", "/proxies/p").json()
    assert (shown["enabled"], shown["toxics"]) == (False, []), shown  # as documented
    assert _send(api, "POST", "/proxies/p", {"enabled": True}).json()["enabled"] is True


# An emulator alone in a child process (as `tether wan serve` is) with 128 file descriptors.
_SMALL_EMULATOR = r"""
import resource, sys
from tether.wan import Emulator

resource.setrlimit(resource.RLIMIT_NOFILE, (128, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
with Emulator(api_port=0) as emulator:
    print("%s:%d" % emulator.api_address, flush=True)
    sys.stdin.read()  # until the test closes it
"""


def test_out_of_file_descriptors_gets_409_not_500() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _SMALL_EMULATOR],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            host, _, port = proc.stdout.readline().strip().rpartition(":")
            api = (host, int(port))
            statuses = []
            for i in range(128):  # each proxy listens on one descriptor: they run out before 128
                statuses.append(_send(api, "POST", "/proxies", _proxy(f"p{i}")).status)
                if statuses[-1] != 201:
                    break
            # Where the line falls moves by a descriptor or two: the server closes a finished
            # connection's socket just after the client has read the answer.
            more = [_send(api, "POST", "/proxies", _proxy(f"more{i}")) for i in range(10)]
            assert sum(r.status == 201 for r in more) <= 2, more
            assert all(r.status in (201, 409) for r in more), more
            assert all("file descriptors" in r.json()["error"] for r in more if r.status == 409), more
            populate = _send(api, "POST", "/populate", [_proxy(f"q{i}") for i in range(100)])
            assert populate.status == 409, populate
            for i in range(5):
                assert _send(api, "DELETE", f"/proxies/p{i}").status == 204
            assert _send(api, "POST", "/proxies", _proxy("again")).status == 201
            assert _send(api, "GET", "/version").status == 200
        finally:
            _, errors = proc.communicate(timeout=30)  # closes stdin: the emulator stops
    assert proc.returncode == 0, errors
    assert 50 < len(statuses) < 128 and set(statuses[:-1]) == {201} and statuses[-1] == 409, statuses
    assert "Traceback" not in errors and "ERROR" not in errors, errors
