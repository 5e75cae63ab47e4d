"""The control API against Toxiproxy's documented requests, responses and errors."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tether.wan import Emulator

Api = Callable[..., tuple[int, Any]]


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(api_port=0) as emu:
        yield emu


@pytest.fixture
def api(emulator: Emulator) -> Api:
    """``api("POST", "/proxies", {...})`` -> (status, decoded JSON or None)."""
    assert emulator.api_address is not None
    host, port = emulator.api_address

    def call(
        method: str, path: str, body: object = None, *, raw: bytes | None = None, **headers: str
    ) -> tuple[int, Any]:
        conn = http.client.HTTPConnection(host, port, timeout=5)
        try:
            data = raw if raw is not None else None if body is None else json.dumps(body).encode()
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
        finally:
            conn.close()
        return resp.status, json.loads(payload) if payload else None

    return call


def _proxy(api: Api, upstream: tuple[str, int], name: str = "redis") -> dict[str, Any]:
    status, body = api(
        "POST", "/proxies", {"name": name, "listen": "127.0.0.1:0", "upstream": _addr(upstream)}
    )
    assert status == 201, body
    return body  # type: ignore[no-any-return]


def _addr(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


def _port(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host, int(port)


def _rtt(address: tuple[str, int]) -> float:
    with socket.create_connection(address, timeout=5) as sock:
        start = time.monotonic()
        sock.sendall(b"x")
        assert sock.recv(1) == b"x"
        return time.monotonic() - start


def test_version(api: Api) -> None:
    status, body = api("GET", "/version")
    assert status == 200
    assert body["version"].startswith("2.")


def test_create_proxy_answers_201_with_toxiproxy_shape(api: Api, echo_server) -> None:
    body = _proxy(api, echo_server.address)
    assert set(body) == {"name", "listen", "upstream", "enabled", "toxics"}
    assert body["name"] == "redis"
    assert body["enabled"] is True
    assert body["toxics"] == []
    assert body["upstream"] == _addr(echo_server.address)
    assert _port(body["listen"])[1] != 0  # the chosen port is reported
    assert _rtt(_port(body["listen"])) < 1.0
    status, index = api("GET", "/proxies")
    assert status == 200
    assert index == {"redis": body}
    assert api("GET", "/proxies/redis") == (200, body)


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}, 400, "missing required field: name"),
        ({"name": "x", "listen": "127.0.0.1:0"}, 400, "missing required field: upstream"),
        ({"name": "x", "upstream": "nowhere"}, 400, "bad request body: upstream"),
        ({"name": "x", "upstream": "127.0.0.1:99999"}, 400, "bad request body: upstream"),
        ({"name": "x", "upstream": "127.0.0.1:1", "enabled": "yes"}, 400, "bad request body: enabled"),
        (["not", "an", "object"], 400, "bad request body"),
    ],
)
def test_bad_proxy_bodies_are_400_and_change_nothing(
    api: Api, payload: object, status: int, message: str
) -> None:
    got_status, body = api("POST", "/proxies", payload)
    assert (got_status, body["status"]) == (status, status)
    assert body["error"].startswith(message), body
    assert api("GET", "/proxies") == (200, {})


def test_malformed_json_is_400(api: Api) -> None:
    status, body = api("POST", "/proxies", raw=b'{"name": "x", ')
    assert status == 400
    assert body["error"].startswith("bad request body:")


def test_duplicate_proxy_is_409(api: Api, echo_server) -> None:
    first = _proxy(api, echo_server.address)
    status, body = api("POST", "/proxies", {"name": "redis", "upstream": "127.0.0.1:1"})
    assert (status, body) == (409, {"error": "proxy already exists", "status": 409})
    assert api("GET", "/proxies/redis") == (200, first)


def test_listen_port_in_use_is_409_naming_the_address(api: Api, echo_server) -> None:
    taken = _addr(echo_server.address)
    status, body = api("POST", "/proxies", {"name": "x", "listen": taken, "upstream": taken})
    assert status == 409
    assert taken in body["error"]
    assert api("GET", "/proxies") == (200, {})


def test_unknown_proxy_is_404(api: Api) -> None:
    not_found = {"error": "proxy not found", "status": 404}
    assert api("GET", "/proxies/nope") == (404, not_found)
    assert api("DELETE", "/proxies/nope") == (404, not_found)
    assert api("GET", "/proxies/nope/toxics") == (404, not_found)
    assert api("POST", "/proxies/nope/toxics", {"type": "latency"}) == (404, not_found)


def test_toxic_defaults_and_effect(api: Api, echo_server) -> None:
    proxy = _proxy(api, echo_server.address)
    status, toxic = api("POST", "/proxies/redis/toxics", {"type": "latency", "attributes": {"latency": 50}})
    assert status == 200
    assert toxic == {
        "attributes": {"latency": 50, "jitter": 0},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
    }
    assert 0.040 <= _rtt(_port(proxy["listen"])) <= 0.060
    assert api("GET", "/proxies/redis/toxics") == (200, [toxic])
    assert api("GET", "/proxies/redis/toxics/latency_downstream") == (200, toxic)
    assert api("GET", "/proxies/redis")[1]["toxics"] == [toxic]


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"type": "earthquake"}, 400, "invalid toxic type"),
        ({"type": "latency", "stream": "sideways"}, 400, "stream was invalid"),
        ({"type": "latency", "attributes": {"latency": -5}}, 400, "bad request body: latency"),
        ({"type": "latency", "attributes": {"latency": "slow"}}, 400, "bad request body: latency"),
        ({"type": "latency", "toxicity": 1.5}, 400, "bad request body: toxicity"),
        ({"type": "bandwidth", "attributes": {"rate": -1}}, 400, "bad request body: rate"),
        ({"type": "slicer", "attributes": {"average_size": 0}}, 400, "bad request body: average"),
        ({"type": "limit_data", "attributes": {"bytes": 1e30}}, 400, "bad request body: bytes"),
        ({"type": "timeout", "attributes": {"timeout": -1}}, 400, "bad request body: timeout"),
        ({"type": "latency", "attributes": [1]}, 400, "bad request body: attributes"),
    ],
)
def test_bad_toxics_are_rejected_and_change_nothing(
    api: Api, echo_server, payload: dict[str, Any], status: int, message: str
) -> None:
    _proxy(api, echo_server.address)
    api("POST", "/proxies/redis/toxics", {"type": "latency", "name": "keep"})
    got_status, body = api("POST", "/proxies/redis/toxics", payload)
    assert (got_status, body["status"]) == (status, status)
    assert body["error"].startswith(message), body
    names = [t["name"] for t in api("GET", "/proxies/redis/toxics")[1]]
    assert names == ["keep"]


def test_duplicate_toxic_is_409(api: Api, echo_server) -> None:
    _proxy(api, echo_server.address)
    assert api("POST", "/proxies/redis/toxics", {"type": "timeout"})[0] == 200
    assert api("POST", "/proxies/redis/toxics", {"type": "timeout"}) == (
        409,
        {"error": "toxic already exists", "status": 409},
    )


def test_toxic_update_merges_attributes(api: Api, echo_server) -> None:
    _proxy(api, echo_server.address)
    api(
        "POST",
        "/proxies/redis/toxics",
        {"type": "latency", "stream": "upstream", "attributes": {"latency": 10, "jitter": 2}},
    )
    status, toxic = api(
        "POST",
        "/proxies/redis/toxics/latency_upstream",
        {"attributes": {"latency": 30}, "toxicity": 0.5},
    )
    assert status == 200
    assert toxic["attributes"] == {"latency": 30, "jitter": 2}
    assert toxic["toxicity"] == 0.5
    assert toxic["stream"] == "upstream"
    bad = api("PATCH", "/proxies/redis/toxics/latency_upstream", {"attributes": {"jitter": -1}})
    assert bad[0] == 400
    assert api("GET", "/proxies/redis/toxics/latency_upstream") == (200, toxic)
    assert api("POST", "/proxies/redis/toxics/nope", {})[1]["error"] == "toxic not found"


def test_toxic_delete(api: Api, echo_server) -> None:
    _proxy(api, echo_server.address)
    api("POST", "/proxies/redis/toxics", {"type": "slow_close", "attributes": {"delay": 10}})
    assert api("DELETE", "/proxies/redis/toxics/slow_close_downstream") == (204, None)
    assert api("DELETE", "/proxies/redis/toxics/slow_close_downstream") == (
        404,
        {"error": "toxic not found", "status": 404},
    )


def test_every_toxic_type_in_toxiproxy_units(api: Api, echo_server) -> None:
    _proxy(api, echo_server.address)
    documented = {
        "latency": {"latency": 1000, "jitter": 10},
        "bandwidth": {"rate": 100},
        "slow_close": {"delay": 250},
        "timeout": {"timeout": 5000},
        "reset_peer": {"timeout": 100},
        "slicer": {"average_size": 64, "size_variation": 32, "delay": 10},
        "limit_data": {"bytes": 1024},
    }
    for type_name, attributes in documented.items():
        status, toxic = api(
            "POST",
            "/proxies/redis/toxics",
            {"type": type_name, "stream": "upstream", "attributes": attributes},
        )
        assert status == 200, toxic
        assert attributes.items() <= toxic["attributes"].items(), toxic


def test_disable_enable_proxy(api: Api, echo_server) -> None:
    proxy = _proxy(api, echo_server.address)
    address = _port(proxy["listen"])
    status, body = api("POST", "/proxies/redis", {"enabled": False})
    assert (status, body["enabled"]) == (200, False)
    with pytest.raises(ConnectionRefusedError):
        _rtt(address)
    status, body = api("PATCH", "/proxies/redis", {"enabled": True})
    assert (status, body["enabled"], body["listen"]) == (200, True, proxy["listen"])
    assert _rtt(address) < 1.0


def test_reset_enables_proxies_and_removes_toxics(api: Api, echo_server) -> None:
    _proxy(api, echo_server.address)
    api("POST", "/proxies/redis/toxics", {"type": "timeout"})
    api("POST", "/proxies/redis", {"enabled": False})
    assert api("POST", "/reset") == (204, None)
    body = api("GET", "/proxies/redis")[1]
    assert (body["enabled"], body["toxics"]) == (True, [])


def test_populate_creates_and_is_idempotent(api: Api, echo_server) -> None:
    upstream = _addr(echo_server.address)
    config = [  # README's config/toxiproxy.json, on loopback
        {"name": "web_dev_frontend_1", "listen": "127.0.0.1:0", "upstream": upstream},
        {"name": "web_dev_mysql_1", "listen": "127.0.0.1:0", "upstream": upstream, "enabled": True},
    ]
    status, body = api("POST", "/populate", config)
    assert status == 201
    assert [p["name"] for p in body["proxies"]] == ["web_dev_frontend_1", "web_dev_mysql_1"]
    again = api("POST", "/populate", config)
    assert again == (201, body)  # same fields: untouched, same ports
    status, err = api("POST", "/populate", [config[0], config[0]])
    assert status == 400
    assert "duplicate" in err["error"]
    status, err = api("POST", "/populate", [{"name": "x"}])
    assert (status, err["error"]) == (400, "missing required field: upstream at proxy 1")
    assert api("POST", "/populate", {"name": "x"})[0] == 400
    assert sorted(api("GET", "/proxies")[1]) == ["web_dev_frontend_1", "web_dev_mysql_1"]


def test_delete_proxy(api: Api, echo_server) -> None:
    proxy = _proxy(api, echo_server.address)
    assert api("DELETE", "/proxies/redis") == (204, None)
    with pytest.raises(ConnectionRefusedError):
        _rtt(_port(proxy["listen"]))
    assert api("GET", "/proxies/redis")[0] == 404


def test_browsers_are_refused(api: Api) -> None:
    status, _body = api("GET", "/proxies", **{"User-Agent": "Mozilla/5.0"})
    assert status == 403


def test_unknown_routes_and_methods(api: Api) -> None:
    assert api("GET", "/nope")[0] == 404
    assert api("DELETE", "/version")[0] == 405


def test_api_listens_on_loopback_by_default(emulator: Emulator) -> None:
    assert emulator.api_address is not None
    assert emulator.api_address[0] == "127.0.0.1"
