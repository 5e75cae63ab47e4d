"""Step ``latency``: what the round-trip time means for a login, and this machine's keepalive."""

from __future__ import annotations

from pathlib import Path

from ._context import Context
from ._events import Outcome, Status

__all__ = ["check_latency", "keepalive_settings", "login_round_trips"]

_KEEPALIVE = Path("/proc/sys/net/ipv4")
_SLOW_SETUP_S = 0.5
_TETHER_KEEPALIVE = "tether sets 30 s idle / 1 s interval on the sockets it can reach"


def login_round_trips(dialect: str, *, tls: bool, password: bool) -> int:
    """Round trips from SYN to a usable session, estimated per database."""
    if dialect == "sqlserver":
        return 16  # TCP, PRELOGIN, TLS inside TDS, LOGIN7, routing and feature negotiation
    if dialect == "mysql":
        return 4 + (2 if tls else 0)  # TCP, greeting, auth, OK; TLS upgrade
    # PostgreSQL: TCP, startup, auth ok + parameters; SCRAM adds 2; SSLRequest + TLS 1.3 add 2.
    return 3 + (2 if password else 0) + (2 if tls else 0)


def keepalive_settings(root: Path = _KEEPALIVE) -> dict[str, int]:
    """``tcp_keepalive_time``/``intvl``/``probes`` in effect (Linux); {} elsewhere."""
    found = {}
    for name in ("time", "intvl", "probes"):
        try:
            found[name] = int((root / f"tcp_keepalive_{name}").read_text().strip())
        except (OSError, ValueError):
            continue
    return found


def check_latency(ctx: Context, deadline: float) -> Outcome:
    keepalive = keepalive_settings()
    data: dict[str, object] = {"keepalive": keepalive}
    ka = _keepalive_text(keepalive)
    rtt = ctx.data("tcp", "min_s")
    if rtt is None:
        return Outcome(Status.SKIP, f"no round-trip time measured; {ka}", data=data)
    tls = bool(ctx.data("tls", "offered", False))
    trips = login_round_trips(ctx.spec.dialect, tls=tls, password=ctx.spec.password is not None)
    setup = rtt * trips
    data.update(rtt_s=rtt, round_trips=trips, setup_s=setup, login_s=ctx.data("login", "login_s"))
    detail = (f"RTT {rtt * 1000:.1f} ms x {trips} round trips = about {setup * 1000:.0f} ms to set up "
              f"a connection; {ka}")
    if setup > _SLOW_SETUP_S:
        advice = (f"each new connection costs about {setup:.1f} s here: keep connections in a pool "
                  "(tether.Pool) rather than opening one per request",)
        return Outcome(Status.WARN, detail, advice, data)
    return Outcome(Status.OK, detail, data=data)


def _keepalive_text(keepalive: dict[str, int]) -> str:
    if len(keepalive) < 3:
        return f"kernel keepalive defaults unknown; {_TETHER_KEEPALIVE}"
    dead_s = keepalive["time"] + keepalive["intvl"] * keepalive["probes"]
    return (f"kernel keepalive {keepalive['time']} s idle, {keepalive['intvl']} s x {keepalive['probes']} "
            f"probes (a dead peer found after {dead_s} s); {_TETHER_KEEPALIVE}")
