"""``tether check`` with a malformed connection string: exit 2, and not one byte of the
password on stdout or stderr, in process and as a real command (whose arguments may even
hold bytes that are not UTF-8)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tether
from tether.check._cli import EXIT_USAGE, main

# A password in two halves, written with a separator between them that breaks the string.
A, B = "Zq9xJw", "Kv7jtQ8"
PIECES = {half[i : i + 4] for half in (A, B) for i in range(len(half) - 3)}

MALFORMED = [
    f"postgresql://app@db:5432/shop?password={A}@{B}",  # '@' in a query value
    f"postgresql://app@db:5432/shop?pass%77ord={A}@{B}",  # a percent-encoded key
    f"postgresql://app:{A}/{B}@db/shop",  # '/' in the user info
    f"postgresql://app:{A}#{B}@db/shop",
    f"postgresql://app:{A}%C3{B}@db/shop",  # not UTF-8 once decoded
    f"postgresql://app@db/shop?password={A}&{B}",  # a raw '&' in the value
    f"postgresql://app@db/shop?password={A}&login_timeout={B}",
    f"Server=db;Password={{{A};{B}}}}}}};Database=shop",  # ODBC's braces
    f"Server=db;Password={A};{B}",  # an unquoted ';'
    f"Server=db;Password='{A}';{B}'",  # an undoubled quote
    f"Server=db;Password={A};Encrypt={B}",
    f"Server=db;Password={A};Connect Timeout={B}",
]


def _assert_clean(text: str) -> None:
    for piece in PIECES:
        assert piece not in text, f"{piece!r} in {text!r}"


@pytest.mark.parametrize("dsn", MALFORMED)
def test_in_process(dsn: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main([dsn], out=out, err=err) == EXIT_USAGE
    assert out.getvalue() == ""
    assert err.getvalue().startswith("tether check: ")
    _assert_clean(err.getvalue())


def _run(*arguments: bytes) -> subprocess.CompletedProcess[bytes]:
    src = str(Path(tether.__file__).resolve().parent.parent)  # the tether under test
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable.encode(), b"-m", b"tether.cli", b"check", *arguments]
    return subprocess.run(command, env=env, capture_output=True, timeout=60, check=False)


@pytest.mark.parametrize(
    "argument",
    [
        MALFORMED[0].encode(),
        MALFORMED[7].encode(),
        f"postgresql://app:{A}\xff@{B}@db/shop".encode("latin-1"),  # not UTF-8: a lone surrogate in argv
        f"Server=db;Password={A}\xff;{B}=1".encode("latin-1"),
    ],
)
def test_as_a_command(argument: bytes) -> None:
    done = _run(argument)
    assert done.returncode == EXIT_USAGE, done.stderr
    assert done.stdout == b""
    assert done.stderr.startswith(b"tether check: ")
    _assert_clean(done.stderr.decode("utf-8", "backslashreplace"))
    assert b"\xff" not in done.stderr


@pytest.mark.parametrize("option", ["--port", "--dialect", "--attempts", "--timeout", "--deadline"])
def test_an_option_given_the_connection_string_by_mistake_does_not_echo_it(option: str) -> None:
    done = _run(option.encode(), f"postgresql://app:{A}{B}@db/shop".encode())
    assert done.returncode == EXIT_USAGE, done.stderr
    assert f"argument {option}: must be".encode() in done.stderr
    _assert_clean(done.stderr.decode())
