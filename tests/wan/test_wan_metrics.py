"""``GET /metrics`` on the emulator's control API: Toxiproxy 2.6+'s byte counters per proxy
and direction, tether's series per toxic, in a text format prometheus_client parses."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from fix_wait import wait_until
from tether.wan import Emulator

parser = pytest.importorskip("prometheus_client.parser",
                             reason="needs prometheus_client: pip install prometheus_client")


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(api_port=0) as emu:
        yield emu


def call(emulator: Emulator, method: str, path: str, body: object = None) -> tuple[int, str, str]:
    assert emulator.api_address is not None
    conn = http.client.HTTPConnection(*emulator.api_address, timeout=5)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body).encode())
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type") or "", resp.read().decode()
    finally:
        conn.close()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def byte_count(text: str, name: str, proxy: str, direction: str) -> float:
    for (found, labels), value in samples(text).items():
        if found == name and ("proxy", proxy) in labels and ("direction", direction) in labels:
            return value
    raise AssertionError(f"no {name} for {proxy} {direction}")


def test_bytes_per_proxy_and_direction_and_one_series_per_toxic(emulator: Emulator, echo_server: Any) -> None:
    host, port = echo_server.address
    status, _, body = call(emulator, "POST", "/proxies",
                           {"name": "pg", "listen": "127.0.0.1:0", "upstream": f"{host}:{port}"})
    assert status == 201, body
    listen = json.loads(body)["listen"]
    status, _, body = call(emulator, "POST", "/proxies/pg/toxics",
                           {"name": "slow", "type": "latency", "stream": "downstream",
                            "attributes": {"latency": 1}})
    assert status == 200, body
    lhost, _, lport = listen.rpartition(":")
    payload = b"x" * 1000
    with socket.create_connection((lhost, int(lport)), timeout=5) as sock:
        sock.sendall(payload)
        echoed = b""
        while len(echoed) < len(payload):
            chunk = sock.recv(65536)
            assert chunk, "the echo ended early"
            echoed += chunk

    def text() -> str:
        return call(emulator, "GET", "/metrics")[2]

    wait_until(lambda: byte_count(text(), "toxiproxy_proxy_sent_bytes_total", "pg", "downstream") == 1000,
               what="1000 bytes sent downstream")
    status, content_type, page = call(emulator, "GET", "/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    for name in ("toxiproxy_proxy_received_bytes_total", "toxiproxy_proxy_sent_bytes_total"):
        for direction in ("upstream", "downstream"):
            assert byte_count(page, name, "pg", direction) == 1000, (name, direction)
    found = samples(page)
    label_sets = {labels for (name, labels) in found if name == "toxiproxy_proxy_sent_bytes_total"}
    assert (("direction", "upstream"), ("listener", listen), ("proxy", "pg"),
            ("upstream", f"{host}:{port}")) in label_sets
    toxic = (("proxy", "pg"), ("stream", "downstream"), ("toxic", "slow"), ("type", "latency"))
    assert found[("tether_wan_toxic_toxicity", toxic)] == 1.0


def test_bytes_outlive_their_connection_and_a_new_proxy_starts_at_zero(
    emulator: Emulator, echo_server: Any
) -> None:
    host, port = echo_server.address
    for name in ("a", "b"):
        status, _, _ = call(emulator, "POST", "/proxies",
                            {"name": name, "listen": "127.0.0.1:0", "upstream": f"{host}:{port}"})
        assert status == 201
    status, _, body = call(emulator, "GET", "/proxies/a")
    lhost, _, lport = json.loads(body)["listen"].rpartition(":")
    for _ in range(3):  # three connections, each closed: the totals keep their bytes
        with socket.create_connection((lhost, int(lport)), timeout=5) as sock:
            sock.sendall(b"y" * 10)
            got = b""
            while len(got) < 10:
                got += sock.recv(10)
    page = lambda: call(emulator, "GET", "/metrics")[2]  # noqa: E731
    wait_until(lambda: byte_count(page(), "toxiproxy_proxy_received_bytes_total", "a", "upstream") == 30,
               what="30 bytes received upstream on a")
    assert byte_count(page(), "toxiproxy_proxy_received_bytes_total", "b", "upstream") == 0
    assert samples(page())[("tether_wan_proxy_connections", (("proxy", "b"),))] == 0
