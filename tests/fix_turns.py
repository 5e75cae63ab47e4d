"""A loopback TCP proxy that counts round trips by the PostgreSQL wire protocol (``turns``).

A round trip is a *turn*: what the client sends before the server answers. The proxy
reads the frontend messages of each turn (type letters, with the text of each simple
query and Parse), so a test asserts what went over the wire, never how long it took:
``[["Q:BEGIN"], ["P:SELECT 1", "B", "D", "E", "S"], ["Q:COMMIT"]]`` is three round
trips. ``counting(server)`` gives a proxy in front of a server, and the URL through
it."""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from tether.testing import EmbeddedPostgres

_SPECIAL = (80877103, 80877104)  # SSLRequest, GSSENCRequest: eight bytes, one byte back


class Turns:
    """One client connection: its turns, each the client's messages it holds. A protocol's
    subclass writes ``_next``: the next whole message in ``_buffer`` (consumed), named, or
    None until more bytes come."""

    def __init__(self) -> None:
        self.turns: list[list[str]] = []
        self._buffer = b""
        self._answered = True  # the server spoke since the client last did

    def client_sent(self, data: bytes) -> None:
        if self._answered:
            self.turns.append([])
            self._answered = False
        self._buffer += data
        while (message := self._next()) is not None:
            self.turns[-1].append(message)

    def server_sent(self, data: bytes) -> None:
        self._answered = True

    def _next(self) -> str | None:
        raise NotImplementedError


class Conversation(Turns):
    """One PostgreSQL client connection: its turns, each the frontend messages it holds."""

    def __init__(self) -> None:
        super().__init__()
        self._started = False  # past the untyped startup message

    def _next(self) -> str | None:
        buf = self._buffer
        if not self._started:
            if len(buf) < 8:
                return None
            (length,) = struct.unpack("!I", buf[:4])
            if len(buf) < length:
                return None
            (code,) = struct.unpack("!I", buf[4:8])
            self._buffer = buf[length:]
            self._started = code not in _SPECIAL
            return "startup"
        if len(buf) < 5:
            return None
        kind = chr(buf[0])
        (length,) = struct.unpack("!I", buf[1:5])
        if len(buf) < 1 + length:
            return None
        body, self._buffer = buf[5 : 1 + length], buf[1 + length :]
        if kind == "Q":
            return "Q:" + body.rstrip(b"\0").decode("utf-8", "replace")
        if kind == "P":  # Parse: a statement name, then the text
            return "P:" + body.split(b"\0")[1].decode("utf-8", "replace")
        return kind


class Conversations(Protocol):
    """What the proxy feeds: ``Turns`` or a subclass."""

    turns: list[list[str]]

    def client_sent(self, data: bytes) -> None: ...

    def server_sent(self, data: bytes) -> None: ...


class TurnCounter:
    """The proxy. ``since()`` marks a moment; ``turns()`` lists every turn after it.
    ``protocol`` makes the reader of each connection (PostgreSQL's by default)."""

    def __init__(self, upstream: tuple[str, int], protocol: Callable[[], Conversations] = Conversation):
        self._upstream = upstream
        self._protocol = protocol
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._conversations: list[Conversations] = []
        self._marks: dict[int, int] = {}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def since(self) -> None:
        """Count from now on."""
        with self._lock:
            self._marks = {id(c): len(c.turns) for c in self._conversations}

    def turns(self) -> list[list[str]]:
        """Every turn since ``since()``, of every connection, in no particular order
        across connections (tests use one connection at a time)."""
        with self._lock:
            return [t for c in self._conversations for t in c.turns[self._marks.get(id(c), 0) :]]

    def settle(self, *, quiet_s: float = 0.2, timeout_s: float = 10.0) -> None:
        """Wait until no turn was added for ``quiet_s`` (the pool's background resets done)."""
        deadline = time.monotonic() + timeout_s
        last = -1
        while time.monotonic() < deadline:
            count = sum(len(t) for t in self.turns()) + len(self.turns())
            if count == last:
                return
            last = count
            time.sleep(quiet_s)  # the end of background work is what is waited for
        raise AssertionError(f"the connection did not settle within {timeout_s} s")

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._listener], [], [], 0.1)
            if not ready:
                continue
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._upstream)
            conversation = self._protocol()
            with self._lock:
                self._conversations.append(conversation)
            thread = threading.Thread(target=self._pump, args=(client, server, conversation), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _pump(self, client: socket.socket, server: socket.socket, conversation: Conversations) -> None:
        with client, server:
            while not self._stop.is_set():
                ready, _, _ = select.select([client, server], [], [], 0.1)
                for sock in ready:
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    with self._lock:
                        if sock is client:
                            conversation.client_sent(data)
                        else:
                            conversation.server_sent(data)
                    (server if sock is client else client).sendall(data)


@contextlib.contextmanager
def counting(server: EmbeddedPostgres) -> Iterator[tuple[TurnCounter, str]]:
    """A turn-counting proxy in front of ``server``, and the URL through it."""
    counter = TurnCounter((server.host, server.port))
    dsn = f"postgresql://{server.user}@127.0.0.1:{counter.port}/{server.database}?sslmode=disable"
    try:
        yield counter, dsn
    finally:
        counter.close()


def texts(turn: list[str]) -> list[str]:
    """A turn's statements: the text of each simple query and Parse, in order."""
    return [message[2:] for message in turn if message[:2] in ("Q:", "P:")]
