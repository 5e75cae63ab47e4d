"""``tether check`` can be trusted: a login that could not run is never "all good", the password
is redacted by position (never by searching the output for it), the local step does not warn
for want of psutil, and the TCP advice names the right database's settings."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from test_check_support import PASSWORD
from tether.check import Report, Status, iter_check, run_check
from tether.check._cli import EXIT_OK, EXIT_PROBLEMS, main
from tether.check._render import full_text
from tether.testing import EmbeddedPostgres, free_port

pytest_plugins = ["test_check_support"]  # scram_pg

FAST = {"attempts": 2, "timeout_s": 2.0, "resolvers": []}
SRC = str(Path(__file__).resolve().parents[1] / "src")

# Every driver module tether or the checker's fallback could log in with.
DRIVER_MODULES = ("psycopg", "asyncpg", "pytds", "pymssql", "mssql_python", "pyodbc", "pymysql", "MySQLdb",
                  "aiomysql", "asyncmy")


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--attempts", "2", "--timeout", "2", "--resolver", "127.0.0.1:9", *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _without_drivers(*argv: str) -> subprocess.CompletedProcess[str]:
    """``tether check`` in a fresh interpreter where no database driver can be imported."""
    code = ("import sys\n"
            f"for name in {DRIVER_MODULES!r}: sys.modules[name] = None\n"
            "from tether.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-c", code, "check", "--attempts", "1", "--timeout", "2",
                           "--resolver", "127.0.0.1:9", *argv],
                          capture_output=True, text=True, env=env, timeout=60, check=False)


# --- 1. a skipped login is never "all good" ------------------------------------------------------


def test_no_postgresql_driver_is_incomplete_not_all_good(pg_server: EmbeddedPostgres) -> None:
    done = _without_drivers(pg_server.dsn)
    assert done.returncode == EXIT_PROBLEMS, done.stdout + done.stderr
    assert "all good" not in done.stdout
    assert "Result: incomplete" in done.stdout
    assert "[INC!] login" in done.stdout
    assert "no postgresql driver is installed (psycopg)" in done.stdout
    assert "pip install 'tether[postgresql]'" in done.stdout
    assert "Recommended actions:\n  1. install a postgresql driver (psycopg)" in done.stdout
    assert "Traceback" not in done.stderr


def test_no_sqlserver_driver_names_the_sqlserver_extra(tds_server) -> None:  # type: ignore[no-untyped-def]
    done = _without_drivers(f"sqlserver://sa:Secret-pw1@{tds_server.host}:{tds_server.port}/master")
    assert done.returncode == EXIT_PROBLEMS, done.stdout + done.stderr
    assert "all good" not in done.stdout
    assert "pip install 'tether[sqlserver]'" in done.stdout
    assert "[INC!] login" in done.stdout


def test_no_mysql_driver_names_the_mysql_extra(mariadb) -> None:  # type: ignore[no-untyped-def]
    done = _without_drivers(mariadb.url())
    assert done.returncode == EXIT_PROBLEMS, done.stdout + done.stderr
    assert "all good" not in done.stdout
    assert "pip install 'tether[mysql]'" in done.stdout
    assert "[INC!] login" in done.stdout


def test_incomplete_report_shape(pg_server: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch) -> None:
    from tether.check import _login
    from tether.errors import ConfigError

    def no_driver(dialect: str, name: str | None = None) -> object:
        raise ConfigError(f"no driver for {dialect} could be loaded: psycopg: not installed")

    monkeypatch.setattr(_login, "load_driver", no_driver)
    report = run_check(pg_server.dsn, **FAST)  # type: ignore[arg-type]
    login = report.event("login")
    assert login.status is Status.SKIP and login.incomplete
    assert login.data["install"] == "pip install 'tether[postgresql]'"
    assert report.status is Status.INCOMPLETE and not report.ok
    doc = report.to_dict()
    assert (doc["status"], doc["ok"]) == ("incomplete", False)
    assert doc["actions"] == ["install a postgresql driver (psycopg) to test the login: "
                              "pip install 'tether[postgresql]'"]


def test_a_step_cut_by_the_deadline_leaves_the_check_incomplete() -> None:
    report = Report("x", "postgresql", "h", 1, (), 0.0)
    assert report.status is Status.OK  # nothing ran, nothing skipped for a reason
    from tether.check._events import Event

    cut = Event("login", Status.SKIP, "not run: the check's deadline of 1 s passed", 0.0,
                ("run the check again with a longer --deadline than 1 s",), {"incomplete": True})
    by_design = Event("redirect", Status.SKIP, "not SQL Server", 0.0)
    assert Report("x", "postgresql", "h", 1, (by_design,), 0.0).status is Status.OK
    assert Report("x", "postgresql", "h", 1, (by_design, cut), 0.0).status is Status.INCOMPLETE


# --- 2. redaction by position -------------------------------------------------------------------


def _with_password(server: EmbeddedPostgres, password: str) -> str:
    return server.url(password=False).replace("postgres@", f"postgres:{password}@", 1)


@pytest.mark.parametrize("password", ["p", "o", "1", "postgres", "127.0.0.1"])
def test_a_short_or_common_password_mangles_no_other_word(
    pg_server: EmbeddedPostgres, tmp_path: Path, password: str
) -> None:
    # pg_server trusts every login: the password is sent and ignored, the login succeeds.
    bundle = tmp_path / "b.zip"
    code, out, _ = _run(_with_password(pg_server, password), "--bundle", str(bundle))
    assert code == EXIT_OK, out
    assert out.count("***") == 1  # the header's password, nowhere else
    shown = pg_server.url(password=False).replace("postgres@", "postgres:***@")
    assert out.splitlines()[0] == f"tether check {shown}"
    assert f"is a loopback address, port {pg_server.port}" in out
    assert "logged in with psycopg as postgres to postgres" in out
    with zipfile.ZipFile(bundle) as archive:
        report_txt = archive.read("report.txt").decode()
        report = json.loads(archive.read("report.json"))
        log = archive.read("check.log").decode()
    assert report_txt.count("***") == 1 and "loopback address, port" in report_txt
    assert report["target"].count("***") == 1
    assert "***" not in json.dumps(report["steps"])
    assert "logged in with psycopg as postgres to postgres" in log


def test_a_wrong_password_that_is_the_user_name_leaves_the_error_whole(scram_pg: EmbeddedPostgres) -> None:
    report = run_check(_with_password(scram_pg, "postgres"), **FAST)  # type: ignore[arg-type]
    login = report.event("login")
    assert login.status is Status.FAIL and login.data["code"] == "28P01"
    assert 'password authentication failed for user "postgres"' in login.detail
    assert report.target.endswith(f"postgres:***@{scram_pg.host}:{scram_pg.port}/postgres")
    assert "***" not in full_text(report).split("\n", 1)[1]


def test_the_real_password_still_appears_nowhere(scram_pg: EmbeddedPostgres, tmp_path: Path) -> None:
    bundle = tmp_path / "b.zip"
    code, out, err = _run(_with_password(scram_pg, PASSWORD), "--json", "--bundle", str(bundle))
    assert code == EXIT_OK
    with zipfile.ZipFile(bundle) as archive:
        files = [archive.read(name).decode() for name in archive.namelist()]
    for text in (out, err, *files):
        assert PASSWORD not in text


def test_no_substring_replacement_of_the_password_in_the_checker() -> None:
    """The checker has no code that searches its output for the password."""
    root = Path(SRC) / "tether" / "check"
    for path in root.glob("*.py"):
        text = path.read_text()
        assert '.replace(secret' not in text and '"***")' not in text, path


# --- 3. the local step without psutil -----------------------------------------------------------


def test_local_without_psutil_says_so_and_does_not_warn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil raises ImportError
    events = iter_check(f"postgresql://app@db.example.invalid:{free_port()}/shop", attempts=1, timeout_s=1.0,
                        resolvers=[("127.0.0.1", free_port())])
    next(events)  # name
    local = next(events)
    events.close()
    assert local.step == "local"
    assert local.status is Status.OK, local
    assert "psutil is not installed" in local.detail and "pip install 'tether[check]'" in local.detail
    assert "(no address)" not in local.detail
    assert local.advice == ()
    assert local.data["missing"] == "psutil" and local.data["addresses"] is None


def test_local_with_psutil_lists_addresses() -> None:
    pytest.importorskip("psutil")
    events = iter_check(f"postgresql://app@127.0.0.1:{free_port()}/shop", attempts=1, timeout_s=1.0,
                        resolvers=[])
    next(events)
    local = next(events)
    events.close()
    assert "127.0.0.1" in local.data["interfaces"].get("lo", ["127.0.0.1"])
    assert "psutil" not in local.detail


# --- 4. TCP advice per database -----------------------------------------------------------------


@pytest.mark.parametrize(("dialect", "expected", "foreign"), [
    ("postgresql", "listen_addresses", ("SQL Server", "bind-address")),
    ("sqlserver", "SQL Server Configuration Manager", ("PostgreSQL", "listen_addresses", "bind-address")),
    ("mysql", "bind-address", ("PostgreSQL", "listen_addresses", "SQL Server")),
])
def test_a_closed_port_is_advised_for_its_own_database(
    dialect: str, expected: str, foreign: tuple[str, ...]
) -> None:
    port = free_port()
    report = run_check(f"{dialect}://u@127.0.0.1:{port}/db", **FAST)  # type: ignore[arg-type]
    tcp = report.event("tcp")
    assert tcp.status is Status.FAIL
    assert len(tcp.advice) == 1 and f"nothing listens on port {port}" in tcp.advice[0]
    assert expected in tcp.advice[0]
    for word in foreign:
        assert word not in tcp.advice[0]


def test_timeouts_are_advised_for_their_own_database() -> None:
    from tether.check._advice import tcp_advice

    assert "Azure SQL" in (tcp_advice("sqlserver", "timed out", 1433) or "")
    assert "Azure SQL" not in (tcp_advice("postgresql", "timed out", 5432) or "")
    assert "Azure SQL" not in (tcp_advice("mysql", "timed out", 3306) or "")
