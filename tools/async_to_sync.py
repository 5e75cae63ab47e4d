"""Generate tether's threaded modules from their asyncio sources.

    python tools/async_to_sync.py           # rewrite every generated file
    python tools/async_to_sync.py --check   # exit 1 if one is stale or a rule went unused

The async module is the one written by hand (``x_async.py``); its threaded twin (``x.py``)
is generated and says so in its first line. Where threads and asyncio really differ, the
source calls ``tether._acompat`` (a waiter, background tasks, a sleep), whose async
names map to sync ones here. The pass works on Python's tokens, not on text, so a rule
never rewrites part of a word, and on the tree only for imports:

- ``await x`` becomes ``x``; ``async def/with/for`` lose ``async``;
- names are renamed by ``NAMES`` (identifiers, and the same words in strings and
  comments, so docstrings read right);
- ``Awaitable[T]`` and ``Coroutine[A, B, T]`` become ``T``;
- ``await x.set_autocommit(v)`` (psycopg's async setters) becomes ``x.autocommit = v``;
- imported names no longer used are dropped, and imports are sorted again (ruff's
  isort order), so the generated file passes the same lint as the source.

httpcore's ``scripts/unasync.py`` (a regex table) and psycopg's ``tools/async_to_sync.py``
(an AST pass) do the same job; tokens keep the source's layout and comments exactly.
"""

from __future__ import annotations

import argparse
import ast
import io
import re
import sys
import tokenize
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# source (async, edited by hand) -> generated (threads)
FILES = {
    "src/tether/_retry/_wrap_async.py": "src/tether/_retry/_wrap.py",
    "src/tether/drivers/_base_async.py": "src/tether/drivers/_base.py",
    "src/tether/drivers/psycopg_async.py": "src/tether/drivers/psycopg.py",
    "src/tether/pool/_opening_async.py": "src/tether/pool/_opening.py",
    "src/tether/pool/_pool_async.py": "src/tether/pool/_pool.py",
    "src/tether/pool/_transaction_async.py": "src/tether/pool/_transaction.py",
    "src/tether/session/_proxy_async.py": "src/tether/session/_proxy.py",
    "src/tether/session/_recovery_async.py": "src/tether/session/_recovery.py",
    "tests/test_command_timeout_async.py": "tests/test_command_timeout.py",
    "tests/test_faults_async.py": "tests/test_faults.py",
    "tests/test_pool_async.py": "tests/test_pool.py",
    "tests/test_twins_async.py": "tests/test_twins.py",
}

# async name -> sync name, for identifiers and for the same words in strings and comments
NAMES = {
    # tether._acompat: where threads and asyncio differ
    "AOPENS_AT_ONCE": "OPENS_AT_ONCE",
    "AEvent": "Event",
    "AsyncOnly": "Blocking",
    "ATasks": "Tasks",
    "AWaiter": "Waiter",
    "ablocking_refused": "blocking_refused",
    "ashield": "shield",
    "acall_within": "call_within",
    "asleep": "sleep",
    "await_fd": "wait_fd",
    "needs_loop": "anywhere",
    "running_loop": "no_loop",
    # tests (tests/fix_twins.py, tests/fix_wait.py)
    "abackend_pid": "backend_pid",
    "adriver": "driver",  # the fixture: each PostgreSQL driver the pool runs on
    "adsn": "dsn",  # the fixture: the test server's URL for each of them
    "awan_dsn": "wan_dsn",  # the fixture: that URL through the WAN emulator's link
    "arun": "run",
    "athread": "thread",
    "ABackground": "Background",
    "async_wait_until": "wait_until",
    "avalue": "value",
    "psycopg_async": "psycopg",
    # retry
    "retrying_async": "retrying",
    # drivers
    "AsyncDriver": "Driver",
    "_base_async": "_base",
    "PsycopgAsync": "Psycopg",
    # session
    "AsyncConnection": "Connection",
    "AsyncCursor": "Cursor",
    "AsyncOwner": "Owner",
    "AsyncIterator": "Iterator",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "_proxy_async": "_proxy",
    "_recovery_async": "_recovery",
    # pool
    "AsyncPool": "Pool",
    "AsyncBorrow": "Borrow",
    "async-pool": "pool",
    "load_async_driver": "load_driver",
    "_opening_async": "_opening",
    "_pool_async": "_pool",
    "_transaction_async": "_transaction",
    "async_transactional": "transactional",
    "async_run_transaction": "run_transaction",
    "async_run_until_done": "run_until_done",
    "afinish_hook": "finish_hook",
}
# psycopg's async setters: ``await conn.set_x(v)`` is ``conn.x = v`` on a sync connection
SETTERS = {"set_autocommit": "autocommit", "set_read_only": "read_only"}
UNWRAP = {"Awaitable": 0, "Coroutine": 2}  # generic -> which argument the sync type is

Offset = Callable[[tuple[int, int]], int]  # a token position -> an index into the text
BANNER = "# Generated from {source} by tools/async_to_sync.py: edit that file instead.\n"


class Rules:
    """The renames, and how often each was used (a rule used nowhere is stale)."""

    def __init__(self) -> None:
        self.used: Counter[str] = Counter()
        longest_first = sorted(NAMES, key=len, reverse=True)
        self._words = re.compile(r"\b(" + "|".join(map(re.escape, longest_first)) + r")\b")

    def name(self, word: str) -> str:
        if word in NAMES:
            self.used[word] += 1
            return NAMES[word]
        if word in SETTERS:
            self.used[word] += 1
        return word

    def text(self, text: str) -> str:
        """Strings and comments: the same renames, and no ``await``/``async`` words."""

        def rename(match: re.Match[str]) -> str:
            self.used[match.group(1)] += 1
            return NAMES[match.group(1)]

        text = self._words.sub(rename, text)
        text = re.sub(r"\bawait (?=\S)", "", text)
        return re.sub(r"\basync (def|with|for)\b", r"\1", text)


def convert(source: str, rules: Rules, *, origin: str) -> str:
    """The threaded module for ``source``."""
    code = _rewrite_tokens(source, rules)
    code = _fix_imports(code)
    return BANNER.format(source=Path(origin).name) + code


# -- tokens -------------------------------------------------------------------------------


def _rewrite_tokens(source: str, rules: Rules) -> str:
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(pos: tuple[int, int]) -> int:
        return starts[pos[0] - 1] + pos[1]

    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    edits: list[tuple[int, int, str]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok.type == tokenize.NAME and tok.string == "await":
            if nxt is not None and _is_setter_call(tokens, i + 1):
                i = _rewrite_setter(tokens, i, edits, offset, rules)
                continue
            end = offset(nxt.start) if nxt is not None and nxt.start[0] == tok.end[0] else offset(tok.end)
            edits.append((offset(tok.start), end, ""))
        elif tok.type == tokenize.NAME and tok.string == "async" and nxt is not None \
                and nxt.string in ("def", "with", "for"):
            edits.append((offset(tok.start), offset(nxt.start), ""))
        elif tok.type == tokenize.NAME and tok.string in UNWRAP and nxt is not None and nxt.string == "[":
            _unwrap(tokens, i, edits, offset)
        elif tok.type == tokenize.NAME:
            new = rules.name(tok.string)
            if new != tok.string:
                edits.append((offset(tok.start), offset(tok.end), new))
        elif tok.type in (tokenize.STRING, tokenize.COMMENT):
            new = rules.text(tok.string)
            if new != tok.string:
                edits.append((offset(tok.start), offset(tok.end), new))
        i += 1
    return _apply(source, edits)


def _apply(source: str, edits: list[tuple[int, int, str]]) -> str:
    out, at = [], 0
    for start, end, text in sorted(edits):
        if start < at:  # nested in an edit already made (a name inside an unwrapped generic)
            continue
        out.append(source[at:start])
        out.append(text)
        at = end
    out.append(source[at:])
    return "".join(out)


def _matching(tokens: list[tokenize.TokenInfo], i: int) -> int:
    """Index of the bracket closing the one at ``i``."""
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j].string in "([{" and tokens[j].type == tokenize.OP:
            depth += 1
        elif tokens[j].string in ")]}" and tokens[j].type == tokenize.OP:
            depth -= 1
            if depth == 0:
                return j
    raise ValueError(f"unbalanced bracket at line {tokens[i].start[0]}")


def _unwrap(tokens: list[tokenize.TokenInfo], i: int, edits: list[tuple[int, int, str]], at: Offset) -> None:
    """``Awaitable[T]`` -> ``T``: drop the generic's name, brackets and other arguments."""
    open_, close = i + 1, _matching(tokens, i + 1)
    commas, depth = [], 0
    for j in range(open_ + 1, close):
        s = tokens[j].string
        if s in "([{" and tokens[j].type == tokenize.OP:
            depth += 1
        elif s in ")]}" and tokens[j].type == tokenize.OP:
            depth -= 1
        elif s == "," and depth == 0:
            commas.append(j)
    keep = UNWRAP[tokens[i].string]
    bounds = [open_, *commas, close]
    first, last = bounds[keep] + 1, bounds[keep + 1] - 1
    edits.append((at(tokens[i].start), at(tokens[first].start), ""))
    edits.append((at(tokens[last].end), at(tokens[close].end), ""))


def _is_setter_call(tokens: list[tokenize.TokenInfo], i: int) -> bool:
    """``await <name>.set_x(`` ... ``)`` as a whole statement."""
    j = i
    while j + 1 < len(tokens) and tokens[j].type == tokenize.NAME and tokens[j + 1].string == ".":
        j += 2
    return (j > i and tokens[j].string in SETTERS and j + 1 < len(tokens) and tokens[j + 1].string == "("
            and tokens[_matching(tokens, j + 1) + 1].type in (tokenize.NEWLINE, tokenize.COMMENT))


def _rewrite_setter(tokens: list[tokenize.TokenInfo], i: int, edits: list[tuple[int, int, str]],
                    at: Offset, rules: Rules) -> int:
    j = i + 1
    while tokens[j].string not in SETTERS:
        j += 1
    close = _matching(tokens, j + 1)
    rules.name(tokens[j].string)
    edits.append((at(tokens[i].start), at(tokens[i + 1].start), ""))
    edits.append((at(tokens[j].start), at(tokens[j + 2].start), SETTERS[tokens[j].string] + " = "))
    edits.append((at(tokens[close].start), at(tokens[close].end), ""))
    return close + 1


# -- imports ------------------------------------------------------------------------------


def _fix_imports(code: str) -> str:
    """Drop imported names the sync code no longer uses; sort what is left (ruff's isort)."""
    tree = ast.parse(code)
    lines = code.splitlines(keepends=True)
    used = _words_outside_imports(code, tree)
    edits: list[tuple[int, int, str]] = []
    for body in _bodies(tree):
        for run in _import_runs(body):
            text = _render_run(run, used, lines)
            first, last = run[0].lineno, run[-1].end_lineno
            assert last is not None
            indent = re.match(r"\s*", lines[first - 1]).group(0)  # type: ignore[union-attr]
            text = "".join(indent + line + "\n" for line in text) if text else ""
            edits.append((first, last, text))
    for first, last, text in sorted(edits, reverse=True):
        lines[first - 1:last] = [text] if text else []
    return "".join(lines)


def _bodies(tree: ast.AST) -> list[list[ast.stmt]]:
    found = []
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                found.append(body)
    return found


def _import_runs(body: list[ast.stmt]) -> list[list[ast.Import | ast.ImportFrom]]:
    """Consecutive import statements with no blank line between them (one isort section)."""
    runs: list[list[ast.Import | ast.ImportFrom]] = []
    run: list[ast.Import | ast.ImportFrom] = []
    for stmt in body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)) and (
            not run or stmt.lineno == (run[-1].end_lineno or 0) + 1
        ):
            run.append(stmt)
            continue
        if run:
            runs.append(run)
        run = [stmt] if isinstance(stmt, (ast.Import, ast.ImportFrom)) else []
    if run:
        runs.append(run)
    return runs


def _words_outside_imports(code: str, tree: ast.Module) -> Counter[str]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            skip.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    words: Counter[str] = Counter()
    for number, line in enumerate(code.splitlines(), 1):
        if number not in skip:
            words.update(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", line))
    return words


def _render_run(run: list[ast.Import | ast.ImportFrom], used: Counter[str], lines: list[str]) -> list[str]:
    rendered: list[tuple[tuple[object, ...], list[str]]] = []
    for stmt in run:
        comment = _trailing_comment(lines[(stmt.end_lineno or stmt.lineno) - 1])
        if isinstance(stmt, ast.Import):
            names = [a for a in stmt.names if used[(a.asname or a.name).split(".")[0]]]
            if names:
                text = "import " + ", ".join(_alias(a) for a in names)
                rendered.append(((0, names[0].name.lower()), [text + comment]))
            continue
        future = stmt.module == "__future__"
        kept = [a for a in stmt.names if future or a.name == "*" or used[a.asname or a.name]]
        if not kept:
            continue
        kept.sort(key=lambda a: _name_key(a.name))
        module = "." * stmt.level + (stmt.module or "")
        head = f"from {module} import "
        one = head + ", ".join(_alias(a) for a in kept) + comment
        if len(one) <= 110:
            body = [one]
        else:
            body = [head + "(" + comment] + [f"    {_alias(a)}," for a in kept] + [")"]
        rendered.append(((1, -stmt.level, (stmt.module or "").lower()), body))
    rendered.sort(key=lambda item: item[0])
    return [line for _, body in rendered for line in body]


def _alias(alias: ast.alias) -> str:
    return alias.name if alias.asname is None else f"{alias.name} as {alias.asname}"


def _name_key(name: str) -> tuple[int, str]:
    # ruff's isort with order-by-type: CONSTANTS, then Classes, then everything else
    if name.isupper() and len(name) > 1:
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name.lower())


def _trailing_comment(line: str) -> str:
    match = re.search(r"\s+#.*$", line.rstrip("\n"))
    return match.group(0) if match else ""


# -- the command ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/async_to_sync.py")
    parser.add_argument("--check", action="store_true", help="fail if a file is stale or a rule unused")
    args = parser.parse_args(argv)
    rules = Rules()
    stale = []
    for source, target in FILES.items():
        wanted = convert((ROOT / source).read_text(), rules, origin=source)
        path = ROOT / target
        if path.exists() and path.read_text() == wanted:
            continue
        stale.append(target)
        if not args.check:
            path.write_text(wanted)
    unused = [name for name in (*NAMES, *SETTERS) if not rules.used[name]]
    problems = []
    if args.check and stale:
        problems.append(f"stale, run tools/async_to_sync.py: {', '.join(stale)}")
    if unused:
        problems.append(f"rules that no source uses (remove them): {', '.join(unused)}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
