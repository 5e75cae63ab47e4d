"""The socket probe and keepalive options on plain loopback sockets (no driver needed)."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from tether.net import Keepalive, Liveness, SocketProbe, apply_keepalive, read_keepalive


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
    yield client, peer
    client.close()
    peer.close()


def test_a_quiet_socket_reads_quiet(pair: tuple[socket.socket, socket.socket]) -> None:
    probe = SocketProbe(pair[0].fileno())
    assert probe.quiet() and probe.check() is Liveness.QUIET


def test_two_threads_may_check_one_socket_at_once(pair: tuple[socket.socket, socket.socket]) -> None:
    # A poll object serves one thread at a time ("concurrent poll() invocation"); the idle
    # sweep and a checkout may check the same connection together.
    probe = SocketProbe(pair[0].fileno())
    blocked = threading.Thread(target=probe._poll.poll, args=(10_000,), daemon=True)
    blocked.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # until the other thread is inside poll()
        try:
            probe._poll.poll(0)
        except RuntimeError:
            break
    else:
        pytest.fail("the other thread never entered poll()")
    assert probe.quiet() and probe.check() is Liveness.QUIET
    pair[1].sendall(b"x")  # wakes it
    blocked.join(10)
    assert not blocked.is_alive()
    assert probe.check() is Liveness.DATA


def test_unsolicited_bytes_are_peeked_not_consumed(pair: tuple[socket.socket, socket.socket]) -> None:
    client, peer = pair
    peer.sendall(b"E\x00\x00\x00\x08goodbye")
    probe = SocketProbe(client.fileno())
    assert probe.check() is Liveness.DATA
    assert probe.peek() == (Liveness.DATA, b"E\x00\x00\x00\x08goodbye")
    assert client.recv(100) == b"E\x00\x00\x00\x08goodbye"  # still there for the driver


def test_eof_reads_closed(pair: tuple[socket.socket, socket.socket]) -> None:
    client, peer = pair
    peer.close()
    assert SocketProbe(client.fileno()).check() is Liveness.CLOSED


def test_reset_reads_closed(pair: tuple[socket.socket, socket.socket]) -> None:
    client, peer = pair
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()  # RST
    assert SocketProbe(client.fileno()).check() is Liveness.CLOSED


def test_keepalive_is_set_on_a_borrowed_descriptor(pair: tuple[socket.socket, socket.socket]) -> None:
    client, _ = pair
    apply_keepalive(client.fileno(), Keepalive(idle_s=11, interval_s=3, count=4, user_timeout_s=12))
    options = read_keepalive(client.fileno())
    assert options["SO_KEEPALIVE"] == 1 and options["TCP_KEEPIDLE"] == 11
    assert options["TCP_KEEPINTVL"] == 3 and options["TCP_KEEPCNT"] == 4
    assert options["TCP_USER_TIMEOUT"] == 12000
    client.getsockname()  # the socket is still the caller's and still open


def test_keepalive_off_leaves_the_socket_alone(pair: tuple[socket.socket, socket.socket]) -> None:
    client, _ = pair
    apply_keepalive(client.fileno(), Keepalive.off())
    assert read_keepalive(client.fileno())["SO_KEEPALIVE"] == 0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"idle_s": 0}, "idle_s"), ({"interval_s": 0}, "interval_s"), ({"count": 0}, "count"),
     ({"user_timeout_s": -1}, "user_timeout_s")],
)
def test_bad_keepalive_settings_name_the_field(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        Keepalive(**kwargs)  # type: ignore[arg-type]
