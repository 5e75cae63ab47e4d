"""Step ``tls`` for SQL Server: PRELOGIN, the encryption negotiation, TLS inside TDS.

TDS 7.x: PRELOGIN in clear (the client's ENCRYPTION value is ON, or OFF with
``Encrypt=optional``), the server's answer (its version and ENCRYPTION value), then, unless
one side does not support encryption, the TLS handshake carried in PRELOGIN packets.
``Encrypt=strict`` (TDS 8.0): TLS first, ALPN ``tds/8.0``, the certificate always verified,
then PRELOGIN inside TLS.

The outcome of the negotiation (MS-TDS 2.2.6.5): ``none`` when the server answers NOT_SUP;
``login only`` when client and server both say OFF (the LOGIN7 packet is encrypted, then
TLS ends and everything else crosses in clear); ``full`` otherwise.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

from ._context import Context, op_timeout
from ._events import Outcome, Status
from ._tds import (
    ENCRYPT_NOT_SUP,
    ENCRYPT_OFF,
    ENCRYPT_ON,
    ENCRYPTION_NAMES,
    TdsConnection,
    TdsError,
    tls_facts,
)
from ._tls_common import is_loopback, judge, unverified, verified

__all__ = ["StrictRefused", "check_tls_sqlserver", "negotiated", "open_tds"]

_UNTRUSTED = ("the certificate does not verify against this machine's trust store: drivers with "
              "Encrypt=true and TrustServerCertificate=false refuse it (\"the certificate chain was issued "
              "by an authority that is not trusted\"); install the CA or give the server a certificate from "
              "a trusted CA whose names include the server name (TrustServerCertificate=yes only for tests)")
_TRUSTED_BLINDLY = ("TrustServerCertificate=yes accepts this untrusted certificate: anyone on the path could "
                    "impersonate the server; install the CA and drop TrustServerCertificate")
_STRICT_UNTRUSTED = ("Encrypt=strict always verifies the certificate (TrustServerCertificate is ignored): "
                     "install the CA, or give the server a certificate from a trusted CA whose names include "
                     "the server name (HostNameInCertificate= for an alias)")


class StrictRefused(Exception):
    """The TLS handshake at connect (TDS 8.0) failed for another reason than the certificate."""


def negotiated(client: int, server: int | None) -> str:
    """``full``, ``login only`` or ``none``: what the ENCRYPTION values mean for the session."""
    if server is None or server == ENCRYPT_NOT_SUP or client == ENCRYPT_NOT_SUP:
        return "none"
    if client == ENCRYPT_OFF and server == ENCRYPT_OFF:
        return "login only"
    return "full"


def client_encryption(ctx: Context) -> int:
    """What a driver sends: OFF for ``Encrypt=optional``, else ON (today's drivers' default)."""
    return ENCRYPT_OFF if ctx.spec.encrypt == "optional" else ENCRYPT_ON


def certificate_name(ctx: Context) -> str:
    """The name the certificate must carry: HostNameInCertificate, else the server name."""
    return ctx.spec.option("host_name_in_certificate") or ctx.host


def _connect(address: str, ctx: Context, deadline: float) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(op_timeout(ctx, deadline))
        sock.connect((address, ctx.port))
    except BaseException:
        sock.close()
        raise
    return sock


def open_tds(ctx: Context, address: str, deadline: float, context: ssl.SSLContext,
             *, strict: bool) -> tuple[TdsConnection, dict[str, Any]]:
    """Connect, PRELOGIN and (when negotiated) TLS: the connection and what was learnt.

    The caller closes ``conn.sock``. Raises OSError, ssl.SSLError, TdsError.
    """
    conn = TdsConnection(_connect(address, ctx, deadline))
    try:
        facts: dict[str, Any] = {"strict": strict}
        if strict:
            conn.sock.settimeout(op_timeout(ctx, deadline))
            try:
                facts.update(tls_facts(conn.tls_first(context, certificate_name(ctx))))
            except (ssl.SSLCertVerificationError, TimeoutError):
                raise
            except OSError as exc:  # ssl.SSLError included: no TLS server at the other end
                raise StrictRefused(str(exc) or type(exc).__name__) from exc
            conn.sock.settimeout(op_timeout(ctx, deadline))
            prelogin = conn.prelogin(ENCRYPT_NOT_SUP, instance=ctx.spec.instance or "")
            facts.update(prelogin.to_dict(), client_encryption="NOT_SUP (TLS first)", negotiated="full",
                         offered=True)
            return conn, facts
        client = client_encryption(ctx)
        conn.sock.settimeout(op_timeout(ctx, deadline))
        prelogin = conn.prelogin(client, instance=ctx.spec.instance or "")
        outcome = negotiated(client, prelogin.encryption)
        facts.update(prelogin.to_dict(), client_encryption=ENCRYPTION_NAMES[client], negotiated=outcome,
                     offered=outcome != "none", encryption_value=prelogin.encryption)
        if outcome != "none":
            conn.sock.settimeout(op_timeout(ctx, deadline))
            facts.update(tls_facts(conn.tls_in_tds(_tds7_context(context), certificate_name(ctx))))
        return conn, facts
    except BaseException:
        conn.sock.close()
        raise


def _tds7_context(context: ssl.SSLContext) -> ssl.SSLContext:
    # TDS 7.x runs TLS 1.2 at most: SQL Server offers TLS 1.3 only with TDS 8.0 (strict), and
    # a TLS 1.3 session ticket would arrive after the PRELOGIN-wrapped handshake.
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


def _probe(ctx: Context, address: str, deadline: float, context: ssl.SSLContext,
           strict: bool) -> dict[str, Any]:
    conn, facts = open_tds(ctx, address, deadline, context, strict=strict)
    conn.sock.close()
    return facts


def check_tls_sqlserver(ctx: Context, deadline: float) -> Outcome:
    address = ctx.addresses()[0]
    strict = ctx.spec.encrypt == "strict"
    verify_error = None
    try:
        try:
            facts = _probe(ctx, address, deadline, verified(), strict)
        except ssl.SSLCertVerificationError as exc:
            verify_error = exc.verify_message or str(exc)
            facts = _probe(ctx, address, deadline, unverified(), strict)
    except TimeoutError:
        return _no_answer(ctx, strict)
    except (ssl.SSLError, StrictRefused) as exc:
        return _tls_failed(ctx, address, exc, strict)
    except (OSError, TdsError) as exc:
        return Outcome(Status.FAIL, f"PRELOGIN with {address}:{ctx.port} failed: {exc}",
                       ("the server did not answer PRELOGIN as SQL Server does: check the port (another "
                        "service?) and any TLS-terminating proxy in between",), {"error": str(exc)})
    return _verdict(ctx, facts, verify_error)


def _server_text(facts: dict[str, Any]) -> str:
    version = facts.get("server_version") or "unknown version"
    product = facts.get("product")
    return f"{product} ({version})" if product else f"SQL Server {version}"


def _verdict(ctx: Context, facts: dict[str, Any], verify_error: str | None) -> Outcome:
    azure = ctx.data("name", "azure")
    server = _server_text(facts)
    if facts["strict"]:
        prefix = f"TDS 8.0 (strict): TLS first, then PRELOGIN: {server}; "
        if facts.get("alpn") not in (None, "tds/8.0"):
            prefix += f"ALPN {facts['alpn']}; "
        return judge(ctx, facts, verify_error, trust_advice=_STRICT_UNTRUSTED, prefix=prefix,
                     untrusted_fails=True)
    negotiation = (f"encryption: client {facts['client_encryption']}, server {facts['encryption']} -> "
                   f"{facts['negotiated']}")
    if facts["negotiated"] == "none":
        return _not_supported(ctx, facts, f"{server}; {negotiation}", azure)
    advice: list[str] = []
    if facts["negotiated"] == "login only" and not is_loopback(ctx.host):
        advice.append("only the login is encrypted: queries and results cross the network in clear; "
                      "connect with Encrypt=true (or force encryption on the server)")
    trust = _TRUSTED_BLINDLY if ctx.spec.trust_server_certificate else _UNTRUSTED
    return judge(ctx, facts, verify_error, trust_advice=trust, prefix=f"{server}; {negotiation}; ",
                 advice=advice)


def _not_supported(ctx: Context, facts: dict[str, Any], detail: str, azure: str | None) -> Outcome:
    detail += ": the server does not support encryption"
    facts = {k: v for k, v in facts.items() if k != "der"}
    if ctx.spec.encrypt == "mandatory":
        return Outcome(Status.FAIL, detail + " and Encrypt=true",
                       ("drivers with Encrypt=true refuse this server: install a certificate on the server "
                        "(SQL Server Configuration Manager, Protocols, Certificate), or set "
                        "Encrypt=optional",),
                       facts)
    if azure:
        return Outcome(Status.WARN, detail + f" (unexpected for {azure}, which always supports it)",
                       ("Azure SQL always offers encryption: something between this client and Azure answers "
                        "for it (a proxy, a port forward, or a name pointing to another server); check the "
                        "name and the route",), facts)
    if is_loopback(ctx.host):
        return Outcome(Status.OK, detail + " (loopback: nothing crosses a network)", data=facts)
    advice = ["the login and the data cross the network in clear: install a certificate on the server and "
              "connect with Encrypt=true"]
    if ctx.spec.encrypt is None:
        advice.append("drivers that encrypt by default (ODBC Driver 18, mssql-python) refuse this server "
                      "unless Encrypt=optional")
    return Outcome(Status.WARN, detail, tuple(advice), facts)


def _no_answer(ctx: Context, strict: bool) -> Outcome:
    what = "the TLS handshake (Encrypt=strict)" if strict else "PRELOGIN"
    return Outcome(Status.FAIL, f"the server accepted TCP but did not answer {what} within "
                   f"{ctx.options.timeout_s:g} s",
                   ("something accepts connections on this port but does not answer: a blackholing "
                    "firewall or load balancer, a hung server, or not a SQL Server",))


def _tls_failed(ctx: Context, address: str, exc: Exception, strict: bool) -> Outcome:
    if strict:
        advice = ("the server did not complete a TLS handshake at connect: TDS 8.0 (Encrypt=strict) needs "
                  "SQL Server 2022 or later, or Azure SQL; use Encrypt=true for older servers")
    else:
        advice = ("the TLS handshake inside TDS failed: the server's certificate or TLS settings, or this "
                  "client's OpenSSL (TDS 7.x uses TLS 1.2; older servers may need TLS 1.0/1.1 updates)")
    return Outcome(Status.FAIL, f"TLS with {address}:{ctx.port} failed: {exc}", (advice,),
                   {"error": str(exc), "strict": strict})
