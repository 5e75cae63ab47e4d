"""Each fault's effect as a client sees it, measured in timing windows where time matters."""

from __future__ import annotations

import errno
import socket
import statistics
import time
from collections.abc import Callable

import pytest

from tether.wan import Bandwidth, Latency, LimitData, Link, Reset, SlowClose

Connect = Callable[..., socket.socket]


def _ping(sock: socket.socket, data: bytes = b"ping") -> float:
    start = time.monotonic()
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = sock.recv(len(data) - len(got))
        assert chunk, "connection closed during ping"
        got += chunk
    assert got == data
    return time.monotonic() - start


def _assert_reset(sock: socket.socket) -> None:
    with pytest.raises(ConnectionResetError) as info:
        while sock.recv(65536):
            pass
    assert info.value.errno == errno.ECONNRESET


def test_latency_adds_its_delay_to_each_round_trip(echo_server, connect: Connect) -> None:
    with Link(upstream=echo_server.address) as link:
        sock = connect(link.listen_address)
        _ping(sock)
        link.add(Latency(delay_s=0.025), direction="both")
        rtts = [_ping(sock) for _ in range(5)]
    assert 0.040 <= statistics.median(rtts) <= 0.060, rtts


def test_latency_is_measured_from_arrival_so_bursts_do_not_add_up(echo_server, connect: Connect) -> None:
    with Link(upstream=echo_server.address) as link:
        link.add(Latency(delay_s=0.05))
        sock = connect(link.listen_address)
        start = time.monotonic()
        for i in range(20):  # 20 separate writes, echoed as separate chunks
            sock.sendall(bytes([i]) * 100)
        got = b""
        while len(got) < 2000:
            got += sock.recv(4096)
        elapsed = time.monotonic() - start
    assert got == b"".join(bytes([i]) * 100 for i in range(20))  # order kept
    # If the delays added up, 20 chunks would take 20 x 50 ms; the slack above 60 ms is
    # for a loaded 2-core machine, still far below a second delay (100 ms).
    assert 0.040 <= elapsed < 0.100, elapsed


def test_bandwidth_limits_throughput_within_ten_percent(echo_server, connect: Connect) -> None:
    size, rate = 1_000_000, 2_000_000
    with Link(upstream=echo_server.address) as link:
        link.add(Bandwidth(rate_bps=rate))
        sock = connect(link.listen_address)
        _ping(sock)
        start = time.monotonic()
        sock.sendall(b"x" * size)
        got = 0
        while got < size:
            got += len(sock.recv(65536))
        elapsed = time.monotonic() - start
    expected = size / rate
    assert expected * 0.9 <= elapsed <= expected * 1.1, elapsed


def test_reset_is_seen_by_the_client_as_econnreset(echo_server, connect: Connect) -> None:
    with Link(upstream=echo_server.address) as link:
        link.add(Reset(), direction="upstream")
        sock = connect(link.listen_address)
        sock.sendall(b"query")
        _assert_reset(sock)


def test_reset_after_bytes_forwards_exactly_that_many(echo_server, connect: Connect) -> None:
    with Link(upstream=echo_server.address) as link:
        link.add(Reset(after_bytes=1000), direction="downstream")
        sock = connect(link.listen_address)
        sock.sendall(b"a" * 5000)
        got = b""
        with pytest.raises(ConnectionResetError):
            while chunk := sock.recv(65536):
                got += chunk
    assert got == b"a" * 1000


def test_reset_after_a_delay_kills_an_idle_connection(echo_server, connect: Connect) -> None:
    # Only the lower bound is asserted: the reset never comes early. An upper bound is
    # the machine's load (on a busy CI runner, 0.1 s passed before the ping was answered).
    with Link(upstream=echo_server.address) as link:
        link.add(Reset(delay_s=1.0, after_bytes=None))
        start = time.monotonic()
        sock = connect(link.listen_address)
        _ping(sock)  # usable until then
        _assert_reset(sock)
        elapsed = time.monotonic() - start
    assert elapsed >= 1.0 - 0.01, elapsed


def test_reset_toxicity_is_an_error_rate(echo_server, connect: Connect) -> None:
    with Link(upstream=echo_server.address, seed=1234) as link:
        link.add(Reset(toxicity=0.5), direction="upstream")
        resets = 0
        for _ in range(40):
            sock = connect(link.listen_address)
            sock.sendall(b"?")
            try:
                resets += sock.recv(1) != b"?"
            except ConnectionResetError:
                resets += 1
            sock.close()
    assert 8 <= resets <= 32, resets


def test_zero_toxicity_never_applies(echo_server, connect: Connect) -> None:
    with Link(upstream=echo_server.address) as link:
        link.add(Reset(toxicity=0.0), direction="upstream")
        for _ in range(10):
            assert _ping(connect(link.listen_address)) < 1.0


def test_reset_all_resets_every_open_connection(echo_server, connect: Connect) -> None:
    with Link(upstream=echo_server.address) as link:
        socks = [connect(link.listen_address) for _ in range(3)]
        for sock in socks:
            _ping(sock)
        assert link.reset_all() == 3
        for sock in socks:
            _assert_reset(sock)
        link.wait_connections(0)
        _ping(connect(link.listen_address))  # new connections still work


def test_blackhole_is_a_stall_that_ends_when_lifted(echo_server, connect: Connect) -> None:
    with Link(upstream=echo_server.address) as link:
        sock = connect(link.listen_address)
        _ping(sock)
        with link.blackhole(hold=True):
            sock.sendall(b"held")
            sock.settimeout(0.2)
            with pytest.raises(TimeoutError):
                sock.recv(10)
        sock.settimeout(5)
        assert sock.recv(10) == b"held"  # held data delivered once lifted
        assert _ping(sock) < 1.0


def test_blackhole_discards_data_like_toxiproxy_timeout(echo_server, connect: Connect) -> None:
    with Link(upstream=echo_server.address) as link:
        sock = connect(link.listen_address)
        _ping(sock)
        blackhole = link.blackhole()
        sock.sendall(b"lost")
        sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            sock.recv(10)
        blackhole.lift()
        sock.settimeout(5)
        _ping(sock, b"after")  # only new data flows: "lost" never reached the server
        assert link.stats().connections == 1


def test_blackhole_with_timeout_closes_the_connection(echo_server, connect: Connect) -> None:
    with Link(upstream=echo_server.address) as link:
        link.blackhole(timeout_s=0.1)
        sock = connect(link.listen_address)
        start = time.monotonic()
        sock.sendall(b"into the void")
        assert sock.recv(10) == b""
        elapsed = time.monotonic() - start
    assert 0.07 <= elapsed <= 0.3, elapsed


def test_limit_data_closes_after_that_many_bytes(echo_server, connect: Connect) -> None:
    with Link(upstream=echo_server.address) as link:
        link.add(LimitData(max_bytes=1000))
        sock = connect(link.listen_address)
        sock.sendall(b"b" * 5000)
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
    assert got == b"b" * 1000


def test_slow_close_delays_the_fin(echo_server, connect: Connect) -> None:
    with Link(upstream=echo_server.address) as link:
        link.add(SlowClose(delay_s=0.1))
        sock = connect(link.listen_address)
        _ping(sock)
        start = time.monotonic()
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(10) == b""
        elapsed = time.monotonic() - start
    assert 0.09 <= elapsed <= 0.25, elapsed


def test_down_refuses_new_connections_and_drops_open_ones(echo_server, connect: Connect) -> None:
    with Link(upstream=echo_server.address) as link:
        sock = connect(link.listen_address)
        _ping(sock)
        address = link.listen_address
        with link.down():
            assert sock.recv(10) == b""
            with pytest.raises(ConnectionRefusedError):
                connect(address)
        _ping(connect(link.listen_address))


def test_disable_and_enable(echo_server, connect: Connect) -> None:
    with Link(upstream=echo_server.address) as link:
        address = link.listen_address
        link.disable()
        assert not link.enabled
        with pytest.raises(ConnectionRefusedError):
            connect(address)
        link.enable()
        assert link.listen_address == address
        _ping(connect(address))


def test_unreachable_upstream_closes_the_client(connect: Connect) -> None:
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        dead = placeholder.getsockname()
    with Link(upstream=dead) as link:
        sock = connect(link.listen_address)
        assert sock.recv(10) == b""
