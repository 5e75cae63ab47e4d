"""Step ``tls`` for MySQL and MariaDB: the greeting's CLIENT_SSL, the SSLRequest, the handshake."""

from __future__ import annotations

import socket
import ssl
from typing import Any

from ._context import Context, op_timeout
from ._events import Outcome, Status
from ._mysql_wire import Greeting, MySQLWireError, parse_greeting, read_packet, ssl_request
from ._tls_common import is_loopback, judge, unverified, verified

__all__ = ["check_tls_mysql", "ssl_mode"]

_REQUIRED = ("REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")
_UNTRUSTED = ("the certificate does not verify against this machine's trust store: with ssl-mode=VERIFY_CA "
              "or VERIFY_IDENTITY the client refuses it; give the client the CA (ssl_ca=...) or the server a "
              "certificate from a trusted CA")


def ssl_mode(ctx: Context) -> str | None:
    """The connection string's ``ssl_mode`` (or ``ssl-mode``, ``sslmode``), upper case."""
    for name in ("ssl_mode", "ssl-mode", "sslmode"):
        value = ctx.spec.option(name)
        if value:
            return value.upper().replace("-", "_")
    return None


def _greet(address: str, ctx: Context, deadline: float) -> tuple[socket.socket, Greeting]:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(op_timeout(ctx, deadline))
        sock.connect((address, ctx.port))
        sock.settimeout(op_timeout(ctx, deadline))
        _, payload = read_packet(sock)
        return sock, parse_greeting(payload)
    except BaseException:
        sock.close()
        raise


def _upgrade(address: str, ctx: Context, deadline: float, context: ssl.SSLContext) -> dict[str, Any]:
    sock, greeting = _greet(address, ctx, deadline)
    with sock:
        got: dict[str, Any] = {"greeting": greeting}
        if greeting.error_code is not None or not greeting.offers_tls:
            return got
        sock.sendall(ssl_request(greeting.capabilities))
        sock.settimeout(op_timeout(ctx, deadline))
        with context.wrap_socket(sock, server_hostname=ctx.host) as tls:
            cipher = tls.cipher()
            got.update(protocol=tls.version(), cipher=cipher[0] if cipher else None,
                       der=tls.getpeercert(binary_form=True))
        return got


def check_tls_mysql(ctx: Context, deadline: float) -> Outcome:
    address = ctx.addresses()[0]
    verify_error = None
    try:
        try:
            got = _upgrade(address, ctx, deadline, verified())
        except ssl.SSLCertVerificationError as exc:
            verify_error = exc.verify_message or str(exc)
            got = _upgrade(address, ctx, deadline, unverified())
    except TimeoutError:
        return Outcome(Status.FAIL, f"the server accepted TCP but sent no greeting within "
                       f"{ctx.options.timeout_s:g} s",
                       ("something accepts connections on this port but does not speak first as MySQL does: "
                        "a blackholing firewall or load balancer, a hung server, or not a MySQL server",))
    except MySQLWireError as exc:
        return Outcome(Status.FAIL, f"not a MySQL greeting from {address}:{ctx.port}: {exc}",
                       ("check the port: another service answers on it",), {"error": str(exc)})
    except (OSError, ssl.SSLError) as exc:
        return Outcome(Status.FAIL, f"TLS with {address}:{ctx.port} failed: {exc}",
                       ("the TLS handshake failed: check the server's ssl settings (ssl_cert, ssl_key, "
                        "tls_version) and this client's OpenSSL version",), {"error": str(exc)})
    greeting: Greeting = got.pop("greeting")
    data = greeting.to_dict()
    mode = ssl_mode(ctx)
    data["ssl_mode"] = mode
    server = f"{'MariaDB' if greeting.mariadb else 'MySQL'} {greeting.version}"
    if greeting.error_code is not None:
        data.update(error_code=greeting.error_code, error=greeting.error)
        return Outcome(Status.FAIL, f"the server refused the connection at once: {greeting.error} "
                       f"[{greeting.error_code}]", (_refusal_advice(greeting.error_code),), data)
    if not greeting.offers_tls:
        return _not_offered(ctx, server, mode, data)
    data["offered"] = True
    return judge(ctx, got, verify_error, trust_advice=_UNTRUSTED, prefix=f"{server}; ", data=data)


def _refusal_advice(code: int) -> str:
    if code == 1040:
        return "too many connections: the server's max_connections is reached"
    if code in (1129, 1130):
        return ("the server does not accept this client's host: grant the user access from this address, "
                "or (1129) run FLUSH HOSTS / raise max_connect_errors")
    return "the server refused before the login: read its error above"


def _not_offered(ctx: Context, server: str, mode: str | None, data: dict[str, Any]) -> Outcome:
    data["offered"] = False
    detail = f"{server}; the server does not offer TLS (no CLIENT_SSL)"
    if mode in _REQUIRED:
        return Outcome(Status.FAIL, f"{detail} and ssl_mode={mode}",
                       ("configure ssl_cert and ssl_key on the server, or lower ssl_mode",), data)
    if is_loopback(ctx.host):
        return Outcome(Status.OK, detail + " (loopback: nothing crosses a network)", data=data)
    return Outcome(Status.WARN, detail + ": the login and the data cross the network in clear",
                   ("configure ssl_cert and ssl_key on the server and connect with "
                    "ssl_mode=VERIFY_IDENTITY",),
                   data)
