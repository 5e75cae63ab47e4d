"""Step ``tls``: what encryption the server offers, by database.

- PostgreSQL: the SSLRequest, then a TLS handshake.
- SQL Server: PRELOGIN (server version, encryption negotiation), then TLS inside TDS; TLS
  first, then PRELOGIN, with ``Encrypt=strict`` (TDS 8.0). See :mod:`._tls_sqlserver`.
- MySQL/MariaDB: the server's greeting (CLIENT_SSL), the SSLRequest, then a TLS handshake.
  See :mod:`._tls_mysql`.

The handshake runs twice when needed: once verifying against the system's trust store
(the verdict), once without verification to read a certificate that failed it.
"""

from __future__ import annotations

import socket
import ssl
import struct
from typing import Any

from ._context import Context, op_timeout
from ._events import Outcome, Status
from ._tls_common import describe_der, is_loopback, judge, unverified, verified

__all__ = ["check_tls", "describe_der"]

_SSL_REQUEST = struct.pack("!ii", 8, 80877103)
_PG_TRUST = ("the certificate does not verify against this machine's trust store: install the CA "
             "(sslrootcert=...) or give the server a certificate from a trusted CA")


def check_tls(ctx: Context, deadline: float) -> Outcome:
    addresses = ctx.addresses()
    if not addresses or not ctx.data("tcp", "min_s"):
        return Outcome(Status.SKIP, "no address accepted a TCP connection")
    if ctx.spec.dialect == "sqlserver":
        from ._tls_sqlserver import check_tls_sqlserver

        return check_tls_sqlserver(ctx, deadline)
    if ctx.spec.dialect == "mysql":
        from ._tls_mysql import check_tls_mysql

        return check_tls_mysql(ctx, deadline)
    return _check_postgresql(ctx, deadline, addresses[0])


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


def _check_postgresql(ctx: Context, deadline: float, address: str) -> Outcome:
    verify_error = None
    try:
        got = _upgrade(address, ctx, deadline, verified())
    except ssl.SSLCertVerificationError as exc:
        verify_error = exc.verify_message or str(exc)
        got = _upgrade(address, ctx, deadline, unverified())
    except TimeoutError:
        return _no_answer(ctx)
    except (OSError, ssl.SSLError) as exc:
        return Outcome(Status.FAIL, f"TLS with {address}:{ctx.port} failed: {exc}",
                       ("the TLS handshake failed: check the server's ssl settings and this client's "
                        "OpenSSL version",))
    if not got["offered"]:
        return _not_offered(ctx)
    return judge(ctx, got, verify_error, trust_advice=_PG_TRUST)


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
    if is_loopback(ctx.host):
        return Outcome(Status.OK, "the server does not offer TLS (loopback: nothing crosses a network)",
                       data=data)
    return Outcome(Status.WARN, "the server does not offer TLS: the login and the data cross the "
                   "network in clear", ("enable ssl on the server and connect with sslmode=verify-full",),
                   data)
