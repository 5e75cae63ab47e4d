"""Pools on the embedded PostgreSQL, closed after each test whatever it did."""

from __future__ import annotations

import os
import select
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tether
from tether.session import lease_of
from tether.testing import EmbeddedPostgres
from tether.wan import Latency, Link

GOODBYE_DELAY_S = 0.1  # one way: an idle kill's goodbye on the wire, far longer than a borrow takes


@pytest.fixture
def make_pool(pg_dsn: str) -> Iterator[Callable[..., tether.Pool]]:
    """``make_pool(min_size=..., ...)``: a pool on the test server, ready (``wait()``ed)."""
    made: list[tether.Pool] = []

    def make(dsn: str | None = None, *, wait: bool = True, **settings: Any) -> tether.Pool:
        settings.setdefault("min_size", 1)
        settings.setdefault("max_size", 4)
        settings.setdefault("timeout", 5.0)
        pool = tether.Pool(dsn or pg_dsn, **settings)
        made.append(pool)
        if wait:
            pool.wait(10.0)
        return pool

    yield make
    for pool in made:
        pool.close()


@pytest.fixture
def wan_url(pg_admin: EmbeddedPostgres) -> Iterator[str]:
    """The server through a link of ``GOODBYE_DELAY_S`` each way (``test_begin_goodbye*``)."""
    with Link(upstream=(pg_admin.host, pg_admin.port)) as link:
        link.add(Latency(delay_s=GOODBYE_DELAY_S), direction="both")
        host, port = link.listen_address
        yield f"postgresql://{pg_admin.user}@{host}:{port}/{pg_admin.database}"


def socket_fd(conn: Any) -> int:
    """The descriptor tether's zero-round-trip check polls for a borrowed connection; it
    stays the connection's after the return, while the pool keeps it."""
    probe = lease_of(conn).probe
    assert probe is not None, "this driver's socket was not found"
    return int(probe.fd)


def local_socket_fd(port: int) -> int:
    """This process's TCP socket bound to local ``port``: a driver's own socket, found the
    way tether finds it for native drivers, for a connection made without the pool."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            sock = socket.socket(fileno=fd)
        except OSError:
            continue  # not a socket, or closed since the listing
        try:
            if sock.type == socket.SOCK_STREAM and sock.getsockname()[1:2] == (port,):
                return fd
        except OSError:
            continue
        finally:
            sock.detach()
    raise AssertionError(f"no socket of this process is bound to local port {port}")


def wait_for_goodbye(conn: Any, timeout: float = 5.0) -> None:
    """Wait until a connection's socket has something to say (the server's goodbye, a FIN
    or a reset): the event tether's zero-round-trip check acts on. ``conn`` is a borrowed
    connection, or a descriptor (``socket_fd``, ``local_socket_fd``)."""
    fd = conn if isinstance(conn, int) else socket_fd(conn)
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    assert poller.poll(int(timeout * 1000)), f"no goodbye on socket {fd} within {timeout} s"
