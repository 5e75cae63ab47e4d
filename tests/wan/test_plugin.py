"""The pytest plugin's fixtures, used as a user's suite would use them."""

from __future__ import annotations

import socket

from tether.wan import Latency


def test_wan_link_fixture_makes_a_link_in_front_of_an_upstream(wan_link, wan_emulator, echo_server) -> None:
    link = wan_link(upstream=echo_server.address)
    link.add(Latency(delay_s=0.001))
    with socket.create_connection(link.listen_address, timeout=5) as sock:
        sock.sendall(b"hi")
        assert sock.recv(2) == b"hi"
    assert link.name in [each.name for each in wan_emulator.links()]


def test_links_from_the_previous_test_were_removed(wan_emulator) -> None:
    assert wan_emulator.links() == []
    assert wan_emulator.api_url.startswith("http://127.0.0.1:")
