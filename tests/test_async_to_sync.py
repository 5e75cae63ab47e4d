"""tools/async_to_sync.py: the threaded twins are current, and the pass does what it says."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("async_to_sync", ROOT / "tools" / "async_to_sync.py")
assert _spec is not None and _spec.loader is not None
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)


def convert(source: str) -> str:
    out: str = tool.convert(source, tool.Rules(), origin="src/x_async.py")
    return out.split("\n", 1)[1]  # without the banner


def test_generated_sync_modules_are_current_and_every_rule_is_used() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "async_to_sync.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_the_banner_names_the_source() -> None:
    out = tool.convert("x = 1\n", tool.Rules(), origin="src/tether/pool/_pool_async.py")
    assert out.startswith("# Generated from _pool_async.py by tools/async_to_sync.py")


def test_await_and_async_keywords_go_and_layout_stays() -> None:
    source = (
        "async def f(pool):  # keep this comment\n"
        "    async with pool.connection() as conn:\n"
        "        async for row in conn:\n"
        "            await  conn.execute(row)\n"
        "    return await g(\n"
        "        1,\n"
        "    )\n"
    )
    assert convert(source) == (
        "def f(pool):  # keep this comment\n"
        "    with pool.connection() as conn:\n"
        "        for row in conn:\n"
        "            conn.execute(row)\n"
        "    return g(\n"
        "        1,\n"
        "    )\n"
    )


def test_names_are_renamed_as_whole_tokens_in_code_strings_and_comments() -> None:
    source = 'x = AsyncPool(); y = AsyncPoolish; z = "the AsyncPool"  # AsyncPool here\n'
    assert convert(source) == 'x = Pool(); y = AsyncPoolish; z = "the Pool"  # Pool here\n'


def test_awaitable_and_coroutine_unwrap_to_their_result_type() -> None:
    source = (
        "from collections.abc import Awaitable, Callable, Coroutine\n"
        "from typing import Any\n"
        "\n"
        "f: Callable[[int], Awaitable[dict[str, int]]]\n"
        "g: Callable[..., Coroutine[Any, Any, list[int]]]\n"
    )
    assert convert(source) == (
        "from collections.abc import Callable\n"
        "\n"
        "f: Callable[[int], dict[str, int]]\n"
        "g: Callable[..., list[int]]\n"
    )


def test_psycopg_async_setters_become_assignments() -> None:
    assert convert("async def f(conn):\n    await conn.set_autocommit(True)\n") == (
        "def f(conn):\n    conn.autocommit = True\n"
    )


def test_imports_are_dropped_when_unused_and_sorted_again() -> None:
    source = (
        "import asyncio\n"
        "from .._acompat import asleep, AWaiter\n"
        "from ._pool_async import AsyncPool, Borrowed\n"
        "\n"
        "async def f():\n"
        "    await asleep(AWaiter, AsyncPool, Borrowed)\n"
    )
    assert convert(source) == (
        "from .._acompat import Waiter, sleep\n"
        "from ._pool import Borrowed, Pool\n"
        "\n"
        "def f():\n"
        "    sleep(Waiter, Pool, Borrowed)\n"
    )


def test_a_rule_that_no_source_uses_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(tool.NAMES, "NoSuchAsyncName", "NoSuchName")
    assert tool.main(["--check"]) == 1


def test_the_readme_names_every_generated_file_and_its_source() -> None:
    text = (ROOT / "README.md").read_text()
    table = text.split("**Generated files.**", 1)[1].split("\n\n")[1]  # the paragraph after it
    pairs = set()
    for row in table.splitlines()[2:]:  # after the header and its rule
        generated, source = (_path(cell.split("`")[1]) for cell in row.strip("|").split("|"))
        pairs.add((source, generated))
    assert pairs == set(tool.FILES.items())


def _path(name: str) -> str:
    """The README's ``pool/_pool.py`` is ``src/tether/pool/_pool.py``; tests are named whole."""
    return name if name.startswith("tests/") else f"src/tether/{name}"
