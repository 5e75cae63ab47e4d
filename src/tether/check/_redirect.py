"""Step ``redirect``: SQL Server's routing of a login, and Azure SQL's connection policy.

With the redirect policy, Azure SQL's gateway (port 1433) answers a login with an ENVCHANGE
token of type 20 (routing): the host and port (11000-11999) of the node that holds the
database, where the client reconnects and logs in again. With the proxy policy there is no
routing: every packet keeps going through the gateway. Availability-group read-only routing
uses the same token.

Drivers follow routing without saying so (python-tds does it inside ``connect``), so the
step logs in once itself (PRELOGIN, TLS, LOGIN7) and reads the response's tokens. Then,
with redirect, it checks the redirected host as steps 3 and 4 do: DNS, then TCP.

The password goes only where the driver would send it: over TLS whose certificate verifies
(or with TrustServerCertificate=yes, as the driver would), in clear only when the
connection string allows no encryption (``Encrypt=optional``) or on loopback. The own login
is skipped when the login step already failed on the credentials or the database: a second
failed login would only count against the account.
"""

from __future__ import annotations

import ssl
import time
from typing import Any

from ._advice import advise
from ._context import Context, op_timeout
from ._dns import check_dns
from ._events import Outcome, Status
from ._name import REDIRECT_PORTS, _address_kind
from ._tcp import check_tcp
from ._tds import LOGIN7, LoginReply, TdsError, build_login7, parse_login_reply
from ._tls_common import is_loopback, unverified, verified
from ._tls_sqlserver import StrictRefused, open_tds

__all__ = ["check_redirect", "follow_route", "raw_login"]

# Login-step errors that a second login would only repeat (credentials, database, firewall).
_NOT_AGAIN = frozenset({"18456", "18452", "18470", "18486", "40532", "40615", "4060", "911"})


class _Refused(Exception):
    """The own login was not attempted; the message says why."""


def raw_login(ctx: Context, address: str, deadline: float) -> tuple[LoginReply, dict[str, Any]]:
    """Log in once at ``address`` as the connection string says; the parsed response."""
    spec = ctx.spec
    strict = spec.encrypt == "strict"
    trust = bool(spec.trust_server_certificate) and not strict
    try:
        conn, facts = open_tds(ctx, address, deadline, unverified() if trust else verified(), strict=strict)
    except ssl.SSLCertVerificationError as exc:
        raise _Refused(f"the server's certificate does not verify ({exc.verify_message or exc}): not sending "
                       "the password to a server that cannot be authenticated (TrustServerCertificate=yes "
                       "to test anyway)") from exc
    with conn.sock:
        if facts["negotiated"] == "none" and spec.encrypt != "optional" and not is_loopback(ctx.host):
            raise _Refused("the server does not support encryption: not sending the password in clear "
                           "(Encrypt=optional to test anyway)")
        secret = spec.password.reveal() if spec.password is not None else ""
        record = build_login7(user=spec.user or "", password=secret, database=spec.database or "",
                              server_name=ctx.host, app_name=spec.application_name or "tether check")
        conn.send(LOGIN7, record)
        if facts["negotiated"] == "login only":
            conn.end_tls()
        conn.sock.settimeout(op_timeout(ctx, deadline))
        _, data = conn.receive()
    return parse_login_reply(data), facts


def follow_route(ctx: Context, host: str, port: int, deadline: float) -> dict[str, Outcome]:
    """Steps 3 and 4 (DNS, TCP) against the redirected ``host:port``."""
    sub = Context(ctx.spec, host, port, ctx.options)
    sub.results["name"] = Outcome(Status.OK, "", data={"is_address": _address_kind(host) is not None})
    dns = check_dns(sub, deadline)
    sub.results["dns"] = dns
    return {"dns": dns, "tcp": check_tcp(sub, deadline)}


def check_redirect(ctx: Context, deadline: float) -> Outcome:
    if ctx.spec.dialect != "sqlserver":
        return Outcome(Status.SKIP, "not SQL Server: no connection policy to test")
    addresses = ctx.addresses()
    if not addresses or not ctx.data("tcp", "min_s"):
        return Outcome(Status.SKIP, "no address accepted a TCP connection")
    auth = ctx.spec.option("authentication")
    if not ctx.spec.user or ctx.spec.option("integrated_security") in ("true", "sspi") or (
            auth and auth.lower() != "sqlpassword"):
        return Outcome(Status.SKIP, "not tested: the own login speaks SQL authentication only (user and "
                       "password), not Windows or Microsoft Entra authentication")
    login_code = ctx.data("login", "code")
    if login_code in _NOT_AGAIN:
        return Outcome(Status.SKIP, f"the login failed [{login_code}]: the routing shows only in a "
                       "successful login's response")
    azure = ctx.data("name", "azure")
    try:
        reply, _ = raw_login(ctx, addresses[0], deadline)
    except _Refused as exc:
        return Outcome(Status.SKIP, f"not tested: {exc}")
    except TimeoutError:
        return Outcome(Status.FAIL, f"no login response within {ctx.options.timeout_s:g} s",
                       ("the server accepted the login but did not answer it: a hung server or a "
                        "blackholing link",))
    except StrictRefused as exc:
        return Outcome(Status.SKIP, f"not tested: no TLS handshake at connect (Encrypt=strict): {exc}")
    except (OSError, ssl.SSLError, TdsError) as exc:
        return Outcome(Status.WARN, f"the login to read the routing failed: {exc}",
                       ("the checker's own TDS login failed where a driver may not: report a bug if the "
                        "login step passed",), {"error": str(exc)})
    data: dict[str, Any] = {"azure": azure, "logged_in": reply.logged_in, "server_program": reply.program,
                            "redirect_ports": list(REDIRECT_PORTS)}
    if reply.errors and reply.routing is None:
        return _login_refused(ctx, reply.errors[0], data)
    if reply.routing is None:
        data["policy"] = "proxy" if azure else "none"
        if azure:
            return Outcome(Status.OK, f"proxy policy: no routing in the login response; every packet goes "
                           f"through the {azure} gateway on port {ctx.port}", data=data)
        return Outcome(Status.OK, "no routing in the login response: the server answered the login itself",
                       data=data)
    return _redirected(ctx, reply.routing, data, azure, deadline)


def _login_refused(ctx: Context, first: dict[str, Any], data: dict[str, Any]) -> Outcome:
    """The own login was refused. Where the login step's driver gave no number to advise on
    (mssql-python drops it), this login's number does: its advice is given here."""
    data["error"] = {k: first[k] for k in ("number", "state", "class", "message")}
    detail = f"the login failed: {first['message']} [{first['number']}]"
    login = ctx.results.get("login")
    advice = advise("sqlserver", str(first["number"]))
    failed = login is not None and login.status is Status.FAIL
    unadvised = failed and login is not None and advise("sqlserver", login.data.get("code")) is None
    if unadvised and advice is not None:
        data["code"] = str(first["number"])
        return Outcome(Status.FAIL, f"{detail} (the number the login step's driver did not give)", (advice,),
                       data)
    return Outcome(Status.SKIP, f"{detail}: no routing to read", data=data)


def _redirected(ctx: Context, route: tuple[str, int], data: dict[str, Any], azure: str | None,
                deadline: float) -> Outcome:
    host, port = route
    began = time.monotonic()
    checks = follow_route(ctx, host, port, deadline)
    data.update(policy="redirect" if azure else "routing", routed_host=host, routed_port=port,
                follow_s=time.monotonic() - began,
                **{name: {"status": o.status.value, "detail": o.detail, "data": dict(o.data)}
                   for name, o in checks.items()})
    low, high = REDIRECT_PORTS
    what = "redirect policy" if azure else "the server routes the login"
    detail = f"{what}: to {host}:{port}; DNS: {checks['dns'].detail}; TCP: {checks['tcp'].detail}"
    advice: list[str] = []
    for outcome in checks.values():
        if outcome.status in (Status.WARN, Status.FAIL):
            advice.extend(outcome.advice)
    if azure and not low <= port <= high:
        detail += f" (port {port} is outside the usual {low}-{high})"
    if checks["tcp"].status is Status.FAIL:
        if azure:
            advice.insert(0, f"the login is redirected to {host}:{port}, which this client cannot reach: "
                             f"open outbound TCP {low}-{high} to Azure SQL (the region's addresses), or set "
                             "the server's connection policy to Proxy")
        else:
            advice.insert(0, f"the login is routed to {host}:{port}, which this client cannot reach: open "
                             "the route, or connect to the routed server directly")
    worst = max((o.status for o in checks.values()), key=lambda s: s.rank)
    status = worst if worst.rank > 0 else Status.OK
    return Outcome(status, detail, tuple(dict.fromkeys(advice)), data)
