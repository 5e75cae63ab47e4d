"""``tether check``'s progress as a user sees it: a line (plain) or a spinner (rich) for the
step that hangs on a blackholed WAN link, shown while it hangs; the same words in both
outputs; plain text without rich, with a hint on a terminal; ``NO_COLOR``."""

from __future__ import annotations

import io
import re
import socket
import sys
import threading
from collections.abc import Iterator

import pytest

from fix_wait import wait_until
from tether._term import INSTALL_HINT
from tether.check._cli import EXIT_PROBLEMS, main
from tether.testing import free_port
from tether.wan import Link

_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_MS = re.compile(r"\(\d+ ms\)$|in \d+\.\d s$")  # durations differ from run to run


class _Screen(io.StringIO):
    """An output stream that sets ``seen`` as soon as ``watch_for`` is written to it."""

    def __init__(self, watch_for: str, *, terminal: bool) -> None:
        super().__init__()
        self.watch_for, self.terminal, self.seen = watch_for, terminal, threading.Event()

    def isatty(self) -> bool:
        return self.terminal

    def write(self, text: str) -> int:
        written = super().write(text)
        if self.watch_for in self.getvalue():
            self.seen.set()
        return written


def _lines(raw: str) -> list[str]:
    """What a terminal keeps: the text between carriage returns and newlines, escapes removed."""
    parts = (_ESCAPE.sub("", part).rstrip() for part in re.split(r"[\r\n]", raw))
    return [part for part in parts if part.strip()]


def _kept(raw: str) -> list[str]:
    """The lines that stay once the check is over (a spinner's lines are replaced), durations cut."""
    lines = [line for line in _lines(raw) if not line.startswith(("[ .. ]", *"⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"))]
    return [_MS.sub("", line).rstrip() for line in lines]


@pytest.fixture
def blackholed_link() -> Iterator[Link]:
    """A WAN link whose connects succeed and then nothing comes back: TLS and the login hang."""
    upstream = socket.create_server(("127.0.0.1", 0))  # accepts into its backlog, never answers
    with upstream, Link(upstream=upstream.getsockname()) as link, link.blackhole():
        yield link


@pytest.fixture
def terminal_env(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("rich", reason="rich is missing: pip install 'tether[cli]'")
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping: the words compare line by line
    monkeypatch.delenv("NO_COLOR", raising=False)


def _check_while_it_hangs(link: Link, screen: _Screen) -> tuple[int, str]:
    """Run the check; as soon as its TLS step holds a connection through the blackholed link,
    take what the screen shows. Returns the exit code and that snapshot."""
    host, port = link.listen_address
    snapshot: list[str] = []

    def watch() -> None:
        if screen.seen.wait(30):
            wait_until(lambda: link.connection_count >= 1, timeout=30, what="the TLS step's connection")
            snapshot.append(screen.getvalue())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    code = main([f"postgresql://u@{host}:{port}/db", "--attempts", "1", "--timeout", "3",
                 "--resolver", "127.0.0.1:9"], out=screen, err=io.StringIO())
    watcher.join(30)
    assert snapshot, "the TLS step never started, or never connected through the link"
    return code, snapshot[0]


def test_plain_progress_shows_the_hanging_step_while_it_hangs(blackholed_link: Link) -> None:
    screen = _Screen("[ .. ] tls", terminal=False)
    code, during = _check_while_it_hangs(blackholed_link, screen)
    assert code == EXIT_PROBLEMS
    host, port = blackholed_link.listen_address
    assert f"[ .. ] tls      trying TLS with {host}:{port} (up to 6 s)" in during.splitlines()
    assert "[FAIL] tls" not in during  # the step is still running: the user sees what it waits for
    lines = screen.getvalue().splitlines()
    starts = [n for n, line in enumerate(lines) if line.startswith("[ .. ] ")]
    ends = [n for n, line in enumerate(lines) if re.match(r"\[( ok |WARN|FAIL|skip|INC!)\] ", line)]
    assert len(starts) == len(ends) == 8
    assert all(start < end for start, end in zip(starts, ends, strict=True))  # each start before its end
    assert any("did not answer the SSLRequest" in line for line in lines)
    assert "\033[" not in screen.getvalue()


def test_rich_spinner_shows_the_hanging_step_while_it_hangs(
    blackholed_link: Link, terminal_env: None
) -> None:
    screen = _Screen("tls      trying TLS with", terminal=True)
    code, during = _check_while_it_hangs(blackholed_link, screen)
    assert code == EXIT_PROBLEMS
    assert "\033[?25l" in during  # a live display runs (the cursor is hidden)
    shown = _lines(during)
    spinning = re.compile(r"^\S tls      trying TLS with .* \(up to 6 s\) +\d:\d\d:\d\d$")  # time spent
    assert any(spinning.match(line) for line in shown)
    assert not any(line.startswith("[FAIL] tls") for line in shown)
    after = screen.getvalue()
    assert "[\033[31mFAIL\033[0m] tls" in after  # coloured once it ends
    assert after.endswith("\033[?25h\r")  # the cursor is back


def _run(argv: list[str], stream: io.StringIO) -> int:
    return main([*argv, "--attempts", "1", "--timeout", "1", "--resolver", "127.0.0.1:9"], out=stream,
                err=io.StringIO())


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_rich_and_plain_say_the_same(terminal_env: None) -> None:
    """A closed port: every result, piece of advice and action is the same text in both."""
    dsn = f"sqlserver://u@127.0.0.1:{free_port()}/db"
    plain, fancy = io.StringIO(), _Terminal()
    assert _run([dsn], plain) == _run([dsn], fancy) == EXIT_PROBLEMS
    assert "\033[31m" in fancy.getvalue()
    assert _kept(fancy.getvalue()) == _kept(plain.getvalue())
    assert any("TCP/IP is enabled" in line for line in _kept(plain.getvalue()))


def test_no_color_keeps_the_spinner_and_drops_the_colour(
    terminal_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    tty = _Terminal()
    assert _run([f"mysql://u@127.0.0.1:{free_port()}/db"], tty) == EXIT_PROBLEMS
    assert "\033[?25l" in tty.getvalue()
    assert not re.search(r"\x1b\[[0-9;]*m", tty.getvalue()), "a colour or style code with NO_COLOR set"
    assert any(line.startswith("[FAIL] tcp") for line in _kept(tty.getvalue()))


def test_plain_flag_on_a_terminal(terminal_env: None) -> None:
    tty = _Terminal()
    assert _run([f"postgresql://u@127.0.0.1:{free_port()}/db", "--plain"], tty) == EXIT_PROBLEMS
    assert "\033[" not in tty.getvalue() and INSTALL_HINT not in tty.getvalue()
    assert "[ .. ] tcp" in tty.getvalue()


def test_without_rich_the_same_plain_text_and_a_hint_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)  # what an interpreter without rich does: ImportError
    monkeypatch.setenv("TERM", "xterm")
    dsn = f"postgresql://u@127.0.0.1:{free_port()}/db"
    tty, pipe = _Terminal(), io.StringIO()
    assert _run([dsn], tty) == _run([dsn], pipe) == EXIT_PROBLEMS
    first, *rest = tty.getvalue().splitlines()
    assert first == INSTALL_HINT == "tip: pip install 'tether[cli]' for colour and live progress"
    assert "\033[" not in tty.getvalue()
    assert [_MS.sub("", x) for x in rest] == [_MS.sub("", x) for x in pipe.getvalue().splitlines()]
    assert INSTALL_HINT not in pipe.getvalue()  # not a terminal: no hint
