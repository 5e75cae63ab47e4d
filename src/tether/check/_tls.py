"""Step ``tls``: PostgreSQL's SSLRequest, then a TLS handshake; the certificate described.

The handshake runs twice when needed: once verifying against the system's trust store
(the verdict), once without verification to read a certificate that failed it.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import struct
from typing import Any

from ._context import Context, op_timeout
from ._events import Outcome, Status

__all__ = ["check_tls", "describe_der"]

_SSL_REQUEST = struct.pack("!ii", 8, 80877103)
_EXPIRY_WARN_DAYS = 14


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _upgrade(address: str, ctx: Context, deadline: float, context: ssl.SSLContext) -> dict[str, Any]:
    """SSLRequest and handshake on a new connection; what was negotiated."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as raw:
        raw.settimeout(op_timeout(ctx, deadline))
        raw.connect((address, ctx.port))
        raw.sendall(_SSL_REQUEST)
        answer = raw.recv(1)
        if answer != b"S":
            return {"offered": False, "answer": answer.decode("latin-1")}
        raw.settimeout(op_timeout(ctx, deadline))
        with context.wrap_socket(raw, server_hostname=ctx.host) as tls:
            cipher = tls.cipher()
            return {"offered": True, "protocol": tls.version(), "cipher": cipher[0] if cipher else None,
                    "der": tls.getpeercert(binary_form=True)}


def describe_der(der: bytes | None) -> dict[str, Any]:
    """Subject, issuer, names and expiry of a DER certificate (needs ``cryptography``)."""
    if not der:
        return {}
    try:
        from cryptography import x509
    except ImportError:
        return {"note": "install cryptography to describe the certificate"}
    cert = x509.load_der_x509_certificate(der)
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = [str(n.value) for n in ext.value]
    except x509.ExtensionNotFound:
        names = []
    expires = cert.not_valid_after_utc
    days = (expires - datetime.datetime.now(datetime.timezone.utc)).days
    return {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "names": names, "not_after": expires.isoformat(), "days_left": days}


def check_tls(ctx: Context, deadline: float) -> Outcome:
    if ctx.spec.dialect != "postgresql":
        return Outcome(Status.SKIP, f"not implemented for {ctx.spec.dialect} yet "
                       "(SQL Server PRELOGIN/TDS, MySQL TLS upgrade)")
    addresses = ctx.addresses()
    if not addresses or not ctx.data("tcp", "min_s"):
        return Outcome(Status.SKIP, "no address accepted a TCP connection")
    address = addresses[0]
    verify_error = None
    try:
        got = _upgrade(address, ctx, deadline, ssl.create_default_context())
    except ssl.SSLCertVerificationError as exc:
        verify_error = exc.verify_message or str(exc)
        got = _upgrade(address, ctx, deadline, _unverified())
    except TimeoutError:
        return _no_answer(ctx)
    except (OSError, ssl.SSLError) as exc:
        return Outcome(Status.FAIL, f"TLS with {address}:{ctx.port} failed: {exc}",
                       ("the TLS handshake failed: check the server's ssl settings and this client's "
                        "OpenSSL version",))
    if not got["offered"]:
        return _not_offered(ctx)
    return _judge(ctx, got, verify_error)


def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _no_answer(ctx: Context) -> Outcome:
    return Outcome(Status.FAIL, f"the server accepted TCP but did not answer the SSLRequest within "
                   f"{ctx.options.timeout_s:g} s",
                   ("something accepts connections on this port but does not answer: a blackholing "
                    "firewall or load balancer, a hung server, or not a PostgreSQL server",))


def _not_offered(ctx: Context) -> Outcome:
    sslmode = ctx.spec.option("sslmode") or "prefer"
    data = {"offered": False, "sslmode": sslmode}
    if sslmode in ("require", "verify-ca", "verify-full"):
        return Outcome(Status.FAIL, f"the server does not offer TLS and sslmode={sslmode}",
                       ("enable ssl on the server, or lower sslmode",), data)
    if _is_loopback(ctx.host):
        return Outcome(Status.OK, "the server does not offer TLS (loopback: nothing crosses a network)",
                       data=data)
    return Outcome(Status.WARN, "the server does not offer TLS: the login and the data cross the "
                   "network in clear", ("enable ssl on the server and connect with sslmode=verify-full",),
                   data)


def _judge(ctx: Context, got: dict[str, Any], verify_error: str | None) -> Outcome:
    cert = describe_der(got.pop("der", None))
    data = {**got, "verified": verify_error is None, "verify_error": verify_error, "certificate": cert}
    detail = f"{got['protocol']}, {got['cipher']}"
    if cert.get("subject"):
        detail += f"; certificate {cert['subject']}, names {', '.join(cert['names']) or 'none'}, " \
                  f"expires {cert['not_after'][:10]}"
    advice: list[str] = []
    if verify_error is not None:
        detail += f"; not trusted: {verify_error}"
        advice.append("the certificate does not verify against this machine's trust store: install the CA "
                      "(sslrootcert=...) or give the server a certificate from a trusted CA")
    days = cert.get("days_left")
    if isinstance(days, int) and days < _EXPIRY_WARN_DAYS:
        advice.append(f"the server's certificate expires in {days} days: renew it")
    if got["protocol"] in ("TLSv1", "TLSv1.1"):
        advice.append(f"{got['protocol']} is obsolete: allow TLS 1.2 or later on the server")
    return Outcome(Status.WARN if advice else Status.OK, detail, tuple(advice), data)
