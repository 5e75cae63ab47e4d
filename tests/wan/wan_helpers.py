"""Helpers shared by the WAN emulator's tests (imported, not collected)."""

from __future__ import annotations

import hashlib
import os
import random
import socket
import threading


def random_payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size) if size < 1 << 16 else os.urandom(size)


def duplex_echo(sock: socket.socket, payload: bytes, *, seed: int, deadline_s: float) -> bytes:
    """Send ``payload`` in random chunk sizes while reading the echo; return what came back."""
    rng = random.Random(seed)
    sock.settimeout(deadline_s)
    errors: list[BaseException] = []

    def send() -> None:
        try:
            view = memoryview(payload)
            offset = 0
            while offset < len(view):
                size = rng.randint(1, 65536)
                sock.sendall(view[offset : offset + size])
                offset += size
            sock.shutdown(socket.SHUT_WR)
        except BaseException as exc:
            errors.append(exc)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    received = bytearray()
    try:
        while chunk := sock.recv(rng.randint(1, 131072)):
            received += chunk
    finally:
        sender.join(deadline_s)
    if errors:
        raise errors[0]
    return bytes(received)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
