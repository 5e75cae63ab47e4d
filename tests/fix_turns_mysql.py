"""Round trips counted by the MySQL protocol: ``fix_turns``' proxy with a MySQL reader.

A turn is what the client sends before the server answers; each command in it is named:
``query:<text>`` (COM_QUERY), ``ping``, ``reset`` (COM_RESET_CONNECTION), ``init_db:<name>``,
``quit``, ``change_user``, ``prepare:<text>``, ``execute``...; what a client sends inside the
login (its handshake response, an authentication switch's answer, TLS) is ``auth``.
``counting_mysql(server)`` gives a proxy in front of an ``EmbeddedMariaDB`` and the
(host, port) through it; ``mysql_bench`` a pool and a raw PyMySQL connection through it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import tether
from fix_turns import TurnCounter, Turns
from fix_turns_borrow import Bench
from tether.testing import EmbeddedMariaDB

_COMMANDS = {0x01: "quit", 0x02: "init_db", 0x03: "query", 0x0E: "ping", 0x11: "change_user",
             0x16: "prepare", 0x17: "execute", 0x19: "close_stmt", 0x1A: "reset_stmt",
             0x1B: "set_option", 0x1F: "reset"}  # fmt: skip
_WITH_TEXT = (0x02, 0x03, 0x16)


class MySQLConversation(Turns):
    """One MySQL client connection: packets of a 3-byte length and a sequence number."""

    def __init__(self) -> None:
        super().__init__()
        self._tls = False  # past an SSLRequest: the rest is TLS records

    def _next(self) -> str | None:
        buf = self._buffer
        if self._tls:
            if not buf:
                return None
            self._buffer = b""
            return "auth"
        if len(buf) < 4:
            return None
        length = int.from_bytes(buf[:3], "little")
        if len(buf) < 4 + length:
            return None
        sequence, payload, self._buffer = buf[3], buf[4 : 4 + length], buf[4 + length :]
        if sequence != 0 or not payload:
            if sequence == 1 and length == 32:  # an SSLRequest: the handshake goes on in TLS
                self._tls = True
            return "auth"
        command = payload[0]
        name = _COMMANDS.get(command, f"command{command:#x}")
        if command in _WITH_TEXT:
            return f"{name}:{payload[1:].decode('utf-8', 'replace')}"
        return name


@contextlib.contextmanager
def counting_mysql(server: EmbeddedMariaDB) -> Iterator[tuple[TurnCounter, tuple[str, int]]]:
    """A turn-counting proxy in front of ``server``, and its (host, port)."""
    counter = TurnCounter((server.host, server.port), MySQLConversation)
    try:
        yield counter, ("127.0.0.1", counter.port)
    finally:
        counter.close()


def commands(turns: list[list[str]]) -> list[list[str]]:
    """The turns with the login's packets left out."""
    kept = [[m for m in turn if m != "auth"] for turn in turns]
    return [turn for turn in kept if turn]


def mysql_bench(server: EmbeddedMariaDB, password: str, counter: TurnCounter, address: tuple[str, int], *,
                autocommit: bool) -> Bench:
    """A pool of one connection and a raw PyMySQL connection, through ``counter`` at ``address``."""
    import pymysql  # type: ignore[import-untyped]

    host, port = address
    dsn = f"mysql+pymysql://{server.user}:{password}@{host}:{port}/{server.database}"
    pool = tether.Pool(dsn, autocommit=autocommit, min_size=1, max_size=1, timeout=10)
    try:
        pool.wait(10)
        raw = pymysql.connect(host=host, port=port, user=server.user, password=password,
                              database=server.database, autocommit=autocommit)
    except BaseException:
        pool.close()
        raise
    return Bench(counter, pool, raw, autocommit=autocommit, keep=commands)
