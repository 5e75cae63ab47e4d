"""The ``tether`` command's basics: --version, a closed pipe, help text, and ``tether check``'s
progress: a line as each step starts, shown at once even when the host is blackholed."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether import __version__
from tether.check._cli import EXIT_PROBLEMS
from tether.check._cli import main as check_main
from tether.cli import EXIT_PIPE_CLOSED, main, plain_help
from tether.testing import EmbeddedPostgres

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _tether(*argv: str, **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.Popen([sys.executable, "-m", "tether.cli", *argv], env=env, text=True,
                            **kwargs)  # type: ignore[call-overload]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"tether {__version__}\n"


def test_version_as_a_command() -> None:
    proc = _tether("--version", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, out, err) == (0, f"tether {__version__}\n", "")


@pytest.mark.parametrize("argv", [
    ["--help"], ["check", "--help"], ["wan", "--help"], ["wan", "link", "--help"],
    ["wan", "link", "list", "--help"], ["wan", "serve", "--help"],
])
def test_help_has_no_rest_markup(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "usage: tether" in text
    assert "``" not in text


def test_plain_help() -> None:
    assert plain_help("\nThe ``tether`` command: ``a\nb``.\n") == "The tether command: a\nb."


def test_a_closed_pipe_ends_quietly(blackholed: int) -> None:
    """``tether check ... | head -1``: the reader goes away after one line (the blackholed port
    keeps the check running a second longer, so it surely writes to the closed pipe)."""
    read, write = os.pipe()
    proc = _tether("check", f"postgresql://u@127.0.0.1:{blackholed}/db", "--attempts", "1", "--timeout", "1",
                   "--resolver", "127.0.0.1:9", stdout=write, stderr=subprocess.PIPE)
    os.close(write)
    with os.fdopen(read) as reader:
        first = reader.readline()  # then close it, as head -1 does
    _, err = proc.communicate(timeout=60)
    assert first.startswith("tether check postgresql://u@127.0.0.1:")
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert err == ""
    assert proc.returncode == EXIT_PIPE_CLOSED


def test_a_closed_pipe_with_a_shell(blackholed: int) -> None:
    code = (f"PYTHONPATH={SRC} {sys.executable} -m tether.cli check postgresql://u@127.0.0.1:{blackholed}/db "
            "--attempts 1 --timeout 1 --resolver 127.0.0.1:9 | head -1; echo \"exit ${PIPESTATUS[0]}\"")
    done = subprocess.run(["bash", "-c", code], capture_output=True, text=True, timeout=60, check=False)
    first, last = done.stdout.splitlines()
    assert first.startswith("tether check ")
    assert last == f"exit {EXIT_PIPE_CLOSED}"
    assert done.stderr == ""


# --- progress ---------------------------------------------------------------------------------


class _Writes(io.StringIO):
    """A stream that keeps each write apart, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)

    def first(self, prefix: str) -> int:
        return next(n for n, text in enumerate(self.writes) if text.startswith(prefix))


@pytest.fixture
def blackholed() -> Iterator[int]:
    """A loopback port whose connects hang: its listen queue is full and never accepted from."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    held = socket.create_connection(("127.0.0.1", port), timeout=2)  # fills the queue
    try:
        probe = socket.socket()
        probe.settimeout(0.3)
        with probe, pytest.raises(TimeoutError):
            probe.connect(("127.0.0.1", port))
        yield port
    finally:
        held.close()
        server.close()


def test_progress_shows_at_once_on_a_blackholed_host(blackholed: int) -> None:
    """The start line is written, on its own, before the hanging connect ends (its content
    shown while it hangs is tested through the WAN emulator in test_cli_check_live.py)."""
    out, err = _Writes(), io.StringIO()
    code = check_main([f"postgresql://u@127.0.0.1:{blackholed}/db", "--attempts", "1", "--timeout", "3",
                       "--resolver", "127.0.0.1:9"], out=out, err=err)
    assert code == EXIT_PROBLEMS
    assert out.first("[ .. ] tcp") < out.first("[FAIL] tcp")
    text = out.getvalue()
    doing = f"connecting to 127.0.0.1:{blackholed} (1 connect, 3 s timeout each) (up to 3 s)"
    assert f"[ .. ] tcp      {doing}" in text
    assert "time out" in text and "listen_addresses" in text
    assert "\033[" not in text  # not a terminal: no colour


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_on_a_terminal_unless_plain(
    pg_server: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("rich", reason="rich is missing: pip install 'tether[cli]'")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    argv = [pg_server.dsn, "--attempts", "1", "--timeout", "2", "--resolver", "127.0.0.1:9"]
    tty = _Terminal()
    assert check_main(argv, out=tty, err=io.StringIO()) == 0
    assert "\033[32m ok \033[0m" in tty.getvalue()
    assert "\033[?25l" in tty.getvalue()  # rich's live display hid the cursor...
    assert tty.getvalue().endswith("\033[?25h\r")  # ... and showed it again at the end
    plain = _Terminal()
    assert check_main([*argv, "--plain"], out=plain, err=io.StringIO()) == 0
    assert "\033[" not in plain.getvalue() and "\r" not in plain.getvalue()
    assert "[ .. ] login" in plain.getvalue()
