"""The toxiproxy-python client, unchanged, against tether's control API."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tether.wan import Emulator

toxiproxy = pytest.importorskip("toxiproxy")
from toxiproxy.api import APIConsumer  # noqa: E402
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists  # noqa: E402


@pytest.fixture
def server() -> Iterator[toxiproxy.Toxiproxy]:
    with Emulator(api_port=0) as emulator:
        assert emulator.api_address is not None
        saved = APIConsumer.host, APIConsumer.port
        client = toxiproxy.Toxiproxy()
        client.update_api_consumer(*emulator.api_address)
        try:
            yield client
        finally:
            APIConsumer.host, APIConsumer.port = saved


def _rtt(listen: str) -> float:
    host, _, port = listen.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        start = time.monotonic()
        sock.sendall(b"x")
        assert sock.recv(1) == b"x"
        return time.monotonic() - start


def test_client_round_trip(server: toxiproxy.Toxiproxy, echo_server) -> None:
    assert server.running()
    assert b"version" in server.version()
    upstream = "{}:{}".format(*echo_server.address)
    proxy = server.create(upstream=upstream, name="pg")
    assert proxy.enabled is True
    assert set(server.proxies()) == {"pg"}
    with pytest.raises(ProxyExists):
        server.create(upstream=upstream, name="pg")

    proxy.add_toxic(type="latency", attributes={"latency": 50})
    toxics = proxy.toxics()
    assert list(toxics) == ["latency_downstream"]
    assert toxics["latency_downstream"].attributes["latency"] == 50
    assert 0.040 <= _rtt(proxy.listen) <= 0.060
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="earthquake")
    assert proxy.destroy_toxic("latency_downstream")
    with pytest.raises(NotFound):
        proxy.destroy_toxic("latency_downstream")

    with proxy.down(), pytest.raises(ConnectionRefusedError):
        _rtt(proxy.listen)
    assert _rtt(proxy.listen) < 1.0

    assert server.reset()
    populated = server.populate([{"name": "other", "upstream": upstream, "listen": "127.0.0.1:0"}])
    assert [p.name for p in populated] == ["other"]
    server.destroy_all()
    assert server.proxies() == {}
