"""Benchmark of tether.wan: what the emulator costs when it adds no fault, and how exact it is.

    python bench/bench_wan.py [--quick]

Prints a table and writes bench/results/wan.json:

- added latency per round trip with no faults (proxy median - direct median), 64-byte pings;
- loopback throughput through the proxy and direct, and their ratio;
- latency accuracy: measured minus (direct + setting) for a 20 ms downstream latency;
- memory under a slow reader: bytes the emulator buffers, and RSS growth, while a server
  writes as fast as it can to a client that reads nothing.

Upstream servers run in a child process of their own (echo, sink, firehose) on 127.0.0.1,
so the client and the proxy do not share the server's GIL.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tether.wan import Latency, Link

RESULTS = Path(__file__).parent / "results" / "wan.json"

_SERVER = r"""
import socket, sys, threading
mode = sys.argv[1]
srv = socket.create_server(("127.0.0.1", 0))
print(srv.getsockname()[1], flush=True)
def handle(c):
    with c:
        try:
            if mode == "echo":
                while d := c.recv(65536):
                    c.sendall(d)
            elif mode == "sink":
                total = 0
                while d := c.recv(1 << 20):
                    total += len(d)
                c.sendall(str(total).encode())
            else:  # firehose
                block = b"z" * 65536
                while True:
                    c.sendall(block)
        except OSError:
            pass
while True:
    c, _ = srv.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
"""


@contextmanager
def server(mode: str) -> Iterator[tuple[str, int]]:
    proc = subprocess.Popen([sys.executable, "-c", _SERVER, mode], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield "127.0.0.1", int(proc.stdout.readline())
    finally:
        proc.terminate()  # our own child, by its PID
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def round_trips(address: tuple[str, int], count: int) -> list[float]:
    with socket.create_connection(address) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        payload = b"p" * 64
        times = []
        for _ in range(count):
            start = time.perf_counter()
            sock.sendall(payload)
            got = 0
            while got < len(payload):
                got += len(sock.recv(4096))
            times.append(time.perf_counter() - start)
    return times


def throughput(address: tuple[str, int], size: int) -> float:
    block = b"t" * (1 << 20)
    with socket.create_connection(address) as sock:
        start = time.perf_counter()
        for _ in range(size // len(block)):
            sock.sendall(block)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(64):
            answer += chunk
        elapsed = time.perf_counter() - start
    assert int(answer) == size, answer
    return size / elapsed / 1e6


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def bench_latency(count: int) -> dict[str, float]:
    with server("echo") as address, Link(upstream=address) as link:
        round_trips(address, 100)  # warm up
        round_trips(link.listen_address, 100)
        direct = statistics.median(round_trips(address, count))
        proxied = statistics.median(round_trips(link.listen_address, count))
    return {
        "direct_median_us": direct * 1e6,
        "proxied_median_us": proxied * 1e6,
        "added_median_us": (proxied - direct) * 1e6,
    }


def bench_throughput(size: int) -> dict[str, float]:
    with server("sink") as address, Link(upstream=address) as link:
        throughput(address, size // 4)  # warm up
        direct = max(throughput(address, size) for _ in range(3))
        proxied = max(throughput(link.listen_address, size) for _ in range(3))
    return {"direct_MBps": direct, "proxied_MBps": proxied, "ratio": proxied / direct}


def bench_accuracy(count: int, delay_s: float = 0.02) -> dict[str, float]:
    with server("echo") as address, Link(upstream=address) as link:
        direct = statistics.median(round_trips(address, 50))
        link.add(Latency(delay_s=delay_s))
        errors = [t - direct - delay_s for t in round_trips(link.listen_address, count)]
    return {
        "setting_ms": delay_s * 1e3,
        "error_median_ms": statistics.median(errors) * 1e3,
        "error_p95_ms": sorted(errors)[int(len(errors) * 0.95)] * 1e3,
        "error_max_abs_ms": max(abs(e) for e in errors) * 1e3,
    }


def bench_slow_reader(seconds: float) -> dict[str, float]:
    with server("firehose") as address, Link(upstream=address) as link:
        before = rss_bytes()
        with socket.create_connection(link.listen_address) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            peak = 0
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                peak = max(peak, link.stats().buffered)
                time.sleep(0.05)
            forwarded = link.stats().bytes_downstream
        grown = rss_bytes() - before
    return {
        "seconds": seconds,
        "peak_buffered_KiB": peak / 1024,
        "forwarded_KiB": forwarded / 1024,
        "rss_growth_MiB": grown / (1 << 20),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, smaller transfers")
    args = parser.parse_args(argv)
    n, size = (500, 128 << 20) if args.quick else (3000, 512 << 20)
    results = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "latency_no_fault": bench_latency(n),
        "throughput_loopback": bench_throughput(size),
        "latency_accuracy": bench_accuracy(n // 10),
        "slow_reader": bench_slow_reader(2.0),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for section, values in results.items():
        print(section)
        for key, value in values.items():
            shown = f"{value:,.2f}" if isinstance(value, float) else str(value)
            print(f"  {key:<22} {shown:>14}")
    print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
