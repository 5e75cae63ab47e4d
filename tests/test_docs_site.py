"""The documentation site: it builds without a warning, every page is in its navigation
and reachable from README.md, and the generated settings page is current."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if "hooks" not in p.parts)
LINK = re.compile(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)")


def _nav_pages() -> list[str]:
    yaml = pytest.importorskip("yaml", reason="PyYAML (with mkdocs) is missing: pip install 'tether[docs]'")

    class Loader(yaml.SafeLoader):  # mkdocs.yml may hold !!python/name tags; none is needed here
        pass

    Loader.add_multi_constructor("", lambda loader, suffix, node: None)
    config = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)
    found: list[str] = []

    def walk(entry: object) -> None:
        if isinstance(entry, str):
            found.append(entry)
        elif isinstance(entry, list):
            for item in entry:
                walk(item)
        elif isinstance(entry, dict):
            for value in entry.values():
                walk(value)

    walk(config["nav"])
    return found


def _links(page: Path) -> set[Path]:
    """The local .md pages ``page`` links to, resolved."""
    text = page.read_text(encoding="utf-8")
    return {(page.parent / target).resolve() for target in LINK.findall(text) if "://" not in target}


@pytest.mark.slow
def test_the_site_builds_without_a_warning(tmp_path: Path) -> None:
    for module, package in (("mkdocs", "mkdocs"), ("material", "mkdocs-material"),
                            ("mkdocstrings_handlers.python", "mkdocstrings[python]")):  # fmt: skip
        pytest.importorskip(module, reason=f"{package} is not installed: pip install 'tether[docs]'")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    assert "WARNING" not in result.stderr, result.stderr[-4000:]
    assert (tmp_path / "site" / "reference" / "settings" / "index.html").is_file()
    api = (tmp_path / "site" / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    assert "getconn" in api  # mkdocstrings rendered the pool's methods from their docstrings
    assert ":class:" not in api  # the Sphinx roles became code (docs/hooks/sphinx_roles.py)


def test_every_page_is_in_the_nav() -> None:
    nav = _nav_pages()
    assert sorted(set(nav)) == PAGES, "pages under docs/ and the nav of mkdocs.yml differ"
    assert len(nav) == len(set(nav)), "a page is twice in the nav"


def test_every_page_is_reachable_from_the_readme() -> None:
    """README.md links docs/index.md (or a page); from there links lead to every page."""
    seen: set[Path] = set()
    todo = [p for p in _links(ROOT / "README.md") if DOCS in p.parents]
    assert (DOCS / "index.md").resolve() in todo, "README.md does not link docs/index.md"
    while todo:
        page = todo.pop()
        if page in seen or not page.is_file():
            continue
        seen.add(page)
        todo.extend(_links(page))
    missing = [p for p in PAGES if (DOCS / p).resolve() not in seen]
    assert not missing, f"not reachable by links from README.md: {missing}"


def test_the_settings_page_is_generated_from_the_current_code() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_settings_ref.py"), "--check"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_the_settings_page_lists_every_pool_argument() -> None:
    import inspect

    import tether

    page = (DOCS / "reference" / "settings.md").read_text(encoding="utf-8")
    for name in inspect.signature(tether.Pool.__init__).parameters:
        if name not in ("self", "dsn"):
            assert f"| `{name}` |" in page, name


def test_sphinx_roles_become_markdown() -> None:
    pytest.importorskip("griffe", reason="griffe is not installed: pip install 'tether[docs]'")
    import importlib.util

    spec = importlib.util.spec_from_file_location("sphinx_roles", DOCS / "hooks" / "sphinx_roles.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = "See :class:`~tether.ConfigError` and :func:`tether.parse`::\n\n    code\n\nTree.\n\n::\n\n    a\n"
    markdown = "See `ConfigError` and `tether.parse`:\n\n    code\n\nTree.\n\n\n    a\n"
    assert module.plain_roles(text) == markdown
