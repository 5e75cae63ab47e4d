"""``tether wan`` as a command: ``link`` verbs against a live API, ``serve`` as a process."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tether.wan import Emulator
from tether.wan._cli import main


@pytest.fixture
def api_url() -> Iterator[str]:
    with Emulator(api_port=0) as emu:
        assert emu.api_url is not None
        yield emu.api_url


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_link_verbs(api_url: str, echo_server) -> None:
    upstream = "{}:{}".format(*echo_server.address)
    code, text = _run("link", "--api", api_url, "create", "pg", "--upstream", upstream)
    assert code == 0
    assert json.loads(text)["name"] == "pg"
    code, text = _run("link", "--api", api_url, "add", "pg", "--type", "latency", "-a", "latency=30")
    assert (code, json.loads(text)["attributes"]["latency"]) == (0, 30)
    code, text = _run("link", "--api", api_url, "list")
    assert code == 0
    assert "pg" in text and "latency_downstream" in text
    assert _run("link", "--api", api_url, "disable", "pg")[0] == 0
    assert _run("link", "--api", api_url, "remove", "pg", "latency_downstream")[0] == 0
    assert _run("link", "--api", api_url, "reset")[0] == 0
    assert _run("link", "--api", api_url, "delete", "pg")[0] == 0


def test_exit_codes(api_url: str) -> None:
    code, text = _run("link", "--api", api_url, "delete", "nope")
    assert (code, text) == (1, "error: proxy not found\n")
    code, text = _run("link", "--api", api_url, "add", "x", "--type", "latency", "-a", "oops")
    assert code == 2 and "KEY=VALUE" in text
    assert _run("link", "--api", "http://127.0.0.1:1", "list")[0] == 3
    assert main(["bogus"]) == 2


def test_serve_runs_until_sigterm() -> None:
    code = "from tether.wan._cli import main; raise SystemExit(main(['serve', '--port', '0']))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "control API on http://127.0.0.1:" in line
        url = line.split(" on ")[1].split()[0]
        assert _run("link", "--api", url, "list")[0] == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


def test_link_list_json(api_url: str, echo_server) -> None:
    upstream = "{}:{}".format(*echo_server.address)
    assert _run("link", "--api", api_url, "create", "pg", "--upstream", upstream)[0] == 0
    code, text = _run("link", "--api", api_url, "list", "--json")
    assert code == 0
    doc = json.loads(text)
    assert doc["pg"]["upstream"] == upstream and doc["pg"]["enabled"] is True
    code, text = _run("link", "--api", api_url, "list")
    assert code == 0 and text.startswith("NAME")
