"""Fixtures for the WAN emulator's tests: upstream servers of our own, on 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest


@dataclass
class EchoServer:
    """Echoes every connection until EOF, then half-closes. Threads, stdlib only."""

    sock: socket.socket
    threads: list[threading.Thread] = field(default_factory=list)
    conns: list[socket.socket] = field(default_factory=list)
    accepted: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return host, port

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            t = threading.Thread(target=self._echo, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()
            self.accepted.release()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        try:
            while data := conn.recv(65536):
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for t in self.threads:
            t.join(5)
        for conn in self.conns:
            conn.close()


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    sock = socket.create_server(("127.0.0.1", 0))
    server = EchoServer(sock)
    acceptor = threading.Thread(target=server.serve, daemon=True)
    acceptor.start()
    try:
        yield server
    finally:
        # shutdown() wakes the blocked accept(); close() alone does not on Linux
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        acceptor.join(5)  # no more accepted sockets after this
        server.close()


@pytest.fixture
def connect() -> Iterator[Callable[[tuple[str, int]], socket.socket]]:
    """Open client sockets that are all closed at teardown."""
    socks: list[socket.socket] = []

    def open_(address: tuple[str, int], timeout_s: float = 5.0) -> socket.socket:
        sock = socket.create_connection(address, timeout=timeout_s)
        socks.append(sock)
        return sock

    yield open_
    for sock in socks:
        sock.close()
