"""Finding a native driver's socket among the process's descriptors, with plain sockets."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator

import pytest

from tether.drivers._native_socket import (
    Native,
    Natives,
    find_socket,
    open_fds,
    peer_closed,
    sent_segments,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    yield server
    server.close()


def connect(listener: socket.socket) -> tuple[socket.socket, socket.socket]:
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    return client, accepted


def local_port_never_asked() -> int:
    raise AssertionError("asked the server although one socket appeared")


def test_the_one_new_socket_is_found_as_a_duplicate(listener: socket.socket) -> None:
    before = open_fds()
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    accepted.close()  # gone again: not a candidate
    found = find_socket(before, local_port_never_asked)
    assert found is not None and found.fileno() != client.fileno()
    assert found.getsockname() == client.getsockname()
    found.close()  # the duplicate's close leaves the original open
    client.sendall(b"x")
    client.close()


def test_several_new_sockets_are_told_apart_by_the_local_port(listener: socket.socket) -> None:
    before = open_fds()
    client, accepted = connect(listener)
    other, other_accepted = connect(listener)
    asked: list[int] = []

    def local_port() -> int:
        asked.append(1)
        return int(other.getsockname()[1])

    found = find_socket(before, local_port)
    assert asked and found is not None and found.getsockname() == other.getsockname()
    assert find_socket(before, lambda: None) is None  # the server cannot say: no guess
    for sock in (found, client, accepted, other, other_accepted):
        sock.close()


def test_a_reused_descriptor_number_counts_as_new(listener: socket.socket) -> None:
    first, first_accepted = connect(listener)
    before = open_fds()
    first.close()
    first_accepted.close()
    second = socket.create_connection(listener.getsockname())  # most likely first's number
    accepted, _ = listener.accept()
    accepted.close()
    found = find_socket(before, local_port_never_asked)
    assert found is not None and found.getsockname() == second.getsockname()
    found.close()
    second.close()


def test_sent_segments_count_requests_and_peer_closed_sees_eof(listener: socket.socket) -> None:
    client, accepted = connect(listener)
    start = sent_segments(client)
    assert start is not None
    client.sendall(b"request")
    accepted.recv(100)
    assert sent_segments(client) == start + 1
    assert not peer_closed(client)
    accepted.sendall(b"reply")
    assert not peer_closed(client)  # data waiting is not a close
    client.recv(100)
    accepted.close()
    assert peer_closed(client)
    client.close()


def test_natives_release_closes_the_duplicate(listener: socket.socket) -> None:
    class Raw:  # stands for a driver's connection object
        pass

    client, accepted = connect(listener)
    natives = Natives()
    raw = Raw()
    duplicate = socket.socket(fileno=os.dup(client.fileno()))
    natives.keep(raw, Native("msodbcsql", sock=duplicate))
    assert natives.fd(raw) == duplicate.fileno() and natives.get(Raw()) is None
    client.close()  # the driver closed its descriptor; the duplicate keeps the connection
    assert not peer_closed(accepted)
    natives.release(raw)
    assert duplicate.fileno() == -1 and len(natives) == 0
    assert peer_closed(accepted)  # now the peer sees the close
    accepted.close()


def test_natives_forget_a_connection_dropped_unclosed(listener: socket.socket) -> None:
    class Raw:
        pass

    client, accepted = connect(listener)
    natives = Natives()
    raw = Raw()
    duplicate = socket.socket(fileno=os.dup(client.fileno()))
    natives.keep(raw, Native("mssql_python", sock=duplicate))
    del raw
    assert len(natives) == 0 and duplicate.fileno() == -1
    client.close()
    accepted.close()
