"""Step ``dns``: the system resolver, each configured resolver asked directly, the hosts file.

A hosts-file entry for the name and resolvers that disagree are warnings: both are common
causes of "it works on my machine". The addresses found feed the TCP step.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence

from ._context import Context, op_timeout
from ._events import Outcome, Status
from ._local import read_resolvers
from ._name import azure_kind

__all__ = ["check_dns", "hosts_entries", "query_resolver"]

log = logging.getLogger(__name__)

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def hosts_entries(path: str, host: str) -> list[str]:
    """The addresses a hosts file gives ``host``; [] if none or unreadable."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            lines = file.read().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and host in (w.lower() for w in words[1:]):
            found.append(words[0])
    return found


def system_addresses(host: str, port: int) -> list[str]:
    """What ``getaddrinfo`` returns, in its order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def query_resolver(host: str, resolver: tuple[str, int], *, timeout_s: float) -> tuple[list[str], list[str]]:
    """Ask one resolver for A and AAAA records over UDP: ``(addresses, cname chain)``."""
    import dns.message
    import dns.query
    import dns.rdatatype

    addresses: list[str] = []
    cnames: list[str] = []
    for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        query = dns.message.make_query(host, rdtype)
        reply = dns.query.udp(query, resolver[0], port=resolver[1], timeout=timeout_s)
        for rrset in reply.answer:
            for rdata in rrset:
                if rrset.rdtype == dns.rdatatype.CNAME:
                    cnames.append(str(rdata.target).rstrip(".").lower())
                elif rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                    addresses.append(str(rdata.address))
    return list(dict.fromkeys(addresses)), list(dict.fromkeys(cnames))


def _ask_each(ctx: Context, deadline: float, resolvers: Sequence[tuple[str, int]]) -> dict[str, object]:
    answers: dict[str, object] = {}
    for resolver in resolvers:
        key = f"{resolver[0]}:{resolver[1]}"
        try:
            found, cnames = query_resolver(ctx.host, resolver, timeout_s=op_timeout(ctx, deadline))
        except ImportError:
            answers[key] = {"error": "dnspython is not installed: pip install 'tether[check]'"}
        except Exception as exc:  # dnspython raises many kinds: timeouts, bad replies, OSError
            log.debug("resolver %s for %s: %r", key, ctx.host, exc)
            answers[key] = {"error": f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__}
        else:
            answers[key] = {"addresses": found, "cnames": cnames}
    return answers


def check_dns(ctx: Context, deadline: float) -> Outcome:
    if ctx.data("name", "is_address"):
        return Outcome(Status.SKIP, f"{ctx.host} is an address: nothing to resolve")
    resolvers = ctx.options.resolvers
    if resolvers is None:
        resolvers = tuple(read_resolvers(ctx.options.resolv_conf))
    try:
        system = system_addresses(ctx.host, ctx.port)
        system_error = None
    except OSError as exc:
        system, system_error = [], str(exc)
    hosts = hosts_entries(ctx.options.hosts_file, ctx.host)
    answers = _ask_each(ctx, deadline, resolvers)
    return _judge(ctx, system, system_error, hosts, answers)


def _judge(
    ctx: Context, system: list[str], system_error: str | None, hosts: list[str], answers: dict[str, object]
) -> Outcome:
    problems: list[str] = []
    advice: list[str] = []
    direct = {key: a for key, a in answers.items() if isinstance(a, dict) and "addresses" in a}
    if hosts and ctx.host not in _LOOPBACK_NAMES:
        problems.append(f"the hosts file {ctx.options.hosts_file} maps {ctx.host} to {', '.join(hosts)}")
        advice.append(f"remove {ctx.host} from {ctx.options.hosts_file} unless the override is intended")
    for key, answer in direct.items():
        found = answer["addresses"]
        if system and found and set(found) != set(system):
            problems.append(f"resolver {key} answers {', '.join(found)}, the system {', '.join(system)}")
            advice.append("resolvers disagree: check split-horizon DNS, private endpoints and stale records")
    failed = [f"{key}: {a['error']}" for key, a in answers.items() if isinstance(a, dict) and "error" in a]
    addresses = system or list(dict.fromkeys(a for x in direct.values() for a in x["addresses"]))
    cnames = sorted({c for x in direct.values() for c in x["cnames"]})
    data = {"system": system, "system_error": system_error, "hosts_file": hosts,
            "resolvers": answers, "addresses": addresses, "cnames": cnames}
    hidden = next((kind for c in cnames if (kind := azure_kind(c))), None)
    hidden_note = f"; a custom name for {hidden} ({', '.join(cnames)})"
    note = hidden_note if hidden and not azure_kind(ctx.host) else ""
    if not addresses:
        advice.append(f"{ctx.host} does not resolve: check the spelling, and the DNS of this network")
        why = system_error or "no addresses"
        detail = f"{ctx.host}: {why}; {'; '.join(failed)}".rstrip("; ")
        return Outcome(Status.FAIL, detail, tuple(advice), data)
    if not system:
        problems.append(f"the system resolver failed ({system_error}); using the direct answers")
    if failed:
        problems.append("no answer from " + "; ".join(failed))
        advice.append("a configured resolver does not answer: check /etc/resolv.conf and the firewall "
                      "(UDP 53)")
    detail = f"{ctx.host} -> {', '.join(addresses)}{note}"
    if problems:
        return Outcome(Status.WARN, detail + "; " + "; ".join(problems), tuple(dict.fromkeys(advice)), data)
    return Outcome(Status.OK, detail, data=data)
