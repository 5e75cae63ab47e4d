"""The pytest plugin as a user's suite meets it: docs/wan.md's example, run by pytest.

The example is taken from the page (the ``python`` block that defines a test using
``tether_postgres``), written to a fresh directory and run by a pytest of its own, in a
subprocess, which finds the plugin through its entry point as any installed suite would.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tether.testing import postgres_bin_dir

pytest_plugins = ["pytester"]

WAN_PAGE = Path(__file__).resolve().parent.parent / "docs" / "wan.md"


def _example() -> str:
    blocks = re.findall(r"^```python\n(.*?)^```", WAN_PAGE.read_text(), flags=re.S | re.M)
    found = [block for block in blocks if "def test_" in block and "tether_postgres" in block]
    assert len(found) == 1, f"docs/wan.md should have one pytest example using tether_postgres: {found}"
    return found[0]


def test_the_pages_pytest_example_passes(pytester: pytest.Pytester) -> None:
    try:
        postgres_bin_dir()
    except FileNotFoundError as exc:
        pytest.skip(f"no embedded PostgreSQL: {exc}")
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'tether[postgresql]'")
    pytester.makepyfile(test_example=_example())
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 2 and not outcomes.get("failed") and not outcomes.get("errors"), (
        result.stdout.str()
    )


def test_tether_postgres_skips_naming_the_extra_without_pgserver(pytester: pytest.Pytester) -> None:
    # A suite where pgserver cannot be found: the fixture skips and says what installs it.
    pytester.makeconftest(
        "import importlib.util\n"
        "_find = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda name, *a: None if name == 'pgserver' else _find(name, *a)\n"
    )
    pytester.makepyfile(test_it="def test_needs_pg(tether_postgres):\n    pass\n")
    result = pytester.runpytest_subprocess("-q", "-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*tether_postgres needs an embedded PostgreSQL*tether[[]embedded[]]*"])
