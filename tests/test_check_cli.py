"""``tether check`` (tether.check._cli.main): exit codes, JSON, bundle, and no password anywhere."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from pathlib import Path

import pytest

from test_check_support import PASSWORD
from tether.check._cli import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, main
from tether.testing import EmbeddedPostgres, free_port

pytest_plugins = ["test_check_support"]  # scram_pg


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--attempts", "2", "--timeout", "2", "--resolver", "127.0.0.1:9", *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_all_good_exits_0_with_progress_and_summary(pg_server: EmbeddedPostgres) -> None:
    code, out, err = _run(pg_server.dsn)
    assert (code, err) == (EXIT_OK, "")
    lines = out.splitlines()
    assert lines[0] == f"tether check {pg_server.dsn}"
    steps = ["name", "local", "dns", "tcp", "tls", "login", "redirect", "latency"]
    # Not a terminal: a line as each step starts, then its result, both kept, no colour.
    assert [line[7:].split()[0] for line in lines[1:17]] == [s for step in steps for s in (step, step)]
    assert all(line.startswith("[ .. ] ") for line in lines[1:17:2])
    assert "\033[" not in out
    assert lines[-1].startswith("Result: all good")


def test_problems_exit_1_with_recommended_actions() -> None:
    code, out, _ = _run(f"postgresql://app@127.0.0.1:{free_port()}/db")
    assert code == EXIT_PROBLEMS
    assert "[FAIL] tcp" in out
    assert "Recommended actions:\n  1. nothing listens on port" in out


def test_host_and_port_options(pg_server: EmbeddedPostgres) -> None:
    code, out, _ = _run("--host", "127.0.0.1", "--port", str(pg_server.port))
    assert code == EXIT_PROBLEMS  # no user: libpq logs in as root, who does not exist
    assert f"tether check postgresql://127.0.0.1:{pg_server.port}" in out
    assert "[ ok ] tcp" in out


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["nosuch://h/db"], "unknown URL scheme 'nosuch'"),
        (["postgresql://h:70000/db"], "port must be a number from 1 to 65535"),
        (["Server=tcp:h,1433;Bogus Keyword=1"], "bogus keyword"),
        (["postgresql://h/db", "--port", "0"], "port"),
        ([], "give a connection string or --host"),
        (["postgresql://h/db", "--attempts", "0"], "--attempts"),
    ],
)
def test_bad_usage_exits_2_with_the_reason(argv: list[str], reason: str) -> None:
    code, out, err = _run(*argv)
    assert code == EXIT_USAGE
    assert reason.lower() in err.lower()
    assert out == ""


def test_unknown_option_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--no-such-option"]) == EXIT_USAGE
    assert "unrecognized arguments" in capsys.readouterr().err


def test_json_shape(pg_server: EmbeddedPostgres) -> None:
    code, out, err = _run(pg_server.dsn, "--json")
    assert code == EXIT_OK
    assert "Result: all good" in err  # progress goes to stderr with --json
    doc = json.loads(out)
    assert set(doc) == {"target", "dialect", "host", "port", "status", "ok", "duration_s", "steps", "actions"}
    summary = (doc["status"], doc["ok"], doc["dialect"], doc["port"])
    assert summary == ("ok", True, "postgresql", pg_server.port)
    for step in doc["steps"]:
        assert set(step) == {"step", "status", "detail", "duration_s", "advice", "data"}
        assert step["status"] in {"ok", "warn", "fail", "skip"}
    tcp = next(s for s in doc["steps"] if s["step"] == "tcp")
    assert tcp["data"]["addresses"][0]["ok"] == 2
    assert {"min_s", "avg_s", "p95_s"} <= set(tcp["data"])


def test_bundle_holds_report_json_and_logs(pg_server: EmbeddedPostgres, tmp_path: Path) -> None:
    bundle = tmp_path / "check.zip"
    code, out, _ = _run(pg_server.dsn, "--bundle", str(bundle))
    assert code == EXIT_OK and f"bundle written to {bundle}" in out
    with zipfile.ZipFile(bundle) as archive:
        assert sorted(archive.namelist()) == ["check.log", "report.json", "report.txt"]
        assert json.loads(archive.read("report.json"))["ok"] is True
        assert "Result: all good" in archive.read("report.txt").decode()
        assert "step login: ok" in archive.read("check.log").decode()


@pytest.mark.parametrize("which", ["right", "wrong"])
def test_the_password_appears_in_no_output(
    scram_pg: EmbeddedPostgres, tmp_path: Path, caplog: pytest.LogCaptureFixture, which: str
) -> None:
    password = PASSWORD if which == "right" else PASSWORD[::-1]
    dsn = scram_pg.url(password=False).replace("postgres@", f"postgres:{password}@", 1)
    bundle = tmp_path / "b.zip"
    caplog.set_level(logging.DEBUG, logger="tether")
    code, out, err = _run(dsn, "--json", "--bundle", str(bundle))
    assert code == (EXIT_OK if which == "right" else EXIT_PROBLEMS)
    with zipfile.ZipFile(bundle) as archive:
        files = [archive.read(name).decode() for name in archive.namelist()]
    outputs = [out, err, caplog.text, *files]
    assert all(text for text in outputs)
    for text in outputs:
        assert password not in text
    assert "postgres:***@" in out
