"""A small SQL scanner: statements and their words, never a regular expression over raw text.

It knows what hides words from a naive reader: ``--`` and nested ``/* */`` comments,
'string literals' (with doubled quotes, and PostgreSQL's E'' backslash escapes),
"quoted identifiers", PostgreSQL's $tag$ dollar quotes $tag$, SQL Server's [brackets]
and MySQL's `backticks`. What it yields is, per statement, the lower-cased bare words
outside all of those (quoted identifiers are yielded as ``QUOTED``), which is what the
dialects need to decide whether a statement changes the session.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

QUOTED = "\x00quoted"  # stands for any quoted identifier or literal in the word list
_WORD_START = frozenset("abcdefghijklmnopqrstuvwxyz_#@")
_WORD_CHARS = _WORD_START | frozenset("0123456789$")


class Unscannable(ValueError):
    """The text ends inside a literal or comment: no safe reading of it exists."""


@lru_cache(maxsize=512)
def statements(sql: str, *, dialect: str = "postgresql") -> tuple[tuple[str, ...], ...]:
    """Split ``sql`` into statements, each the tuple of its words (empty ones dropped).

    Cached: applications run the same texts again and again, and the proxy asks for
    every statement it sends.
    """
    return tuple(words for _, words in statement_texts(sql, dialect=dialect))


@lru_cache(maxsize=512)
def statement_texts(sql: str, *, dialect: str = "postgresql") -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Like ``statements``, each with its own text (stripped, without the ``;``): what a
    recovered session replays."""
    out: list[tuple[str, tuple[str, ...]]] = []
    words: list[str] = []
    start = 0
    for token, at in tokens(sql, dialect):
        if token == ";":
            if words:
                out.append((sql[start:at].strip(), tuple(words)))
            words = []
            start = at + 1
        else:
            words.append(token)
    if words:
        out.append((sql[start:].strip(), tuple(words)))
    return tuple(out)


def tokens(sql: str, dialect: str) -> Iterator[tuple[str, int]]:
    """Words (or ``QUOTED``) and ``;``, each with its position in ``sql``."""
    text = sql.lower()
    if len(text) != len(sql):  # a few letters (İ) grow when lower-cased: positions would drift
        raise Unscannable("text changes length when lower-cased")
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("--", i) or (c == "#" and dialect == "mysql"):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif c in _WORD_START:
            j = i + 1
            while j < n and text[j] in _WORD_CHARS:
                j += 1
            word = text[i:j]
            if j < n and text[j] == "'" and word in ("e", "x", "b", "n"):
                j = _skip_string(text, j, backslashes=word == "e")  # E'..', X'..', N'..'
                yield QUOTED, i
            else:
                yield word, i
            i = j
        elif c == "'":
            start, i = i, _skip_string(text, i, backslashes=dialect == "mysql")
            yield QUOTED, start
        elif c == '"':
            start, i = i, _skip_quoted(text, i, '"', backslashes=dialect == "mysql")
            yield QUOTED, start
        elif c == "`" and dialect == "mysql":
            start, i = i, _skip_quoted(text, i, "`", backslashes=False)
            yield QUOTED, start
        elif c == "[" and dialect == "sqlserver":
            start, i = i, _skip_quoted(text, i, "]", backslashes=False, opening=1)
            yield QUOTED, start
        elif c == "$" and dialect == "postgresql" and _dollar_tag(text, i):
            start, i = i, _skip_dollar(text, i)
            yield QUOTED, start
        elif text.startswith("/*", i):
            i = _skip_block_comment(text, i, nested=dialect != "mysql")
        elif c == ";":
            yield ";", i
            i += 1
        else:
            i += 1


def _skip_string(text: str, i: int, *, backslashes: bool) -> int:
    return _skip_quoted(text, i, "'", backslashes=backslashes)


def _skip_quoted(text: str, i: int, close: str, *, backslashes: bool, opening: int = 1) -> int:
    """Index just past the literal starting at ``i``; a doubled closer is an escape."""
    j, n = i + opening, len(text)
    while j < n:
        c = text[j]
        if backslashes and c == "\\":
            j += 2
        elif c == close:
            if j + 1 < n and text[j + 1] == close:
                j += 2
            else:
                return j + 1
        else:
            j += 1
    raise Unscannable(f"unterminated {close} literal starting at position {i}")


def _dollar_tag(text: str, i: int) -> str | None:
    j = text.find("$", i + 1)
    if j < 0:
        return None
    tag = text[i : j + 1]
    inner = tag[1:-1]
    if inner and (inner[0].isdigit() or not all(ch in _WORD_CHARS and ch != "$" for ch in inner)):
        return None  # $1 is a parameter, not a quote
    return tag


def _skip_dollar(text: str, i: int) -> int:
    tag = _dollar_tag(text, i)
    assert tag is not None
    end = text.find(tag, i + len(tag))
    if end < 0:
        raise Unscannable(f"unterminated dollar quote {tag} starting at position {i}")
    return end + len(tag)


def _skip_block_comment(text: str, i: int, *, nested: bool) -> int:
    depth, j, n = 1, i + 2, len(text)
    while j < n:
        if nested and text.startswith("/*", j):
            depth, j = depth + 1, j + 2
        elif text.startswith("*/", j):
            depth, j = depth - 1, j + 2
            if depth == 0:
                return j
        else:
            j += 1
    raise Unscannable(f"unterminated comment starting at position {i}")
