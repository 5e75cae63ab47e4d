"""tether check against SQL Server stand-ins: PRELOGIN, TLS inside TDS, TDS 8.0, logins, routing.

Most tests run against the TDS test server (``tests/tdsserver``): logins through python-tds,
TLS inside TDS, rejected logins with Azure's error numbers, routing. :class:`MiniTds` is a
smaller TDS peer written for these tests, for what that server does not do (TDS 8.0 strict,
ENCRYPT_REQ): it answers PRELOGIN with the
ENCRYPTION value it is given, runs the server side of the TLS handshake inside PRELOGIN
packets (or TLS first, for TDS 8.0), reads LOGIN7 and answers with LOGINACK, an ERROR, or an
ENVCHANGE routing token. It checks the user name and password the client sent, so a wrong
obfuscation or a misplaced field fails the tests. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import socket
import ssl
import struct
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fix_system import need_localhost_ipv4_only
from tdsserver import TdsServer
from test_check_support import make_certificate
from tether.check import Report, Status, run_check
from tether.check._cli import EXIT_OK, EXIT_PROBLEMS, main
from tether.check._context import Context, Options
from tether.check._events import Outcome
from tether.check._redirect import check_redirect
from tether.check._tds import (
    ENCRYPT_NOT_SUP,
    ENCRYPT_OFF,
    ENCRYPT_ON,
    ENCRYPT_REQ,
    build_login7,
    build_prelogin,
    parse_login_reply,
    parse_prelogin,
    product_name,
)
from tether.check._tls_sqlserver import _verdict, negotiated
from tether.dsn import parse
from tether.testing import free_port

pytestmark = pytest.mark.timeout(60)

PASSWORD = "Sq1-Pa55-w0rd-never-shown"
FAST = {"attempts": 2, "timeout_s": 2.0, "resolvers": []}
STEPS = ["name", "local", "dns", "tcp", "tls", "login", "redirect", "latency"]
_HEADER = struct.Struct(">BBHHBB")


# -- the stand-in ----------------------------------------------------------------------------


def _packet(ptype: int, payload: bytes) -> bytes:
    return _HEADER.pack(ptype, 0x01, _HEADER.size + len(payload), 0, 1, 0) + payload


def _us(text: str) -> bytes:
    return struct.pack("<H", len(text)) + text.encode("utf-16-le")


def _b(text: str) -> bytes:
    return bytes([len(text)]) + text.encode("utf-16-le")


def _token(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + struct.pack("<H", len(body)) + body


def loginack() -> bytes:
    program = _b("Microsoft SQL Server") + bytes([16, 0, 4, 0])
    return _token(0xAD, b"\x01" + bytes.fromhex("74000004") + program)


def routing(host: str, port: int) -> bytes:
    value = b"\x00" + struct.pack("<H", port) + _us(host)
    return _token(0xE3, b"\x14" + struct.pack("<H", len(value)) + value + b"\x00\x00")


def error(number: int, message: str, state: int = 1, severity: int = 14) -> bytes:
    body = struct.pack("<iBB", number, state, severity) + _us(message) + _b("mini") + _b("") + b"\x00" * 4
    return _token(0xAA, body)


def done(failed: bool = False) -> bytes:
    return b"\xfd" + struct.pack("<HHQ", 0x02 if failed else 0, 0, 0)


def _deobfuscate(data: bytes) -> str:
    return bytes((((b ^ 0xA5) << 4) & 0xF0) | ((b ^ 0xA5) >> 4) for b in data).decode("utf-16-le")


def read_login7(record: bytes) -> dict[str, str]:
    """User, password, database and server name from a LOGIN7 record."""
    def field(n: int) -> bytes:
        offset, count = struct.unpack_from("<HH", record, 36 + 4 * n)
        return record[offset:offset + 2 * count]

    return {"user": field(1).decode("utf-16-le"), "password": _deobfuscate(field(2)),
            "server": field(4).decode("utf-16-le"), "database": field(8).decode("utf-16-le")}


class _Io:
    """Packets over a socket or an SSLObject (server side)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.tls: tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO] | None = None

    def recv(self, size: int) -> bytes:
        if self.tls is None:
            return self.sock.recv(size)
        tls, incoming, _ = self.tls
        while True:
            try:
                return tls.read(size)
            except ssl.SSLWantReadError:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return b""
                incoming.write(chunk)

    def sendall(self, data: bytes) -> None:
        if self.tls is None:
            self.sock.sendall(data)
            return
        tls, _, outgoing = self.tls
        tls.write(data)
        self.sock.sendall(outgoing.read())

    def message(self) -> tuple[int, bytes]:
        payload = bytearray()
        while True:
            head = self._exactly(8)
            ptype, status, length = head[0], head[1], struct.unpack(">H", head[2:4])[0]
            payload += self._exactly(length - 8)
            if status & 0x01:
                return ptype, bytes(payload)

    def _exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.recv(size - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data


class MiniTds:
    """A TDS peer on 127.0.0.1 for one behaviour at a time (set the attributes, then connect)."""

    def __init__(self, cert: tuple[Path, Path] | None = None) -> None:
        self.encryption = ENCRYPT_NOT_SUP
        self.strict = False
        self.users = {"sa": PASSWORD}
        self.route: tuple[str, int] | None = None
        self.version = (16, 0, 1000)
        self.logins: list[dict[str, str]] = []
        self.handshakes = 0
        self.alpn: list[str | None] = []
        self._context: ssl.SSLContext | None = None
        if cert is not None:
            self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._context.load_cert_chain(*cert)
            self._context.set_alpn_protocols(["tds/8.0"])
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-mini-tds", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        conn.settimeout(3.0)
        try:
            with conn:
                self._answer(conn)
        except (OSError, EOFError, ssl.SSLError):
            return

    def _answer(self, conn: socket.socket) -> None:
        if not self.strict:
            self._exchange(_Io(conn))
            return
        assert self._context is not None
        with self._context.wrap_socket(conn, server_side=True) as tls_sock:
            self.handshakes += 1
            self.alpn.append(tls_sock.selected_alpn_protocol())
            self._exchange(_Io(tls_sock))

    def _exchange(self, io_: _Io) -> None:
        ptype, payload = io_.message()
        if ptype != 0x12:
            return
        client = parse_prelogin_client(payload)
        io_.sendall(_packet(0x04, self._prelogin_answer()))
        outcome = negotiated(client, self.encryption) if not self.strict else "strict"
        if outcome in ("full", "login only"):
            self._handshake_in_tds(io_)
        ptype, record = io_.message()
        if ptype != 0x10:
            return
        if outcome == "login only":
            io_.tls = None
        login = read_login7(record)
        self.logins.append(login)
        io_.sendall(_packet(0x04, self._login_answer(login)))

    def _prelogin_answer(self) -> bytes:
        major, minor, build = self.version
        body = build_prelogin(self.encryption, version=(major, minor, build))
        return body

    def _handshake_in_tds(self, io_: _Io) -> None:
        assert self._context is not None
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self._context.wrap_bio(incoming, outgoing, server_side=True)
        while True:
            ptype, data = io_.message()
            assert ptype == 0x12
            incoming.write(data)
            try:
                tls.do_handshake()
                finished = True
            except ssl.SSLWantReadError:
                finished = False
            records = outgoing.read()
            if records:
                io_.sendall(_packet(0x12, records))
            if finished:
                break
        self.handshakes += 1
        io_.tls = (tls, incoming, outgoing)

    def _login_answer(self, login: dict[str, str]) -> bytes:
        if self.users.get(login["user"]) != login["password"]:
            return error(18456, f"Login failed for user '{login['user']}'.", state=8) + done(failed=True)
        if self.route is not None:
            return loginack() + routing(*self.route) + done()
        return loginack() + done()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()


def parse_prelogin_client(payload: bytes) -> int:
    pos = 0
    while payload[pos] != 0xFF:
        token, offset, _ = struct.unpack_from(">BHH", payload, pos)
        if token == 0x01:
            return payload[offset]
        pos += 5
    raise AssertionError("no ENCRYPTION option")


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    pytest.importorskip("cryptography")
    return make_certificate(tmp_path_factory.mktemp("tds-cert"))


@pytest.fixture
def mini(cert: tuple[Path, Path]) -> Iterator[MiniTds]:
    server = MiniTds(cert)
    yield server
    server.close()


def _url(port: int, encrypt: str | None = None, *, trust: bool = False, password: str = PASSWORD) -> str:
    """A URL pinning python-tds (the login step's driver) with these encryption settings."""
    query = "&".join([f"encrypt={encrypt}"] * bool(encrypt) + ["trust_server_certificate=true"] * trust)
    return f"mssql+pytds://sa:{password}@127.0.0.1:{port}/shop" + (f"?{query}" if query else "")


def _texts(report: Report) -> str:
    return json.dumps(report.to_dict()) + repr(report)


# -- against the TDS test server (tests/tdsserver) -------------------------------------------


@pytest.fixture(scope="module")
def tds() -> Iterator[TdsServer]:
    """No TLS: PRELOGIN answers NOT_SUP."""
    with TdsServer(users={"sa": PASSWORD}, databases=("master", "shop")) as server:
        yield server


@pytest.fixture(scope="module")
def tds_tls(cert: tuple[Path, Path]) -> Iterator[TdsServer]:
    """TLS with the test's self-signed certificate: ON for a client's ON, OFF for OFF."""
    tls = (str(cert[0]), str(cert[1]))
    with TdsServer(users={"sa": PASSWORD}, databases=("master", "shop"), tls=tls) as server:
        yield server


@pytest.fixture
def fresh(tds: TdsServer) -> TdsServer:
    tds.clear()
    return tds


def test_good_path(fresh: TdsServer) -> None:
    report = run_check(_url(fresh.port), **FAST)  # type: ignore[arg-type]
    assert [e.step for e in report.events] == STEPS
    assert report.ok, report
    tls = report.event("tls")
    assert (tls.data["server_version"], tls.data["product"]) == ("16.0.4135", "SQL Server 2022")
    negotiation = (tls.data["client_encryption"], tls.data["encryption"], tls.data["negotiated"])
    assert negotiation == ("ON", "NOT_SUP", "none")
    assert "does not support encryption" in tls.detail and "loopback" in tls.detail
    login = report.event("login")
    assert login.status is Status.OK and login.data["driver"] == "pytds"
    redirect = report.event("redirect")
    assert (redirect.status, redirect.data["policy"], redirect.data["logged_in"]) == (Status.OK, "none", True)
    assert report.event("latency").data["round_trips"] == 16
    assert fresh.stats.logins == 2  # the driver's and the routing check's
    assert PASSWORD not in _texts(report)


def test_encrypt_true_against_a_server_without_encryption_fails(fresh: TdsServer) -> None:
    tls = run_check(_url(fresh.port, "true"), **FAST).event("tls")  # type: ignore[arg-type]
    assert tls.status is Status.FAIL and "Encrypt=true" in tls.detail
    assert "certificate" in tls.advice[0]


def test_tls_inside_tds(tds_tls: TdsServer) -> None:
    tds_tls.clear()
    report = run_check(_url(tds_tls.port, "true", trust=True), **FAST)  # type: ignore[arg-type]
    tls = report.event("tls")
    assert tls.status is Status.WARN, tls
    negotiation = (tls.data["client_encryption"], tls.data["encryption"], tls.data["negotiated"])
    assert negotiation == ("ON", "ON", "full")
    assert tls.data["protocol"] == "TLSv1.2" and tls.data["cipher"]
    assert tls.data["verified"] is False and "self-signed" in tls.data["verify_error"]
    assert tls.data["certificate"]["subject"] == "CN=tether-check-test"
    assert tls.data["certificate"]["names"] == ["localhost", "127.0.0.1"]
    assert "TrustServerCertificate=yes accepts" in tls.advice[0]
    redirect = report.event("redirect")  # its own login, all of it inside TLS
    assert redirect.data["logged_in"] is True, redirect


def test_a_trusted_certificate_is_ok(tds_tls: TdsServer, cert: tuple[Path, Path],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
    tls = run_check(_url(tds_tls.port, "true"), **FAST).event("tls")  # type: ignore[arg-type]
    assert tls.status is Status.OK, tls
    assert tls.data["verified"] is True
    assert "encryption: client ON, server ON -> full; TLSv1.2" in tls.detail


def test_host_name_in_certificate_is_the_name_checked(tds_tls: TdsServer, cert: tuple[Path, Path],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
    dsn = _url(tds_tls.port, "true") + "&HostNameInCertificate=db.example.test"
    tls = run_check(dsn, **FAST).event("tls")  # type: ignore[arg-type]
    assert tls.status is Status.WARN
    assert "db.example.test" in tls.data["verify_error"]  # "Hostname mismatch, ... not valid for ..."


def test_encrypt_optional_encrypts_the_login_only(tds_tls: TdsServer) -> None:
    tds_tls.clear()
    report = run_check(_url(tds_tls.port, "optional", trust=True), **FAST)  # type: ignore[arg-type]
    tls = report.event("tls")
    assert (tls.data["client_encryption"], tls.data["encryption"], tls.data["negotiated"]) == (
        "OFF", "OFF", "login only")
    redirect = report.event("redirect")  # TLS for LOGIN7 only, the answer in clear
    assert redirect.status is Status.OK and redirect.data["logged_in"] is True, redirect
    assert tds_tls.stats.logins >= 1


def test_no_password_over_a_certificate_that_does_not_verify(tds_tls: TdsServer) -> None:
    tds_tls.clear()
    redirect = run_check(_url(tds_tls.port, "true"), **FAST).event("redirect")  # type: ignore[arg-type]
    assert redirect.status is Status.SKIP
    assert "not sending the password" in redirect.detail
    assert tds_tls.stats.logins == 0


def test_wrong_password_is_18456_and_is_not_tried_twice(fresh: TdsServer) -> None:
    wrong = PASSWORD[::-1]
    report = run_check(_url(fresh.port, password=wrong), **FAST)  # type: ignore[arg-type]
    login = report.event("login")
    assert (login.status, login.data["code"]) == (Status.FAIL, "18456"), login
    assert "wrong user name or password" in login.advice[0]
    assert report.event("redirect").status is Status.SKIP
    assert fresh.stats.rejected_logins == 1
    assert wrong not in _texts(report) and PASSWORD not in _texts(report)


def test_wrong_database_is_4060(fresh: TdsServer) -> None:
    login = run_check(_url(fresh.port).replace("/shop", "/nosuchdb"), **FAST).event("login")  # type: ignore[arg-type]
    assert (login.status, login.data["code"]) == (Status.FAIL, "4060"), login
    assert "cannot open the database" in login.advice[0]


@pytest.mark.parametrize(("number", "advice"), [
    (40613, "not available right now"),
    (40615, "firewall"),
    (40532, "user@server"),
    (18456, "wrong user name or password"),
])
def test_azure_login_errors_get_their_advice(fresh: TdsServer, number: int, advice: str) -> None:
    fresh.reject_logins(1, error=number)  # python-tds retries some until its login timeout: keep it short
    login = run_check(_url(fresh.port), attempts=1, timeout_s=1.0, resolvers=[]).event("login")
    assert (login.status, login.data["code"]) == (Status.FAIL, str(number)), login
    assert advice in login.advice[0]


def test_routing_is_followed_with_dns_and_tcp(fresh: TdsServer) -> None:
    need_localhost_ipv4_only()
    with TdsServer(users={"sa": PASSWORD}, databases=("master", "shop")) as node:
        node_port = node.port
        fresh.route_to("localhost", node_port)
        report = run_check(_url(fresh.port), **FAST)  # type: ignore[arg-type]
        node_logins = node.stats.logins
    redirect = report.event("redirect")
    assert redirect.status is Status.OK, redirect
    assert (redirect.data["policy"], redirect.data["routed_host"], redirect.data["routed_port"]) == (
        "routing", "localhost", node_port)
    assert redirect.data["dns"]["data"]["addresses"][0] in ("127.0.0.1", "::1")
    assert (redirect.data["tcp"]["status"], redirect.data["tcp"]["data"]["attempts"]) == ("ok", 2)
    assert f"the server routes the login: to localhost:{node_port}" in redirect.detail
    assert report.event("login").status is Status.OK  # python-tds followed the routing itself
    assert node_logins == 1 and fresh.stats.routed == 2


def test_routing_to_a_closed_port_fails(fresh: TdsServer) -> None:
    closed = free_port()
    fresh.route_to("127.0.0.1", closed)
    report = run_check(_url(fresh.port), **FAST)  # type: ignore[arg-type]
    redirect = report.event("redirect")
    assert redirect.status is Status.FAIL, redirect
    assert f"routed to 127.0.0.1:{closed}, which this client cannot reach" in redirect.advice[0]
    assert redirect.data["tcp"]["status"] == "fail"
    assert report.event("login").status is Status.FAIL


def test_a_port_that_accepts_and_never_answers() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        report = run_check(_url(port, "optional"), attempts=1, timeout_s=0.5, resolvers=[])
    tls = report.event("tls")
    assert tls.status is Status.FAIL and "did not answer PRELOGIN" in tls.detail
    assert tls.duration_s < 2.0
    assert report.duration_s < 6.0


@pytest.mark.parametrize("which", ["right", "wrong"])
def test_the_password_appears_in_no_output(
    fresh: TdsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture, which: str
) -> None:
    password = PASSWORD if which == "right" else PASSWORD[::-1]
    with TdsServer(users={"sa": PASSWORD}, databases=("master", "shop")) as node:
        fresh.route_to("127.0.0.1", node.port)
        bundle = tmp_path / "b.zip"
        caplog.set_level("DEBUG")  # every logger: tether's, python-tds's
        out, err = io.StringIO(), io.StringIO()
        argv = ["--attempts", "1", "--timeout", "2", "--json", "--bundle", str(bundle),
                _url(fresh.port, password=password)]
        code = main(argv, out=out, err=err)
    assert code == (EXIT_OK if which == "right" else EXIT_PROBLEMS), out.getvalue()
    with zipfile.ZipFile(bundle) as archive:
        files = [archive.read(name).decode() for name in archive.namelist()]
    outputs = [out.getvalue(), err.getvalue(), caplog.text, *files]
    assert all(outputs)
    for text in outputs:
        assert password not in text
    doc = json.loads(out.getvalue())
    assert doc["dialect"] == "sqlserver" and "sa:***@" in doc["target"]


# -- TDS 8.0 (strict) against the stand-in above ----------------------------------------------


def test_strict_runs_tls_first_with_alpn(mini: MiniTds, cert: tuple[Path, Path],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
    mini.strict = True
    report = run_check(_url(mini.port, "strict"), **FAST)  # type: ignore[arg-type]
    tls = report.event("tls")
    assert tls.status is Status.OK, tls
    assert tls.data["strict"] is True and tls.data["alpn"] == "tds/8.0"
    assert tls.data["protocol"] in ("TLSv1.2", "TLSv1.3")
    assert tls.detail.startswith("TDS 8.0 (strict): TLS first, then PRELOGIN: SQL Server 2022")
    assert mini.alpn[0] == "tds/8.0"
    redirect = report.event("redirect")
    assert redirect.data["logged_in"] is True, redirect
    assert mini.logins[-1] == {"user": "sa", "password": PASSWORD, "server": "127.0.0.1", "database": "shop"}


def test_strict_refuses_an_untrusted_certificate(mini: MiniTds) -> None:
    mini.strict = True
    tls = run_check(_url(mini.port, "strict", trust=True), **FAST).event("tls")  # type: ignore[arg-type]
    assert tls.status is Status.FAIL
    assert "TrustServerCertificate is ignored" in tls.advice[0]


def test_strict_against_a_tds7_server(fresh: TdsServer) -> None:
    tls = run_check(_url(fresh.port, "strict"), **FAST).event("tls")  # type: ignore[arg-type]
    assert tls.status is Status.FAIL
    assert "TDS 8.0" in tls.advice[0]


@pytest.mark.parametrize("server", [ENCRYPT_ON, ENCRYPT_REQ])
def test_a_server_that_requires_or_accepts_encryption(mini: MiniTds, server: int) -> None:
    mini.encryption = server
    tls = run_check(_url(mini.port, "true", trust=True), **FAST).event("tls")  # type: ignore[arg-type]
    assert (tls.data["encryption"], tls.data["negotiated"]) == (("ON", "REQ")[server == ENCRYPT_REQ], "full")


# -- pure parts ------------------------------------------------------------------------------


def test_prelogin_round_trip() -> None:
    payload = build_prelogin(ENCRYPT_REQ, instance="SQLEXPRESS", version=(15, 0, 2000))
    parsed = parse_prelogin(payload)
    assert (parsed.version, parsed.encryption_name, parsed.mars) == ("15.0.2000", "REQ", False)
    assert parsed.instance == "SQLEXPRESS" and parsed.options == (0, 1, 2, 3, 4)
    assert product_name("12.0.2000") == "SQL Server 2014, Azure SQL or Babelfish"


@pytest.mark.parametrize(
    ("client", "server", "outcome"),
    [
        (ENCRYPT_OFF, ENCRYPT_OFF, "login only"),
        (ENCRYPT_OFF, ENCRYPT_REQ, "full"),
        (ENCRYPT_ON, ENCRYPT_ON, "full"),
        (ENCRYPT_ON, ENCRYPT_NOT_SUP, "none"),
        (ENCRYPT_OFF, ENCRYPT_NOT_SUP, "none"),
    ],
)
def test_the_negotiation_table(client: int, server: int, outcome: str) -> None:
    assert negotiated(client, server) == outcome


def test_login_reply_tokens() -> None:
    reply = parse_login_reply(loginack() + routing("node.tr1.worker.database.windows.net", 11042) + done())
    assert reply.logged_in and reply.routing == ("node.tr1.worker.database.windows.net", 11042)
    failed = parse_login_reply(error(40615, "Cannot open server 'x' requested by the login.") + done(True))
    assert failed.errors[0]["number"] == 40615 and not failed.logged_in


def test_login7_fields_and_obfuscation() -> None:
    record = build_login7(user="app", password="s3cr\u00e9t", database="shop", server_name="db.example.com")
    assert struct.unpack_from("<I", record)[0] == len(record)
    assert read_login7(record) == {"user": "app", "password": "s3cr\u00e9t", "server": "db.example.com",
                                   "database": "shop"}
    assert "s3cr".encode("utf-16-le") not in record


def _azure_context(encrypt: str | None) -> Context:
    spec = parse(f"Server=tcp:shop.database.windows.net,1433{';Encrypt=' + encrypt if encrypt else ''}")
    options = Options(attempts=1, timeout_s=1.0, resolvers=(), hosts_file="", resolv_conf="")
    ctx = Context(spec, "shop.database.windows.net", 1433, options)
    ctx.results["name"] = Outcome(Status.OK, "", data={"azure": "Azure SQL Database", "is_address": False})
    return ctx


def _as_if_azure(server: TdsServer) -> Context:
    """A context for the test server that the name step took for Azure SQL Database (no DNS involved)."""
    spec = parse(_url(server.port))
    options = Options(attempts=2, timeout_s=2.0, resolvers=(), hosts_file="/etc/hosts", resolv_conf="")
    ctx = Context(spec, "127.0.0.1", server.port, options)
    ctx.results["name"] = Outcome(Status.OK, "", data={"azure": "Azure SQL Database", "is_address": True})
    ctx.results["tcp"] = Outcome(Status.OK, "", data={"min_s": 0.001})
    return ctx


def test_no_own_login_without_sql_authentication(fresh: TdsServer) -> None:
    for dsn in (f"mssql+pytds://127.0.0.1:{fresh.port}/shop",
                _url(fresh.port) + "?Authentication=ActiveDirectoryPassword"):
        redirect = run_check(dsn, attempts=1, timeout_s=1.0, resolvers=[]).event("redirect")
        assert redirect.status is Status.SKIP and "SQL authentication only" in redirect.detail


def test_azure_proxy_policy(fresh: TdsServer) -> None:
    outcome = check_redirect(_as_if_azure(fresh), time.monotonic() + 10)
    assert outcome.status is Status.OK, outcome
    assert outcome.data["policy"] == "proxy"
    assert outcome.detail.startswith("proxy policy: no routing in the login response")


def test_azure_redirect_policy(fresh: TdsServer) -> None:
    with socket.create_server(("127.0.0.1", 0)) as node:
        port = node.getsockname()[1]
        fresh.route_to("127.0.0.1", port)
        outcome = check_redirect(_as_if_azure(fresh), time.monotonic() + 10)
    assert outcome.status is Status.OK, outcome
    assert (outcome.data["policy"], outcome.data["routed_port"]) == ("redirect", port)
    assert outcome.detail.startswith(f"redirect policy: to 127.0.0.1:{port}")
    assert "outside the usual 11000-11999" in outcome.detail
    assert outcome.data["dns"]["status"] == "skip" and outcome.data["tcp"]["status"] == "ok"


def test_azure_redirect_to_a_blocked_port(fresh: TdsServer) -> None:
    fresh.route_to("127.0.0.1", free_port())
    outcome = check_redirect(_as_if_azure(fresh), time.monotonic() + 10)
    assert outcome.status is Status.FAIL
    assert "open outbound TCP 11000-11999 to Azure SQL" in outcome.advice[0]
    assert "connection policy to Proxy" in outcome.advice[0]


def test_azure_without_encryption_is_unexpected() -> None:
    facts: dict[str, Any] = {"strict": False, "client_encryption": "OFF", "encryption": "NOT_SUP",
                             "negotiated": "none", "server_version": "12.0.2000", "product": "Azure"}
    outcome = _verdict(_azure_context("optional"), facts, None)
    assert outcome.status is Status.WARN and "unexpected for Azure SQL Database" in outcome.detail
    assert _verdict(_azure_context("true"), dict(facts), None).status is Status.FAIL
