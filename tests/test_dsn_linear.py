"""tether.dsn.parse takes time linear in the length of the string, whatever it holds.

Each shape below is built at 64 KB and at 512 KB: eight times the text may take at most
16 times as long (linear: about 8; quadratic: about 64). No absolute wall-clock is
asserted, only growth, so a slow machine does not fail it. The shapes are the ones that
once were, or could easily be, quadratic: the old redaction regex over a query full of
``password`` (128 KB took 5 s), runs of separators, '=', quotes and escapes that a
backtracking regex or a character loop would revisit, and many pairs or parameters.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import pytest

from tether.dsn import parse
from tether.errors import ConfigError

SMALL, BIG = 64 * 1024, 512 * 1024
LIMIT = 16.0

SHAPES: dict[str, Callable[[int], str]] = {
    "url: query full of 'password', bad port": lambda n: "postgresql://h:x/d?" + "password" * (n // 8),
    "url: '@' run in the user info": lambda n: "postgresql://u:" + "@" * n + "h/d",
    "url: ':' run in the user info": lambda n: "postgresql://u" + ":" * n + "@h/d",
    "url: '&' run": lambda n: "postgresql://h/d?" + "&" * n,
    "url: many parameters": lambda n: "postgresql://h/d?" + "a=1&" * (n // 4),
    "url: '%' run": lambda n: "postgresql://h/d?x=" + "%" * n,
    "url: percent-escapes": lambda n: "postgresql://h/d?x=" + "%C3%A9" * (n // 6),
    "url: raw '&' after a password": lambda n: "postgresql://h/d?password=x" + "&a" * (n // 2),
    "url: leading spaces": lambda n: " " * n + "postgresql://h/d",
    "url: a long scheme": lambda n: "a" * n + "://",
    "ado: ';' run": lambda n: "Server=h;" + ";" * n,
    "ado: spaces inside a value ending in a quote": lambda n: "Server=h;App=a" + " " * n + "b'",
    "ado: '=' run": lambda n: "Server=h;" + "=" * n,
    "ado: escaped '==' in a keyword": lambda n: "Server=h;" + "a==" * (n // 3),
    "ado: doubled quotes": lambda n: "Server=h;Password='" + "''" * (n // 2),
    "ado: doubled quotes between text": lambda n: "Server=h;Password='" + "a''" * (n // 3),
    "ado: many pairs": lambda n: "Server=h;" + "App=x;" * (n // 6),
    "ado: ODBC braces": lambda n: "Server=h;Password={" + "a;b}}c};" * (n // 8),
    "ado: a keyword without '='": lambda n: "Server=h;" + "a" * n,
    "ado: a long host": lambda n: "Server=tcp:" + "a" * n + ",1433",
    "ado: control characters": lambda n: "Server=h;App=" + "a\x01" * (n // 2),
}


def _seconds(text: str) -> float:
    """The best of three timings, each averaged over runs adding up to 10 ms at least."""
    best = float("inf")
    for _ in range(3):
        runs, start = 0, time.perf_counter()
        while True:
            with contextlib.suppress(ConfigError):
                parse(text)
            runs += 1
            elapsed = time.perf_counter() - start
            if elapsed >= 0.01:
                break
        best = min(best, elapsed / runs)
    return best


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_eight_times_the_text_takes_at_most_sixteen_times_as_long(shape: str) -> None:
    build = SHAPES[shape]
    small, big = build(SMALL), build(BIG)
    ratios = []
    for _ in range(3):  # a busy machine can stall one measurement; a quadratic parse fails every time
        ratios.append(_seconds(big) / _seconds(small))
        if ratios[-1] < LIMIT:
            return
    pytest.fail(f"{shape}: 8x the text took {min(ratios):.1f}x as long (ratios {ratios})")
