"""Byte-exact forwarding, with and without faults that keep data, both directions at once."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from wan_helpers import digest, duplex_echo, random_payload

from tether.wan import Bandwidth, Fault, Latency, Link, Slicer, SlowClose

Connect = Callable[[tuple[str, int]], socket.socket]

KEEPING_FAULTS: list[tuple[str, Fault, int]] = [
    ("none", Latency(delay_s=0.0), 4 << 20),
    ("latency+jitter", Latency(delay_s=0.005, jitter_s=0.004), 2 << 20),
    ("bandwidth", Bandwidth(rate_bps=40_000_000), 2 << 20),
    ("slicer", Slicer(average_size=1500, size_variation=1000), 2 << 20),
    ("slicer-delay", Slicer(average_size=16384, size_variation=8000, delay_s=0.0001), 1 << 20),
    ("slow_close", SlowClose(delay_s=0.01), 2 << 20),
    ("half-toxic", Latency(delay_s=0.002, toxicity=0.5), 1 << 20),
]


def test_plain_forwarding_is_byte_exact(echo_server, connect: Connect) -> None:
    payload = random_payload(4 << 20, seed=1)
    with Link(upstream=echo_server.address) as link:
        sock = connect(link.listen_address)
        received = duplex_echo(sock, payload, seed=2, deadline_s=20)
    assert len(received) == len(payload)
    assert digest(received) == digest(payload)


@pytest.mark.parametrize(("label", "fault", "size"), KEEPING_FAULTS, ids=lambda v: str(v))
def test_faults_that_keep_data_are_byte_exact_both_ways(
    echo_server, connect: Connect, label: str, fault: Fault, size: int
) -> None:
    payload = random_payload(size, seed=len(label))
    with Link(upstream=echo_server.address, seed=7) as link:
        link.add(fault, direction="both")
        sock = connect(link.listen_address)
        received = duplex_echo(sock, payload, seed=3, deadline_s=20)
    assert len(received) == len(payload), label
    assert digest(received) == digest(payload), label


def test_fault_added_mid_stream_keeps_order(echo_server, connect: Connect) -> None:
    payload = random_payload(1 << 20, seed=9)
    with Link(upstream=echo_server.address) as link:
        sock = connect(link.listen_address)
        sock.sendall(payload[:1000])
        assert _recv_exact(sock, 1000) == payload[:1000]
        applied = link.add(Latency(delay_s=0.003, jitter_s=0.003), direction="both")
        sock.sendall(payload[1000:5000])
        applied.lift()
        sock.sendall(payload[5000:])
        sock.shutdown(socket.SHUT_WR)
        rest = _recv_exact(sock, len(payload) - 1000)
    assert digest(payload[:1000] + rest) == digest(payload)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


@pytest.mark.parametrize("fault", [None, Latency(delay_s=0.01)], ids=["plain", "latency"])
def test_bytes_sent_before_the_upstream_connects_arrive(
    echo_server, connect: Connect, monkeypatch: pytest.MonkeyPatch, fault: Fault | None
) -> None:
    """Python < 3.11.3 (Debian 12's 3.11.2) ignores pause_reading() in connection_made: the
    client's first bytes are read before the upstream is connected. They wait, then arrive."""
    from asyncio import selector_events

    def add_reader_as_in_3_11_2(self: Any, fd: int, callback: Any, *args: Any) -> None:
        if self._closing:
            return
        self._loop._add_reader(fd, callback, *args)

    monkeypatch.setattr(selector_events._SelectorTransport, "_add_reader", add_reader_as_in_3_11_2)
    with Link(upstream=echo_server.address) as link:
        if fault is not None:
            link.add(fault, direction="both")
        for _ in range(5):
            sock = connect(link.listen_address)
            sock.sendall(b"first bytes")
            assert _recv_exact(sock, 11) == b"first bytes"
