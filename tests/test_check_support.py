"""Support for the checker tests (no tests here): a scram server, a TLS server, a loopback DNS.

- ``scram_pg`` (module): an EmbeddedPostgres with password :data:`PASSWORD`.
- ``tls_server`` (module): a stand-in answering PostgreSQL's SSLRequest with TLS and a
  self-signed certificate (pgserver's PostgreSQL is built without SSL).
- ``dns_server``: a UDP DNS responder on 127.0.0.1; ``dns_server.answers[name] = [addresses]``.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.testing import EmbeddedPostgres, postgres_bin_dir

PASSWORD = "Pa55-w0rd-never-shown"
SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def _need_pg() -> None:
    try:
        postgres_bin_dir()
    except FileNotFoundError as exc:
        pytest.skip(f"no embedded PostgreSQL: {exc}")
    pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def scram_pg() -> Iterator[EmbeddedPostgres]:
    _need_pg()
    with EmbeddedPostgres(password=PASSWORD) as server:
        yield server


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tether-check-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class TlsPostgresStandIn:
    """Answers PostgreSQL's SSLRequest with ``S`` and completes a TLS handshake, then hangs up.

    The embedded PostgreSQL (pgserver's build) has no SSL support, so the TLS step is tested
    against this stand-in, with a certificate the test makes.
    """

    def __init__(self, cert: tuple[Path, Path]) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(*cert)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.handshakes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-tls-pg", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(2.0)
        try:
            if conn.recv(8) != SSL_REQUEST:
                return
            conn.sendall(b"S")
            with self._context.wrap_socket(conn, server_side=True) as tls:
                self.handshakes += 1
                tls.recv(1024)  # the startup message, or EOF from the checker
        except (OSError, ssl.SSLError):
            return  # the client refused the certificate, or went away

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsPostgresStandIn]:
    pytest.importorskip("cryptography")
    server = TlsPostgresStandIn(make_certificate(tmp_path_factory.mktemp("cert")))
    yield server
    server.close()


class DnsServer:
    """Answers A queries from ``answers`` (name -> IPv4 addresses); AAAA with no records."""

    def __init__(self) -> None:
        self.answers: dict[str, list[str]] = {}
        self.queries: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.address: tuple[str, int] = self._sock.getsockname()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-dns", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import dns.message
        import dns.rdatatype
        import dns.rrset

        while not self._stop.is_set():
            try:
                wire, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(wire)
            reply = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text().rstrip(".")
            self.queries.append(name)
            found = self.answers.get(name, [])
            if question.rdtype == dns.rdatatype.A and found:
                reply.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", "A", found))
            self._sock.sendto(reply.to_wire(), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    pytest.importorskip("dns")
    server = DnsServer()
    yield server
    server.close()
