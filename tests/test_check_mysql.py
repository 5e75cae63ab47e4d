"""tether check against a real MariaDB: the good path, TLS on and off, login errors, no password shown."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

import pytest

from fix_mysql import MYSQL_PASSWORD
from tether.check import Report, Status, run_check
from tether.check._cli import EXIT_OK, EXIT_PROBLEMS, main
from tether.check._mysql_wire import CLIENT_SSL, parse_greeting, ssl_request
from tether.testing import EmbeddedMariaDB

STEPS = ["name", "local", "dns", "tcp", "tls", "login", "redirect", "latency"]
FAST = {"attempts": 2, "timeout_s": 3.0, "resolvers": []}

pytestmark = pytest.mark.timeout(60)


def _texts(report: Report) -> str:
    return json.dumps(report.to_dict()) + repr(report)


def _with_password(server: EmbeddedMariaDB, password: str, query: str = "") -> str:
    url = server.url(password=False).replace("root@", f"root:{password}@", 1)
    return url + (f"?{query}" if query else "")


def test_good_path_without_tls(mariadb: EmbeddedMariaDB) -> None:
    report = run_check(mariadb.dsn, **FAST)  # type: ignore[arg-type]
    assert [e.step for e in report.events] == STEPS
    assert report.ok, report
    tls = report.event("tls")
    assert tls.data["offered"] is False and tls.data["client_ssl"] is False
    assert tls.data["mariadb"] is True and tls.data["server_version"].startswith("10.")
    assert "does not offer TLS" in tls.detail and "loopback" in tls.detail
    login = report.event("login")
    assert login.status is Status.OK and login.data["driver"] == "pymysql"
    assert login.data["database"] == "tether"
    assert report.event("redirect").status is Status.SKIP
    assert report.event("latency").data["round_trips"] == 4
    assert MYSQL_PASSWORD not in _texts(report)


def test_tls_on_with_a_certificate_the_test_made(mariadb_tls: EmbeddedMariaDB) -> None:
    report = run_check(mariadb_tls.dsn, **FAST)  # type: ignore[arg-type]
    tls = report.event("tls")
    assert tls.status is Status.WARN, tls
    assert tls.data["offered"] is True and tls.data["client_ssl"] is True
    assert tls.data["protocol"] in ("TLSv1.2", "TLSv1.3") and tls.data["cipher"]
    assert tls.data["verified"] is False and "self-signed" in tls.data["verify_error"]
    assert tls.data["certificate"]["subject"] == "CN=tether-check-test"
    assert tls.data["certificate"]["names"] == ["localhost", "127.0.0.1"]
    assert "ssl_ca" in tls.advice[0]
    assert report.event("login").status is Status.OK
    assert report.event("latency").data["round_trips"] == 6


def test_ssl_mode_required_logs_in_over_tls(mariadb_tls: EmbeddedMariaDB) -> None:
    dsn = _with_password(mariadb_tls, MYSQL_PASSWORD, "ssl_mode=REQUIRED")
    login = run_check(dsn, **FAST).event("login")  # type: ignore[arg-type]
    assert login.status is Status.OK, login
    import pymysql

    conn = pymysql.connect(host=mariadb_tls.host, port=mariadb_tls.port, user="root", password=MYSQL_PASSWORD,
                           ssl={"check_hostname": False, "verify_mode": 0})
    with conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
        assert cur.fetchone()[1].startswith("TLS")
    conn.close()


def test_ssl_mode_required_without_tls_fails(mariadb: EmbeddedMariaDB) -> None:
    dsn = _with_password(mariadb, MYSQL_PASSWORD, "ssl_mode=REQUIRED")
    tls = run_check(dsn, **FAST).event("tls")  # type: ignore[arg-type]
    assert tls.status is Status.FAIL and "ssl_mode=REQUIRED" in tls.detail


def test_wrong_password_is_1045(mariadb: EmbeddedMariaDB) -> None:
    wrong = "Wr0ng-" + MYSQL_PASSWORD
    report = run_check(_with_password(mariadb, wrong), **FAST)  # type: ignore[arg-type]
    login = report.event("login")
    assert (login.status, login.data["code"]) == (Status.FAIL, "1045")
    assert "access denied" in login.advice[0]
    assert report.status is Status.FAIL
    assert wrong not in _texts(report) and MYSQL_PASSWORD not in _texts(report)


def test_wrong_database_is_1049(mariadb: EmbeddedMariaDB) -> None:
    dsn = mariadb.url(database="no_such_db")
    login = run_check(dsn, **FAST).event("login")  # type: ignore[arg-type]
    assert (login.status, login.data["code"]) == (Status.FAIL, "1049")
    assert "unknown database" in login.advice[0]


@pytest.mark.parametrize("which", ["right", "wrong"])
def test_the_password_appears_in_no_output(
    mariadb_tls: EmbeddedMariaDB, tmp_path: Path, caplog: pytest.LogCaptureFixture, which: str
) -> None:
    password = MYSQL_PASSWORD if which == "right" else MYSQL_PASSWORD[::-1]
    bundle = tmp_path / "b.zip"
    caplog.set_level("DEBUG", logger="tether")
    out, err = io.StringIO(), io.StringIO()
    code = main(["--attempts", "1", "--timeout", "3", "--resolver", "127.0.0.1:9", "--json", "--bundle",
                 str(bundle), _with_password(mariadb_tls, password)], out=out, err=err)
    assert code == EXIT_PROBLEMS  # the self-signed certificate warns, the wrong password fails
    with zipfile.ZipFile(bundle) as archive:
        files = [archive.read(name).decode() for name in archive.namelist()]
    outputs = [out.getvalue(), err.getvalue(), caplog.text, *files]
    assert all(outputs)
    for text in outputs:
        assert password not in text
    assert "root:***@" in out.getvalue()
    doc = json.loads(out.getvalue())
    login = next(s for s in doc["steps"] if s["step"] == "login")
    assert login["status"] == ("ok" if which == "right" else "fail")


def test_cli_exit_0_when_all_is_well(mariadb: EmbeddedMariaDB) -> None:
    out, err = io.StringIO(), io.StringIO()
    argv = ["--attempts", "1", "--timeout", "3", "--resolver", "127.0.0.1:9", mariadb.dsn]
    code = main(argv, out=out, err=err)
    assert code == EXIT_OK, out.getvalue()
    assert MYSQL_PASSWORD not in out.getvalue()


def test_embedded_mariadb_stops_by_pid_and_cleans_up(mariadb: EmbeddedMariaDB) -> None:
    import os

    with EmbeddedMariaDB() as server:
        pid, tmp = server.pid, server.data_dir.parent
        assert pid is not None and tmp.is_dir()
        assert server.execute("SELECT 1") == [(1,)]
        if os.geteuid() == 0:  # never runs as root
            assert os.stat(server.data_dir).st_uid != 0
    assert not tmp.exists() and server.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# -- pure parts -------------------------------------------------------------------------


def test_a_refusal_instead_of_a_greeting() -> None:
    packet = b"\xff" + struct.pack("<H", 1130) + b"Host '10.0.0.5' is not allowed to connect"
    greeting = parse_greeting(packet)
    assert (greeting.error_code, greeting.offers_tls) == (1130, False)
    assert greeting.error.startswith("Host")


def test_the_ssl_request_packet() -> None:
    packet = ssl_request(0xFFFFFFFF)
    assert packet[:4] == b"\x20\x00\x00\x01"  # 32 bytes, sequence 1
    flags, max_packet, charset = struct.unpack_from("<IIB", packet, 4)
    assert flags & CLIENT_SSL and flags & 0x200  # CLIENT_SSL, CLIENT_PROTOCOL_41
    assert (max_packet, charset, packet[13:]) == (1 << 24, 45, b"\x00" * 23)
