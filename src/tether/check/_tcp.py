"""Step ``tcp``: N connects to each resolved address, each with its own timeout."""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ._advice import tcp_advice
from ._context import Context, op_timeout
from ._events import Outcome, Status

__all__ = ["check_tcp", "connect_once", "summarize"]


def connect_once(address: str, port: int, *, timeout_s: float) -> float:
    """Open and close one TCP connection; its connect time in seconds. Raises OSError."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        began = time.monotonic()
        sock.connect((address, port))
        return time.monotonic() - began


def summarize(times_s: Sequence[float]) -> dict[str, float]:
    """min, avg and p95 (nearest rank) of connect times, in seconds."""
    ordered = sorted(times_s)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return {"min_s": ordered[0], "avg_s": sum(ordered) / len(ordered), "p95_s": p95}


def _error_text(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return exc.strerror or type(exc).__name__


@dataclass(frozen=True, slots=True)
class Probe:
    """The connects to one address: their times, and the errors of those that failed."""

    address: str
    times_s: tuple[float, ...]
    errors: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        stats = summarize(self.times_s) if self.times_s else {}
        return {"address": self.address, "ok": len(self.times_s), "failed": len(self.errors),
                "errors": sorted(set(self.errors)), "times_s": list(self.times_s), **stats}

    def line(self) -> str:
        text = f"{self.address}: {len(self.times_s)}/{len(self.times_s) + len(self.errors)} ok"
        if self.times_s:
            s = {k: v * 1000 for k, v in summarize(self.times_s).items()}
            text += f", min {s['min_s']:.1f} / avg {s['avg_s']:.1f} / p95 {s['p95_s']:.1f} ms"
        if self.errors:
            text += f" ({', '.join(sorted(set(self.errors)))})"
        return text


def _probe(ctx: Context, address: str, deadline: float) -> Probe:
    times: list[float] = []
    errors: list[str] = []
    for _ in range(ctx.options.attempts):
        if time.monotonic() >= deadline:
            errors.append("step budget exhausted")
            break
        try:
            times.append(connect_once(address, ctx.port, timeout_s=op_timeout(ctx, deadline)))
        except OSError as exc:
            errors.append(_error_text(exc))
    return Probe(address, tuple(times), tuple(errors))


def _advice(ctx: Context, errors: set[str]) -> tuple[str, ...]:
    advice = []
    problems = (["refused"] if any("refused" in e for e in errors) else []) + \
        (["timed out"] if "timed out" in errors else [])
    for problem in problems:
        text = tcp_advice(ctx.spec.dialect, problem, ctx.port)
        if text is not None:
            advice.append(text)
    if not advice and errors:
        advice.append("check the route to the server (traceroute, VPN, proxy)")
    return tuple(advice)


def check_tcp(ctx: Context, deadline: float) -> Outcome:
    addresses = ctx.addresses()
    if not addresses:
        return Outcome(Status.SKIP, "no address to connect to")
    results = [_probe(ctx, address, deadline) for address in addresses]
    times = [t for r in results for t in r.times_s]
    errors = {e for r in results for e in r.errors}
    data: dict[str, object] = {"port": ctx.port, "attempts": ctx.options.attempts,
                               "addresses": [r.to_dict() for r in results]}
    if times:
        data.update(summarize(times))
    detail = f"port {ctx.port}: " + "; ".join(r.line() for r in results)
    if not times:
        return Outcome(Status.FAIL, detail, _advice(ctx, errors), data)
    if errors:
        return Outcome(Status.WARN, detail, ("some connects failed: an unstable link or an overloaded "
                                             "server; run again with more --attempts",), data)
    return Outcome(Status.OK, detail, data=data)
