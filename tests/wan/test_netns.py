"""Real-network faults through a namespace and a veth pair (Linux, root; skipped elsewhere)."""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tether.wan import NetNamespace, netns_unavailable

pytestmark = pytest.mark.netns

# An echo server inside the namespace: prints its port, echoes each connection until EOF.
_SERVER = """
import socket, sys, threading
srv = socket.create_server((sys.argv[1], 0))
print(srv.getsockname()[1], flush=True)
def echo(c):
    with c:
        try:
            while d := c.recv(65536):
                c.sendall(d)
        except OSError:
            pass
while True:
    c, _ = srv.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
"""


@pytest.fixture
def netns() -> Iterator[NetNamespace]:
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with NetNamespace() as ns:
        yield ns


@pytest.fixture
def ns_server(netns: NetNamespace) -> Iterator[tuple[str, int]]:
    proc = netns.popen(
        [sys.executable, "-c", _SERVER, netns.address],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield netns.address, int(proc.stdout.readline())
    finally:
        proc.terminate()  # our own child, by its PID
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def _keepalive_client(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 2)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 3000)
    return sock


def test_namespace_is_removed_on_exit() -> None:
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with NetNamespace() as ns:
        name, ifname = ns.name, ns.host_ifname
        assert ns.address.startswith("169.254.")
        assert name in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert name not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "link", "show"], capture_output=True, text=True).stdout
    assert ifname not in links


def _assert_connect_times_out(address: tuple[str, int], timeout_s: float) -> None:
    """The SYNs go unanswered: no EHOSTUNREACH (failed ARP), no ECONNREFUSED (a RST)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        with pytest.raises(OSError) as info:
            sock.connect(address)
    assert isinstance(info.value, TimeoutError) and info.value.errno is None, info.value


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size and (chunk := sock.recv(size - len(data))):
        data += chunk
    return data


def test_link_down_is_silent_for_new_connections(netns: NetNamespace, ns_server) -> None:
    netns.link_down()
    # 3 x 1.5 s: past the ~3 s after which an unanswered ARP would turn into EHOSTUNREACH
    for _ in range(3):
        _assert_connect_times_out(ns_server, timeout_s=1.5)
    netns.link_up()
    with socket.create_connection(ns_server, timeout=1.5) as sock:  # at once: no stale failure
        sock.sendall(b"up")
        assert _recv_exactly(sock, 2) == b"up"


def test_open_connection_sees_nothing_while_down_and_carries_on_after(netns: NetNamespace, ns_server) -> None:
    with socket.create_connection(ns_server, timeout=5) as sock:
        sock.sendall(b"a")
        assert sock.recv(1) == b"a"
        netns.link_down()
        sock.sendall(b"held")  # retransmitted into the void while the link is down
        sock.settimeout(4.0)  # past the ~3 s an unanswered ARP would take
        with pytest.raises(TimeoutError) as info:
            sock.recv(4)
        assert info.value.errno is None, info.value
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        netns.link_up()
        sock.settimeout(15.0)  # the next retransmission (exponential backoff) delivers it
        assert _recv_exactly(sock, 4) == b"held"


def test_silent_link_drop_is_detected_by_keepalive(netns: NetNamespace, ns_server) -> None:
    with _keepalive_client(ns_server) as sock:
        sock.sendall(b"ping")
        assert sock.recv(4) == b"ping"
        netns.link_down()  # no FIN, no RST: the peer just stops answering
        start = time.monotonic()
        with pytest.raises(OSError) as info:
            sock.recv(4)  # the socket timeout (10 s) is far beyond the keepalive bound
        elapsed = time.monotonic() - start
    assert info.value.errno == errno.ETIMEDOUT, info.value  # a dead path, not a failed ARP
    # idle 1 s + 2 probes 1 s apart, or TCP_USER_TIMEOUT 3 s: well under 6 s either way
    assert 1.0 <= elapsed <= 6.0, elapsed


def test_link_comes_back_up(netns: NetNamespace, ns_server) -> None:
    with socket.create_connection(ns_server, timeout=5) as sock:
        netns.link_down()
        netns.link_up()
        sock.sendall(b"again")
        assert sock.recv(5) == b"again"


def test_tbf_shapes_bandwidth(netns: NetNamespace, ns_server) -> None:
    rate, size = 2_000_000, 1_000_000
    netns.shape(rate_bps=rate, burst_bytes=16384)
    with socket.create_connection(ns_server, timeout=10) as sock:
        start = time.monotonic()
        sock.sendall(b"s" * size)
        got = 0
        while got < size:
            got += len(sock.recv(65536))
        elapsed = time.monotonic() - start
    netns.unshape()
    # Shaping is proven by the lower bound (no faster than the rate); the upper bound
    # only says it was not throttled far below it, with room for a busy 2-core machine.
    assert size / rate * 0.85 <= elapsed <= size / rate * 1.5, elapsed


def test_bad_shape_arguments(netns: NetNamespace) -> None:
    with pytest.raises(ValueError, match="rate_bps"):
        netns.shape(rate_bps=-1)
