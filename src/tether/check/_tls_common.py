"""What the TLS checks of every database share: the certificate described, the verdict."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Sequence
from typing import Any

from ._context import Context
from ._events import Outcome, Status

__all__ = ["describe_der", "is_loopback", "judge", "unverified", "verified"]

_EXPIRY_WARN_DAYS = 14


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def verified() -> ssl.SSLContext:
    """The system's trust store, host name checked: what a careful driver does."""
    return ssl.create_default_context()


def unverified() -> ssl.SSLContext:
    """No verification: to read a certificate that failed it."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


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


def judge(ctx: Context, got: dict[str, Any], verify_error: str | None, *, trust_advice: str,
          prefix: str = "", advice: Sequence[str] = (), data: dict[str, Any] | None = None,
          untrusted_fails: bool = False) -> Outcome:
    """The verdict on a finished handshake: protocol, cipher, certificate, verification, expiry.

    ``got`` holds ``protocol``, ``cipher`` and ``der``; ``prefix`` starts the detail;
    ``advice`` comes first (warnings found before the handshake).
    """
    cert = describe_der(got.pop("der", None))
    data = {**(data or {}), **got, "verified": verify_error is None, "verify_error": verify_error,
            "certificate": cert}
    detail = f"{prefix}{got['protocol']}, {got['cipher']}"
    if cert.get("subject"):
        detail += f"; certificate {cert['subject']}, names {', '.join(cert['names']) or 'none'}, " \
                  f"expires {cert['not_after'][:10]}"
    found = list(advice)
    if verify_error is not None:
        detail += f"; not trusted: {verify_error}"
        found.append(trust_advice)
    days = cert.get("days_left")
    if isinstance(days, int) and days < _EXPIRY_WARN_DAYS:
        found.append(f"the server's certificate expires in {days} days: renew it")
    if got["protocol"] in ("TLSv1", "TLSv1.1"):
        found.append(f"{got['protocol']} is obsolete: allow TLS 1.2 or later on the server")
    status = Status.FAIL if untrusted_fails and verify_error is not None else Status.WARN
    return Outcome(status if found else Status.OK, detail, tuple(found), data)
