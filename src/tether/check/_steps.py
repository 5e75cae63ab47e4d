"""The steps, in the order they run, each with its time budget."""

from __future__ import annotations

import math

from ._context import Context, Step
from ._dns import check_dns
from ._latency import check_latency
from ._local import check_local, read_resolvers
from ._login import check_login
from ._name import check_name
from ._redirect import check_redirect
from ._tcp import check_tcp
from ._tls import check_tls

__all__ = ["STEPS"]


def _dns_budget(ctx: Context) -> float:
    resolvers = ctx.options.resolvers
    count = len(resolvers) if resolvers is not None else len(read_resolvers(ctx.options.resolv_conf))
    return ctx.options.timeout_s * (1 + 2 * count)  # the system resolver, then A and AAAA each


def _tcp_budget(ctx: Context) -> float:
    return ctx.options.timeout_s * ctx.options.attempts * max(1, len(ctx.addresses()))


def _redirect_budget(ctx: Context) -> float:
    # The own login (connect, PRELOGIN, TLS, LOGIN7), then DNS and TCP to a redirected host.
    return 4 * ctx.options.timeout_s + _dns_budget(ctx) + ctx.options.timeout_s * ctx.options.attempts * 2


def _tls_budget(ctx: Context) -> float:
    # PostgreSQL: SSLRequest and handshake. SQL Server and MySQL: a greeting or PRELOGIN first.
    return ctx.options.timeout_s * (2 if ctx.spec.dialect == "postgresql" else 3)


def _login_budget(ctx: Context) -> float:
    return max(2.0, math.ceil(ctx.options.timeout_s))  # libpq's connect_timeout is at least 2 s


def _target(ctx: Context) -> str:
    return f"[{ctx.host}]:{ctx.port}" if ":" in ctx.host else f"{ctx.host}:{ctx.port}"


def _connecting(ctx: Context) -> str:
    count = max(1, len(ctx.addresses()))
    tries = f"{ctx.options.attempts} connect{'s' if ctx.options.attempts != 1 else ''}"
    where = f" to each of {count} addresses" if count > 1 else ""
    return f"connecting to {_target(ctx)} ({tries}{where}, {ctx.options.timeout_s:g} s timeout each)"


STEPS = (
    Step("name", "server name", check_name, lambda ctx: 1.0,
         "reading the server name should not hang: report a bug",
         lambda ctx: "reading the server name"),
    Step("local", "local network", check_local, lambda ctx: 2.0,
         "listing this machine's interfaces hung: check its network configuration",
         lambda ctx: "listing this machine's interfaces and resolvers"),
    Step("dns", "DNS", check_dns, _dns_budget,
         "name resolution hung: check /etc/resolv.conf, /etc/nsswitch.conf and the resolvers",
         lambda ctx: f"resolving {ctx.host}"),
    Step("tcp", "TCP", check_tcp, _tcp_budget,
         "TCP connects hung: a firewall drops packets on the way", _connecting),
    Step("tls", "TLS", check_tls, _tls_budget,
         "the TLS upgrade hung: something accepts connections but does not answer",
         lambda ctx: f"trying TLS with {_target(ctx)}"),
    Step("login", "login", check_login, _login_budget,
         "the login hung: the server accepts connections but does not answer (blackholed link, hung "
         "server, or not a database server)",
         lambda ctx: f"logging in to {_target(ctx)}"),
    Step("redirect", "routing and Azure connection policy", check_redirect, _redirect_budget,
         "the login to read the routing hung: the server accepts connections but does not answer",
         lambda ctx: "reading the server's routing (SQL Server only)"),
    Step("latency", "latency", check_latency, lambda ctx: 1.0,
         "reading the keepalive settings hung: report a bug",
         lambda ctx: "reading round-trip times and keepalive settings"),
)
