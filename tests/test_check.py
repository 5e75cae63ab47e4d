"""tether.check against real servers: the good path, login errors, dead ports, DNS, TLS."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fix_system import need_localhost_ipv4_only
from test_check_support import PASSWORD, DnsServer, TlsPostgresStandIn
from tether import parse
from tether.check import Report, Status, advise, run_check
from tether.check._context import Context, Options
from tether.check._events import Outcome
from tether.check._local import check_local
from tether.check._login import error_code
from tether.check._name import azure_kind
from tether.check._tcp import summarize
from tether.testing import EmbeddedPostgres, free_port
from tether.wan import Link

pytest_plugins = ["test_check_support"]  # scram_pg, tls_server, dns_server

STEPS = ["name", "local", "dns", "tcp", "tls", "login", "redirect", "latency"]
FAST = {"attempts": 3, "timeout_s": 2.0, "resolvers": []}


def _texts(report: Report) -> str:
    import json

    return json.dumps(report.to_dict()) + repr(report)


def test_good_path(pg_server: EmbeddedPostgres) -> None:
    report = run_check(pg_server.dsn, **FAST)  # type: ignore[arg-type]
    assert [e.step for e in report.events] == STEPS
    assert report.ok, report
    assert report.event("tcp").data["addresses"][0]["ok"] == 3
    assert report.event("login").status is Status.OK
    assert report.event("latency").data["round_trips"] == 3
    assert report.actions == ()


def test_wrong_password_advises_and_never_shows_it(scram_pg: EmbeddedPostgres) -> None:
    wrong = "Wr0ng-" + PASSWORD
    dsn = scram_pg.url(password=False).replace("postgres@", f"postgres:{wrong}@", 1)
    report = run_check(dsn, **FAST)  # type: ignore[arg-type]
    login = report.event("login")
    assert login.status is Status.FAIL
    assert login.data["code"] == "28P01"
    assert "wrong password" in login.advice[0]
    assert report.status is Status.FAIL
    assert wrong not in _texts(report) and PASSWORD not in _texts(report)


def test_right_password_logs_in_with_scram(scram_pg: EmbeddedPostgres) -> None:
    report = run_check(scram_pg.dsn, **FAST)  # type: ignore[arg-type]
    assert report.ok, report
    assert report.event("latency").data["round_trips"] == 5  # SCRAM adds two
    assert PASSWORD not in _texts(report)


def test_wrong_database(pg_server: EmbeddedPostgres) -> None:
    dsn = pg_server.url().rsplit("/", 1)[0] + "/no_such_db"
    login = run_check(dsn, **FAST).event("login")  # type: ignore[arg-type]
    assert (login.status, login.data["code"]) == (Status.FAIL, "3D000")
    assert "does not exist" in login.advice[0]


def test_closed_port_fails_at_tcp_and_skips_the_rest() -> None:
    report = run_check(f"postgresql://app@127.0.0.1:{free_port()}/db", **FAST)  # type: ignore[arg-type]
    tcp = report.event("tcp")
    assert tcp.status is Status.FAIL
    assert tcp.data["addresses"][0] == {
        "address": "127.0.0.1", "ok": 0, "failed": 3, "errors": ["Connection refused"], "times_s": []}
    assert "nothing listens" in tcp.advice[0]
    assert report.event("tls").status is report.event("login").status is Status.SKIP
    assert report.actions == tcp.advice


def test_blackhole_is_reported_as_no_answer_within_the_timeouts(pg_server: EmbeddedPostgres) -> None:
    with Link(upstream=(pg_server.host, pg_server.port)) as link:
        link.blackhole()
        host, port = link.listen_address
        report = run_check(f"postgresql://postgres@{host}:{port}/postgres",
                           attempts=2, timeout_s=0.5, resolvers=[])
    assert report.event("tcp").status is Status.OK  # the proxy accepts
    tls = report.event("tls")
    assert tls.status is Status.FAIL and "did not answer" in tls.detail
    login = report.event("login")
    assert login.status is Status.FAIL
    assert login.duration_s < 3.0
    assert report.duration_s < 6.0


def test_the_deadline_skips_what_is_left(pg_server: EmbeddedPostgres) -> None:
    with Link(upstream=(pg_server.host, pg_server.port)) as link:
        link.blackhole()
        host, port = link.listen_address
        report = run_check(f"postgresql://postgres@{host}:{port}/postgres",
                           attempts=1, timeout_s=1.0, deadline_s=1.2, resolvers=[])
    assert report.duration_s < 3.0
    assert report.event("latency").status is Status.SKIP
    assert "deadline" in report.event("latency").detail
    assert report.event("tls").data.get("hung") or report.event("tls").status is Status.FAIL


def test_a_loopback_resolver_that_agrees(pg_server: EmbeddedPostgres, dns_server: DnsServer) -> None:
    need_localhost_ipv4_only()
    dns_server.answers["localhost"] = ["127.0.0.1"]
    dsn = pg_server.dsn.replace("127.0.0.1", "localhost")
    report = run_check(dsn, attempts=2, timeout_s=2.0, resolvers=[dns_server.address])
    dns = report.event("dns")
    assert dns.status is Status.OK, dns
    key = f"127.0.0.1:{dns_server.address[1]}"
    assert dns.data["resolvers"][key] == {"addresses": ["127.0.0.1"], "cnames": []}
    assert "localhost" in dns_server.queries
    assert report.ok


def test_a_resolver_that_disagrees_is_a_warning(pg_server: EmbeddedPostgres, dns_server: DnsServer) -> None:
    dns_server.answers["localhost"] = ["127.0.0.2"]
    dsn = pg_server.dsn.replace("127.0.0.1", "localhost")
    report = run_check(dsn, attempts=2, timeout_s=2.0, resolvers=[dns_server.address])
    dns = report.event("dns")
    assert dns.status is Status.WARN
    assert "answers 127.0.0.2" in dns.detail
    assert any("disagree" in a for a in report.actions)


def test_a_name_only_the_direct_resolver_knows(pg_server: EmbeddedPostgres, dns_server: DnsServer) -> None:
    dns_server.answers["db.tether-check.invalid"] = ["127.0.0.1"]
    dsn = f"postgresql://postgres@db.tether-check.invalid:{pg_server.port}/postgres"
    report = run_check(dsn, attempts=2, timeout_s=2.0, resolvers=[dns_server.address])
    dns = report.event("dns")
    assert dns.status is Status.WARN and "system resolver failed" in dns.detail
    assert dns.data["addresses"] == ["127.0.0.1"]
    assert report.event("tcp").status is Status.OK


def test_a_silent_resolver_is_a_warning_not_a_hang(pg_server: EmbeddedPostgres) -> None:
    silent = ("127.0.0.1", free_port())  # nothing listens: UDP gets no answer (or a refusal)
    dsn = pg_server.dsn.replace("127.0.0.1", "localhost")
    dns = run_check(dsn, attempts=1, timeout_s=0.3, resolvers=[silent]).event("dns")
    assert dns.status is Status.WARN and "no answer from" in dns.detail
    assert dns.duration_s < 2.0


def test_a_hosts_file_override_is_a_warning(pg_server: EmbeddedPostgres, tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n127.0.0.1 db.example.test  # pinned\n")
    report = run_check(pg_server.dsn.replace("127.0.0.1", "localhost"), attempts=1, timeout_s=2.0,
                       resolvers=[], hosts_file=str(hosts))
    assert report.event("dns").status is Status.OK  # localhost in the hosts file is normal
    from tether.check._dns import hosts_entries

    assert hosts_entries(str(hosts), "db.example.test") == ["127.0.0.1"]


def test_tls_with_a_self_signed_certificate(tls_server: TlsPostgresStandIn) -> None:
    report = run_check(f"postgresql://app@127.0.0.1:{tls_server.port}/db", **FAST)  # type: ignore[arg-type]
    tls = report.event("tls")
    assert tls.status is Status.WARN, tls
    assert tls.data["protocol"] in ("TLSv1.2", "TLSv1.3")
    assert tls.data["cipher"]
    assert tls.data["verified"] is False and "self-signed" in tls.data["verify_error"]
    cert = tls.data["certificate"]
    assert cert["subject"] == "CN=tether-check-test"
    assert cert["names"] == ["localhost", "127.0.0.1"]
    assert 28 <= cert["days_left"] <= 30
    assert "trust store" in tls.advice[0]
    assert tls_server.handshakes >= 1


def test_a_server_without_tls_on_loopback_is_fine(pg_server: EmbeddedPostgres) -> None:
    tls = run_check(pg_server.dsn, **FAST).event("tls")  # type: ignore[arg-type]
    assert (tls.status, tls.data["offered"]) == (Status.OK, False)


def test_sql_server_closed_port_skips_tls_login_and_routing() -> None:
    report = run_check(f"Server=tcp:127.0.0.1,{free_port()};Database=shop", **FAST)  # type: ignore[arg-type]
    assert report.dialect == "sqlserver"
    for step in ("tls", "login", "redirect"):
        assert report.event(step).status is Status.SKIP, step


# -- pure parts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("shop.database.windows.net", "Azure SQL Database"),
        ("mi1.public.abc123.database.windows.net", "Azure SQL Managed Instance (public endpoint)"),
        ("ws-ondemand.sql.azuresynapse.net", "Azure Synapse serverless SQL pool"),
        ("ws.sql.azuresynapse.net", "Azure Synapse dedicated SQL pool"),
        ("x.datawarehouse.fabric.microsoft.com", "Microsoft Fabric warehouse"),
        ("db.example.com", None),
    ],
)
def test_azure_names(host: str, kind: str | None) -> None:
    assert azure_kind(host) == kind


def test_managed_instance_public_endpoint_wants_port_3342() -> None:
    name = run_check("Server=tcp:mi1.public.abc.database.windows.net,1433", attempts=1, timeout_s=0.2,
                     deadline_s=0.01, resolvers=[]).event("name")
    assert name.status is Status.WARN and "3342" in name.advice[0]


def test_advice_tables_cover_the_issue_codes() -> None:
    for code in ("18456", "40615", "40532", "4060", "911", "10060", "121", "40613"):
        assert advise("sqlserver", code), code
    for code in ("28P01", "3D000", "53300", "pg_hba"):
        assert advise("postgresql", code), code
    assert advise("mysql", "1045") and advise("mysql", "1049")
    assert advise("postgresql", "99999") is None


def test_error_codes_from_messages_and_numbers() -> None:
    hba = Exception('FATAL:  no pg_hba.conf entry for host "10.0.0.5", user "app", database "shop"')
    assert error_code("postgresql", hba) == "pg_hba"
    assert error_code("mysql", Exception(1045, "Access denied")) == "1045"


def test_summarize_connect_times() -> None:
    stats = summarize([0.001 * n for n in range(1, 21)])
    assert stats["min_s"] == pytest.approx(0.001)
    assert stats["avg_s"] == pytest.approx(0.0105)
    assert stats["p95_s"] == pytest.approx(0.019)


def test_bad_input_raises_config_error() -> None:
    from tether import ConfigError

    with pytest.raises(ConfigError):
        run_check("nosuch://h/db")
    with pytest.raises(ValueError, match="attempts"):
        run_check("postgresql://h/db", attempts=0)


def _local_context(host: str) -> Context:
    options = Options(attempts=1, timeout_s=1.0, resolvers=(), hosts_file="", resolv_conf="")
    ctx = Context(parse(f"postgresql://app@{host}/shop"), host, 5432, options)
    ctx.results["name"] = Outcome(Status.OK, "", data={"is_address": False})
    return ctx


def test_local_step_lists_addresses_with_psutil() -> None:
    pytest.importorskip("psutil", reason="psutil is not installed: pip install 'tether[check]'")
    outcome = check_local(_local_context("db.example.com"), deadline=0.0)
    assert "127.0.0.1" in outcome.detail and "tether[check]" not in outcome.detail


def test_local_step_without_psutil_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psutil", None)  # import now fails as if it were not installed
    outcome = check_local(_local_context("db.example.com"), deadline=0.0)
    assert "pip install 'tether[check]'" in outcome.detail
    assert "(no address)" not in outcome.detail
    assert outcome.status is Status.OK  # unknown addresses are no evidence of a missing network
