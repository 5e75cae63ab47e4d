"""Every ``python`` block of the documentation runs, so no example drifts from the code.

The convention (docs/ and README.md): the ``python`` blocks of one page run in order in one
namespace, like a doctest session, each page on its own; one pytest item per page.
Database addresses are written with placeholder hosts and their explicit port
(``db.example.com:5432``, ``sql.example.com:1433`` or ``,1433``, ``mysql.example.com:3306``,
user ``app``, password ``secret``, database ``app``); they are rewritten here to local test
servers that have that user and database. A block preceded directly by
``<!-- snippet: skip: <reason> -->`` does not run; the reason is required. A page must close
the pools and WAN links it opens.
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import tether
from fix_system import import_driver, need_msodbc
from fix_tds import msodbc_library
from fix_wait import wait_until
from tether.testing import EmbeddedMariaDB, EmbeddedPostgres, pgbouncer_program

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md")), "README.md"]
FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)")
SKIP = re.compile(r"^<!--\s*snippet:\s*skip:(.*?)-->\s*$")
ANY_SKIP = re.compile(r"^<!--\s*snippet:")
# A host left after the rewrite would be looked up and contacted: never from the tests.
FOREIGN_HOST = re.compile(r"[\w.-]+\.(?:example\.com|database\.windows\.net)\b")
APP = ("app", "secret", "app")  # user, password, database of every placeholder address


@dataclass(frozen=True, slots=True)
class Block:
    line: int  # of the opening fence, 1-based
    code: str
    skip_reason: str | None


@dataclass(frozen=True, slots=True)
class Placeholder:
    """A placeholder address of one database family and the fixture that serves it."""

    fixture: str
    patterns: tuple[tuple[str, str], ...]  # (written, rewritten with {host} and {port})


PLACEHOLDERS = (
    Placeholder("docs_postgres", (("host=db.example.com port=5432", "host={host} port={port}"),
                                  ("db.example.com:5432", "{host}:{port}"))),
    Placeholder("docs_sqlserver", (("sql.example.com:1433", "{host}:{port}"),
                                   ("sql.example.com,1433", "{host},{port}"))),
    Placeholder("docs_mysql", (("mysql.example.com:3306", "{host}:{port}"),)),
)  # fmt: skip


def blocks(text: str) -> list[Block]:
    """The page's ``python`` blocks, in order, with their skip markers (a marker with an
    empty reason, or one not directly above a block, raises ValueError)."""
    found: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            if ANY_SKIP.match(lines[index]) and not _marks_a_block(lines, index):
                raise ValueError(f"line {index + 1}: a snippet marker goes directly above a ```python block")
            index += 1
            continue
        fence, info = opening.groups()
        closing = (i for i in range(index + 1, len(lines)) if lines[i].strip().startswith(fence))
        end = next(closing, len(lines))
        if info == "python":
            code = "\n".join(lines[index + 1 : end]) + "\n"
            found.append(Block(index + 1, code, _skip_reason(lines, index)))
        index = end + 1
    return found


def _marks_a_block(lines: list[str], index: int) -> bool:
    following = FENCE.match(lines[index + 1]) if index + 1 < len(lines) else None
    return following is not None and following.group(2) == "python"


def _skip_reason(lines: list[str], fence_index: int) -> str | None:
    above = lines[fence_index - 1] if fence_index > 0 else ""
    marker = SKIP.match(above.strip())
    if marker is None:
        if ANY_SKIP.match(above.strip()):
            raise ValueError(f"line {fence_index}: a snippet marker reads <!-- snippet: skip: <reason> -->")
        return None
    reason = marker.group(1).strip()
    if not reason:
        raise ValueError(f"line {fence_index}: a snippet skip marker needs a reason")
    return reason


def rewrite(code: str, servers: dict[str, tuple[str, int]]) -> str:
    for placeholder in PLACEHOLDERS:
        if placeholder.fixture in servers:
            host, port = servers[placeholder.fixture]
            for written, real in placeholder.patterns:
                code = code.replace(written, real.format(host=host, port=port))
    return code


def needed(code: str) -> list[str]:
    return [p.fixture for p in PLACEHOLDERS if any(written in code for written, _ in p.patterns)]


# -- the servers behind the placeholders ------------------------------------------------


@pytest.fixture(scope="session")
def docs_postgres(pg_server: EmbeddedPostgres) -> tuple[str, int]:
    """The suite's embedded PostgreSQL, with the role and database ``app``."""
    user, password, database = APP
    pg_server.start()
    if not pg_server.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)):
        pg_server.execute(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
    if not pg_server.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)):
        pg_server.execute(f"CREATE DATABASE {database} OWNER {user}")
    return pg_server.host, pg_server.port


@pytest.fixture(scope="module")
def docs_sqlserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """The suite's TDS test server, with login ``app`` and database ``app``; it offers TLS
    (a self-signed certificate), so both ``Encrypt=false`` and ``Encrypt=true;
    TrustServerCertificate=true`` work, as against a real server with its own certificate."""
    pytest.importorskip("cryptography", reason="cryptography is not installed: pip install 'tether[dev]'")
    from tdsserver import TdsServer
    from test_check_support import make_certificate

    user, password, database = APP
    cert, key = make_certificate(tmp_path_factory.mktemp("docs-tds-cert"))
    with TdsServer(users={user: password}, databases=("master", "tempdb", database),
                   tls=(str(cert), str(key))) as server:  # fmt: skip
        yield server.host, server.port


@pytest.fixture(scope="session")
def docs_mysql(mariadb: EmbeddedMariaDB) -> tuple[str, int]:
    """The suite's MariaDB, with the user and database ``app``."""
    user, password, database = APP
    mariadb.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
    mariadb.execute(f"CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{password}'")
    mariadb.execute(f"GRANT ALL ON *.* TO '{user}'@'%'")
    return mariadb.host, mariadb.port


# -- one item per page --------------------------------------------------------------------


def _page_param(page: str) -> object:
    count = len(blocks((ROOT / page).read_text(encoding="utf-8")))
    # ~10 s a block, plus starting the servers; pytest-timeout ends a page stuck past it
    return pytest.param(page, id=page, marks=pytest.mark.timeout(60 + 10 * count))


def _has_python(page: str) -> bool:
    return bool(blocks((ROOT / page).read_text(encoding="utf-8")))


@pytest.mark.parametrize("page", [_page_param(p) for p in PAGES if _has_python(p)])
def test_page_snippets_run(page: str, request: pytest.FixtureRequest) -> None:
    runnable = [b for b in blocks((ROOT / page).read_text(encoding="utf-8")) if b.skip_reason is None]
    if not runnable:
        pytest.skip(f"every python block of {page} is marked to skip")
    _skip_without_system_pieces("".join(b.code for b in runnable))
    servers = {name: request.getfixturevalue(name) for name in needed("".join(b.code for b in runnable))}
    namespace: dict[str, object] = {"__name__": "__docs__"}
    with _closes_what_it_opens(page), _mssql_python_pool_as_in_a_fresh_process():
        for block in runnable:
            code = rewrite(block.code, servers)
            foreign = FOREIGN_HOST.search(code)
            assert foreign is None, (
                f"{page}:{block.line}: {foreign.group()} would be contacted; write a placeholder with its "
                "port (db.example.com:5432, sql.example.com:1433, mysql.example.com:3306) or mark the "
                "block <!-- snippet: skip: <reason> -->"
            )
            exec(compile(code, f"{page}:{block.line}", "exec"), namespace)


def _skip_without_system_pieces(code: str) -> None:
    """A page that needs a system program or library skips, naming the command that installs
    it, as the rest of the suite does (tools/system_packages.sh installs them as root)."""
    if "EmbeddedPgBouncer" in code:
        try:
            pgbouncer_program()
        except FileNotFoundError as exc:
            pytest.skip(str(exc))
    if re.search(r"(?<![\w.])sql\.example\.com", code) or "mssql_python" in code:  # mssql:// is mssql-python
        need_msodbc(msodbc_library())
    if "pyodbc" in code:
        import_driver("pyodbc", "'tether[pyodbc]'")


@contextlib.contextmanager
def _closes_what_it_opens(page: str) -> Iterator[None]:
    pools_before = {id(p) for p in tether.pools()}
    links_before = set(_wan_threads())
    try:
        yield
    finally:
        left = [p for p in tether.pools() if id(p) not in pools_before and not p.name.startswith("implicit")]
        for pool in left:
            with contextlib.suppress(Exception):
                pool.close()  # type: ignore[attr-defined]
        tether.clear_all_pools()  # tether.connect's pools stay (by design); their connections go
    assert not left, f"{page} left pools open: {[p.name for p in left]}"
    _wait_for(lambda: not set(_wan_threads()) - links_before, f"{page}'s WAN links to close")


@contextlib.contextmanager
def _mssql_python_pool_as_in_a_fresh_process() -> Iterator[None]:
    """mssql-python turns its own pool on at its first ``connect()``, process-wide, and other
    tests (tests/tds) connect with it directly; tether refuses to pool on top of it. A page
    is read as a fresh process would run it: the driver's pool off, as tether leaves it, and
    put back afterwards."""
    manager = sys.modules.get("mssql_python.pooling")
    was_on = manager is not None and manager.PoolingManager.is_enabled()
    if was_on:
        sys.modules["mssql_python"].pooling(enabled=False)
    try:
        yield
    finally:
        if was_on:
            manager.PoolingManager.enable()  # type: ignore[union-attr]


def _wan_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "tether.wan"]


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    try:
        wait_until(condition, what=what, timeout=5.0)
    except AssertionError as exc:
        raise AssertionError(f"a page must close what it opens: {exc}") from None


# -- the parser itself --------------------------------------------------------------------


def test_blocks_are_read_with_their_markers() -> None:
    text = (
        "# t\n\n```python\na = 1\n```\n\n<!-- snippet: skip: needs Azure -->\n```python\nb = 2\n```\n"
        "```console\n$ x\n```\n````python\nc = '```'\n````\n"
    )
    found = blocks(text)
    assert [(b.line, b.code, b.skip_reason) for b in found] == [
        (3, "a = 1\n", None),
        (8, "b = 2\n", "needs Azure"),
        (14, "c = '```'\n", None),
    ]


@pytest.mark.parametrize(
    "text",
    ["<!-- snippet: skip: -->\n```python\nx = 1\n```\n", "<!-- snippet: skip:   -->\n```python\nx = 1\n```\n",
     "<!-- snippet: skip: why -->\n\n```python\nx = 1\n```\n", "<!-- snippet: skip -->\n```python\nx\n```\n"],
)  # fmt: skip
def test_a_marker_needs_a_reason_and_a_block_below(text: str) -> None:
    with pytest.raises(ValueError, match="snippet"):
        blocks(text)


def test_placeholders_are_rewritten_to_the_servers() -> None:
    code = (
        'a = "postgresql://app:secret@db.example.com:5432/app"\n'
        'b = "host=db.example.com port=5432 user=app"\n'
        'c = "Server=tcp:sql.example.com,1433;Database=app"\n'
        'd = "mssql://app:secret@sql.example.com:1433/app"\n'
        'e = "mysql://app:secret@mysql.example.com:3306/app"\n'
    )
    assert needed(code) == ["docs_postgres", "docs_sqlserver", "docs_mysql"]
    servers = {"docs_postgres": ("127.0.0.1", 1), "docs_sqlserver": ("127.0.0.1", 2),
               "docs_mysql": ("127.0.0.1", 3)}  # fmt: skip
    assert rewrite(code, servers) == (
        'a = "postgresql://app:secret@127.0.0.1:1/app"\nb = "host=127.0.0.1 port=1 user=app"\n'
        'c = "Server=tcp:127.0.0.1,2;Database=app"\nd = "mssql://app:secret@127.0.0.1:2/app"\n'
        'e = "mysql://app:secret@127.0.0.1:3/app"\n'
    )
    assert FOREIGN_HOST.search(rewrite(code, servers)) is None
    assert FOREIGN_HOST.search('tether.Pool("postgresql://app@db.example.com/shop")') is not None
