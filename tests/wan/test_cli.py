"""``tether wan`` as a command: ``link`` verbs against a live API, ``serve`` as a process."""

from __future__ import annotations

import io
import json
import re
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


# --- listings: a table, or JSON with --json ---------------------------------------------------------


def _link_with_a_toxic(api_url: str, upstream: str) -> None:
    assert _run("link", "--api", api_url, "create", "pg", "--upstream", upstream)[0] == 0
    add = ("add", "pg", "--type", "latency", "-a", "latency=30", "-a", "jitter=5", "--toxicity", "0.5")
    assert _run("link", "--api", api_url, *add)[0] == 0


def test_toxics_listing(api_url: str, echo_server) -> None:
    _link_with_a_toxic(api_url, "{}:{}".format(*echo_server.address))
    code, text = _run("link", "--api", api_url, "toxics", "pg")
    assert code == 0
    assert text.splitlines() == [
        "NAME                TYPE     STREAM      TOXICITY  ATTRIBUTES",
        "latency_downstream  latency  downstream  0.5       jitter=5 latency=30",
    ]
    code, text = _run("link", "--api", api_url, "toxics", "pg", "--json")
    assert code == 0
    assert json.loads(text) == [{"name": "latency_downstream", "type": "latency", "stream": "downstream",
                                 "toxicity": 0.5, "attributes": {"latency": 30, "jitter": 5}}]
    assert _run("link", "--api", api_url, "toxics", "nope") == (1, "error: proxy not found\n")


def test_stats_listing(api_url: str, echo_server, connect) -> None:
    from fix_wait import wait_until

    assert _run("link", "--api", api_url, "create", "pg", "--upstream",
                "{}:{}".format(*echo_server.address), "--listen", "127.0.0.1:0")[0] == 0
    listen = json.loads(_run("link", "--api", api_url, "list", "--json")[1])["pg"]["listen"]
    host, _, port = listen.rpartition(":")
    client = connect((host, int(port)))
    client.sendall(b"hello")
    assert client.recv(5) == b"hello"

    def stats() -> dict[str, int]:
        code, text = _run("link", "--api", api_url, "stats", "--json")
        assert code == 0
        return json.loads(text)["pg"]

    seen = wait_until(lambda: (s := stats())["bytes_downstream"] == 5 and s, what="5 bytes each way")
    assert seen == {"connections": 1, "bytes_upstream": 5, "bytes_downstream": 5, "buffered": 0}
    code, text = _run("link", "--api", api_url, "stats")
    assert (code, text.splitlines()) == (0, [
        "NAME  CONNECTIONS  BYTES UP  BYTES DOWN  BUFFERED",
        "pg    1            5         5           0",
    ])


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_listings_are_rich_tables_on_a_terminal(
    api_url: str, echo_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("rich", reason="rich is missing: pip install 'tether[cli]'")
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("COLUMNS", "200")
    _link_with_a_toxic(api_url, "{}:{}".format(*echo_server.address))
    for verb in (["list"], ["toxics", "pg"], ["stats"]):
        tty, plain, json_tty = _Terminal(), _Terminal(), _Terminal()
        assert main(["link", "--api", api_url, *verb], out=tty) == 0
        assert main(["link", "--api", api_url, *verb, "--plain"], out=plain) == 0
        assert main(["link", "--api", api_url, *verb, "--json"], out=json_tty) == 0
        assert "\033[1m" in tty.getvalue() and "─" in tty.getvalue(), verb  # bold headers, a rule
        assert "\033[" not in plain.getvalue() and "─" not in plain.getvalue(), verb
        assert "\033[" not in json_tty.getvalue()  # JSON is always plain
        json.loads(json_tty.getvalue())
        # The same cells either way.
        cells = [line.split() for line in plain.getvalue().splitlines()]
        styled = re.sub(r"\x1b\[[0-9;]*m", "", tty.getvalue())
        rows = [line.split() for line in styled.splitlines() if line.strip() and "─" not in line]
        assert rows == cells, verb
