"""The Python API's contract: names, errors that change nothing, reprs, backpressure."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tether.errors import ConfigError
from tether.wan import (
    AlreadyExists,
    Emulator,
    Latency,
    Link,
    ListenError,
    NotFound,
    Reset,
)


def test_add_names_faults_like_toxiproxy_and_lifts_them(echo_server) -> None:
    with Link(upstream=echo_server.address) as link:
        applied = link.add(Latency(delay_s=0.01), direction="both")
        assert applied.names == ("latency_upstream", "latency_downstream")
        assert [(e.name, e.direction) for e in link.faults()] == [
            ("latency_upstream", "upstream"),
            ("latency_downstream", "downstream"),
        ]
        with link.add(Reset(), direction="upstream", name="rst"):
            assert len(link.faults()) == 3
        applied.lift()
        assert link.faults() == []


def test_bad_calls_raise_and_change_nothing(echo_server) -> None:
    with Link(upstream=echo_server.address) as link:
        link.add(Latency(delay_s=0.01), name="lat")
        before = link.faults()
        with pytest.raises(ValueError, match="direction"):
            link.add(Latency(delay_s=0.01), direction="sideways")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="fault"):
            link.add("latency")  # type: ignore[arg-type]
        with pytest.raises(AlreadyExists):
            link.add(Latency(delay_s=0.5), name="lat")
        with pytest.raises(AlreadyExists):  # both directions or neither
            link.add(Latency(delay_s=0.5), direction="both")
            link.add(Latency(delay_s=0.5), direction="both")
        link.remove("latency_upstream")
        link.remove("latency_downstream")
        with pytest.raises(NotFound):
            link.remove("nope")
        with pytest.raises(NotFound):
            link.update("nope", Latency(delay_s=0.1))
        assert link.faults() == before


def test_bad_addresses_are_value_errors() -> None:
    with pytest.raises(ValueError, match="upstream"):
        Link(upstream="localhost")
    with pytest.raises(ValueError, match="upstream"):
        Link(upstream=("127.0.0.1", 70000))
    with pytest.raises(ValueError, match="listen"):
        Link(upstream=("127.0.0.1", 1), listen="127.0.0.1:http")


def test_listen_port_in_use_is_a_listen_error(echo_server) -> None:
    with pytest.raises(ListenError, match=str(echo_server.address[1])):
        Link(upstream=echo_server.address, listen=echo_server.address)


def test_emulator_links_by_name(echo_server) -> None:
    with Emulator(api_port=None) as emu:
        link = emu.create(upstream=echo_server.address, name="pg")
        assert emu.link("pg").listen_address == link.listen_address
        with pytest.raises(AlreadyExists):
            emu.create(upstream=echo_server.address, name="pg")
        with pytest.raises(NotFound):
            emu.link("nope")
        assert [each.name for each in emu.links()] == ["pg"]
        link.add(Latency(delay_s=0.01))
        link.disable()
        emu.reset()
        assert link.enabled and link.faults() == []
        link.close()
        assert emu.links() == []
        assert repr(link) == "<Link 'pg' [removed]>"


def test_repr_says_what_a_link_is(echo_server) -> None:
    with Link(upstream=echo_server.address, name="db") as link:
        link.add(Latency(delay_s=0.01))
        host, port = link.listen_address
        up_host, up_port = echo_server.address
        assert repr(link) == (
            f"<Link 'db' {host}:{port} -> {up_host}:{up_port} [enabled, 1 faults, 0 connections]>"
        )


@pytest.fixture
def firehose() -> Iterator[tuple[tuple[str, int], list[int], threading.Event]]:
    """A server that writes as fast as it can (64 MiB at most) and counts what it wrote."""
    listener = socket.create_server(("127.0.0.1", 0))
    sent = [0]
    done = threading.Event()

    def run() -> None:
        conn, _ = listener.accept()
        block = b"z" * 65536
        try:
            while sent[0] < 64 << 20:
                sent[0] += conn.send(block)
        except OSError:
            pass
        finally:
            conn.close()
            done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield listener.getsockname(), sent, done
    listener.close()
    thread.join(5)


@pytest.mark.parametrize("fault", [None, Latency(delay_s=0.005)], ids=["plain", "latency"])
def test_memory_is_bounded_under_a_slow_reader(firehose, fault) -> None:
    address, sent, done = firehose
    with Link(upstream=address) as link:
        if fault is not None:
            link.add(fault)
        client = socket.create_connection(link.listen_address)
        try:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            # timing window: the server is blocked by backpressure, not finished
            assert not done.wait(0.5)
            buffered = link.stats().buffered
            assert buffered <= 2 << 20, buffered
            assert sent[0] < 32 << 20, sent[0]
        finally:
            client.close()
    assert done.wait(5)


@pytest.mark.parametrize("name", ["a/b", "..", "a\r\nb", "x" * 256])
def test_fault_names_the_control_api_could_not_address_are_refused(name: str) -> None:
    with Emulator(api_port=None) as emulator:
        link = emulator.create(upstream=("127.0.0.1", 9))
        with pytest.raises(ConfigError, match="name"):
            link.add(Latency(delay_s=0.01), name=name)
        assert link.faults() == []
