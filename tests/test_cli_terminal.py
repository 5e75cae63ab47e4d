"""The terminal decisions (tether._term) and the ``tether`` command on a real pseudo-terminal:
colour and a spinner there, a closed pipe still quiet (141) while the spinner runs, and rich
never needed by the library."""

from __future__ import annotations

import io
import os
import pty
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tether._term import INSTALL_HINT, decide, plain_table
from tether.check._cli import EXIT_PROBLEMS
from tether.cli import EXIT_INTERRUPTED, EXIT_PIPE_CLOSED
from tether.testing import free_port
from tether.wan import Link

ROOT = Path(__file__).resolve().parents[1]
SRC = str(ROOT / "src")
NO_RICH = "import sys; sys.modules['rich'] = None; "  # an interpreter without rich: ImportError


class _Stream(io.StringIO):
    def __init__(self, terminal: bool) -> None:
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


# --- the decisions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("terminal", "plain", "environ", "fancy", "colour"),
    [
        (False, False, {"TERM": "xterm"}, False, False),  # a pipe or a file
        (True, False, {"TERM": "xterm"}, True, True),
        (True, True, {"TERM": "xterm"}, False, False),  # --plain
        (True, False, {"TERM": "xterm", "NO_COLOR": "1"}, True, False),  # the spinner stays
        (True, False, {"TERM": "xterm", "NO_COLOR": ""}, True, True),  # empty: not set (no-color.org)
        (True, False, {"TERM": "dumb"}, False, False),  # no cursor movement there
        (True, False, {"TERM": "xterm", "FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"}, True, True),
        (False, False, {"TERM": "xterm", "FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"}, False, False),
    ],
)
def test_decide(terminal: bool, plain: bool, environ: dict[str, str], fancy: bool, colour: bool) -> None:
    pytest.importorskip("rich", reason="rich is missing: pip install 'tether[cli]'")
    term = decide(_Stream(terminal), plain=plain, environ=environ)
    assert (term.terminal, term.fancy, term.colour, term.hint) == (terminal, fancy, colour, None)


def test_decide_without_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)
    on_terminal = decide(_Stream(True), environ={"TERM": "xterm"})
    assert (on_terminal.fancy, on_terminal.colour, on_terminal.hint) == (False, False, INSTALL_HINT)
    assert decide(_Stream(False), environ={}).hint is None  # a pipe wanted nothing fancy
    assert decide(_Stream(True), plain=True, environ={}).hint is None  # nor did --plain


def test_width_from_columns_when_the_stream_has_no_size() -> None:
    assert decide(_Stream(True), environ={"COLUMNS": "132"}).width == 132
    assert decide(_Stream(True), environ={"COLUMNS": "x"}).width == 80


def test_plain_table() -> None:
    text = plain_table(("NAME", "TYPE", "NOTE"), [("pg", "latency", "a b"), ("mysql-primary", "-", "")])
    assert text == "NAME           TYPE     NOTE\npg             latency  a b\nmysql-primary  -        \n"


# --- packaging: rich is optional ------------------------------------------------------------------


def test_rich_is_an_extra_never_a_dependency() -> None:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(dep.startswith("rich") for dep in project["dependencies"])
    extras = project["optional-dependencies"]
    assert extras["cli"] == ["rich>=13"]
    for extra in ("check", "demo"):
        assert "rich>=13" in extras[extra], extra
    assert "cli" in extras["all"][0]


def test_the_library_and_its_commands_import_without_rich() -> None:
    code = (NO_RICH + "import tether, tether.cli, tether.check, tether.wan, tether._term, "
            "tether.check._cli, tether.check._view, tether.wan._cli; print('imported')")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": SRC},
                          capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "imported\n", "")


# --- on a pseudo-terminal -------------------------------------------------------------------------


def _on_a_terminal(
    code: str, *, stdout: int | None = None, interrupt_at: str | None = None
) -> tuple[int, str]:
    """Run ``code`` with its standard error (and output, unless given) on a pseudo-terminal;
    return its exit code and everything the terminal received. ``interrupt_at``: the text
    after which it gets a SIGINT, as Ctrl-C sends."""
    controller, device = pty.openpty()
    environ = {**os.environ, "PYTHONPATH": SRC, "TERM": "xterm"}
    environ.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                            stdout=device if stdout is None else stdout, stderr=device, env=environ)
    os.close(device)
    received = b""
    try:
        for _ in range(10_000):  # until the process closes the terminal (EIO), bounded
            ready, _, _ = select.select([controller], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: every writer of the terminal is gone
                break
            if not chunk:
                break
            received += chunk
            if interrupt_at is not None and interrupt_at in received.decode(errors="replace"):
                proc.send_signal(signal.SIGINT)
                interrupt_at = None
        returncode = proc.wait(60)
    finally:
        os.close(controller)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    return returncode, received.decode(errors="replace")


def _cursor_back(shown: str) -> bool:
    """The live display hid the cursor and showed it again after."""
    return shown.rfind("\x1b[?25h") > shown.rfind("\x1b[?25l") >= 0


def _check_code(*argv: str, prefix: str = "") -> str:
    args = [*argv, "--attempts", "1", "--timeout", "1", "--resolver", "127.0.0.1:9"]
    return prefix + f"from tether.cli import main; raise SystemExit(main(['check', *{args!r}]))"


def test_colour_and_a_spinner_on_a_real_terminal() -> None:
    pytest.importorskip("rich", reason="rich is missing: pip install 'tether[cli]'")
    code, shown = _on_a_terminal(_check_code(f"postgresql://u@127.0.0.1:{free_port()}/db"))
    assert code == EXIT_PROBLEMS
    assert "\x1b[?25l" in shown and _cursor_back(shown)
    assert "[\x1b[31mFAIL\x1b[0m] tcp" in shown
    assert "listen_addresses" in shown and INSTALL_HINT not in shown


def test_without_rich_a_real_terminal_gets_plain_text_and_the_hint() -> None:
    code, shown = _on_a_terminal(_check_code(f"mysql://u@127.0.0.1:{free_port()}/db", prefix=NO_RICH))
    assert code == EXIT_PROBLEMS
    lines = shown.splitlines()
    assert lines[0] == INSTALL_HINT
    assert lines[1].startswith("tether check mysql://u@127.0.0.1:")
    assert "\x1b[" not in shown
    assert any(line.startswith("[FAIL] tcp") for line in lines) and "bind-address" in shown


def test_a_closed_pipe_while_the_spinner_runs_ends_quietly() -> None:
    """``tether check ... --json | head -c0``: the JSON reader went away at once, while the
    spinner runs on the terminal (standard error): exit 141, no traceback, the cursor back."""
    pytest.importorskip("rich", reason="rich is missing: pip install 'tether[cli]'")
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the check starts
    try:
        code, shown = _on_a_terminal(_check_code(f"postgresql://u@127.0.0.1:{free_port()}/db", "--json"),
                                     stdout=write)
    finally:
        os.close(write)
    assert code == EXIT_PIPE_CLOSED
    assert "tcp      connecting to 127.0.0.1:" in shown  # the spinner ran
    assert "Traceback" not in shown and "BrokenPipeError" not in shown, shown
    assert _cursor_back(shown)


def test_ctrl_c_while_the_spinner_runs_ends_quietly() -> None:
    pytest.importorskip("rich", reason="rich is missing: pip install 'tether[cli]'")
    with socket.create_server(("127.0.0.1", 0)) as upstream, Link(upstream=upstream.getsockname()) as link, \
            link.blackhole():
        host, port = link.listen_address
        code, shown = _on_a_terminal(_check_code(f"postgresql://u@{host}:{port}/db"),
                                     interrupt_at="tls      trying TLS with")
    assert code == EXIT_INTERRUPTED
    assert "Traceback" not in shown and "KeyboardInterrupt" not in shown, shown
    assert _cursor_back(shown)
