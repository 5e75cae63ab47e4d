"""ADO.NET (SqlClient) connection strings: ``Server=tcp:host,1433;Database=shop;...``.

The tokenizer follows SqlClient's ``DbConnectionOptions`` rules: keywords are
case-insensitive and trimmed, ``==`` inside a keyword is a literal ``=``, values may be
quoted with ``'`` or ``"`` (a doubled quote inside is a literal one), an unquoted value
runs to the next ``;`` and may not end with a quote, empty segments are skipped, and the
last occurrence of a keyword wins. Unlike SqlClient, two different synonyms with two
different values (``User ID=a;UID=b``) are a ``ConfigError`` naming both. The keywords are in _keywords.

Messages never quote a password, nor anything after one: a password written unquoted
ends at the first ';', one quoted with an undoubled quote inside ends at that quote, and
one written for ODBC (``Password={a;b}}c}``) ends wherever SqlClient's rules end it, so
the text after a password may be the rest of it. Pairs after the first password are
*hidden*: a message names them by position and by the keyword's canonical spelling (for
known keywords), never by the text written there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from ._common import MAX_PAIRS, RANGES, Draft, Where, check_range, fail, is_ipv6, parse_port
from ._keywords import KEYWORDS, Keyword, unsupported

_PASSWORD_KEYS = frozenset(k for k, keyword in KEYWORDS.items() if keyword.target == "password")


class Pair(NamedTuple):
    key: str  # lowercased and trimmed, as SqlClient compares keywords
    value: str | None  # None: an empty unquoted value, which means "the default"
    key_position: int
    value_position: int
    hidden: bool = False  # after a password, so perhaps the rest of it: never quoted


# What unicodedata calls Cc, less what str.isspace() accepts (\t-\r, \x1c-\x1f, \x85).
_C = r"\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f"
_CONTROL = re.compile(f"[{_C}]")
_SPACE = re.compile(r"\s*")
_SEPARATORS = re.compile(r"[;\s]*")
_RUNS = {mark: re.compile(f"{mark}+") for mark in "='\""}  # where '==' or a doubled quote may be
# One plain pair, as SqlClient reads it, after any separators: a keyword up to an '=',
# then a value quoted with ' or ", or unquoted up to the next ';' (trimmed, not ending with
# a quote), or empty. No repeated groups, and no two neighbouring pieces can match the
# same character (a keyword does not start with a separator, an unquoted value neither
# starts nor ends with a space), so even a failing match is linear. What it does not
# match (an escaped '==' in the keyword, a doubled quote in a value, a mistake) is read
# by hand below, run by run.
_PAIR = re.compile(
    rf"""
    [;\s]*
    ( [^=;\s{_C}] [^={_C}]* ) =(?!=)                           # 1: the keyword
    \s* ()                                                     # 2: where the value starts
    (?:
        ' ( [^'\x00]* ) ' \s*                                   # 3: '-quoted
      | " ( [^"\x00]* ) " \s*                                   # 4: "-quoted
      | ( [^;'"\s{_C}] (?: [^;{_C}]* [^;'"\s{_C}] )? ) \s*     # 5: unquoted
    )?
    (?: ; | \Z )
    """,
    re.VERBOSE,
)


def tokenize(source: str) -> Iterator[Pair]:
    """The pairs of an ADO string, in order, as they are read (so the first bad one stops
    the parse). One regex match per well-formed pair; a pair it does not match is read
    again by hand, which says what is wrong and where."""
    after_password = False
    pos, end, match_pair = 0, len(source), _PAIR.match
    while True:
        match = match_pair(source, pos)
        if match is not None:
            key, _, single, double, bare = match.groups()
            key = key.rstrip().lower()
            value = bare if bare is not None else single if single is not None else double
            key_position, value_position, pos = match.start(1), match.start(2), match.end()
        else:  # not a plain pair, or only separators left
            pos = _skip(_SEPARATORS, source, pos)
            if pos >= end:
                return
            key, key_position, after_key = _read_key(source, pos)  # raises, unless the regex
            value, value_position, pos = _read_value(source, after_key)  # is stricter than SqlClient
        yield Pair(key, value, key_position, value_position, after_password)
        after_password = after_password or key in _PASSWORD_KEYS


def _skip(pattern: re.Pattern[str], source: str, pos: int) -> int:
    """Past what ``pattern``, which also matches the empty string, matches at ``pos``."""
    match = pattern.match(source, pos)
    assert match is not None
    return match.end()


def _read_key(source: str, start: int) -> tuple[str, int, int]:
    """Up to the first lone '=' (the last of an odd run); each '==' is a literal '='."""
    end = _odd_run_end(_RUNS["="], source, start)
    control = _CONTROL.search(source, start, len(source) if end is None else end)
    if control:
        raise fail("control character in a keyword", position=control.start())
    if end is None:
        raise fail("expected 'keyword=value'", position=start)
    key = source[start:end].replace("==", "=").rstrip().lower()
    if not key:
        raise fail("empty keyword before '='", position=start)
    return key, start, end + 1


def _odd_run_end(runs: re.Pattern[str], source: str, start: int) -> int | None:
    """Where the first run of odd length (of '=' or of a quote) from ``start`` has its
    last character: the runs before it are escapes, two characters for one."""
    for run in runs.finditer(source, start):
        if (run.end() - run.start()) % 2:
            return run.end() - 1
    return None


def _read_value(source: str, pos: int) -> tuple[str | None, int, int]:
    pos = _skip(_SPACE, source, pos)
    if pos >= len(source) or source[pos] == ";":
        return None, pos, pos + 1
    if source[pos] in "'\"":
        return _read_quoted(source, pos)
    return _read_unquoted(source, pos)


def _read_quoted(source: str, start: int) -> tuple[str, int, int]:
    """Up to the closing quote (the last of an odd run); each doubled quote is a literal one."""
    quote = source[start]
    end = _odd_run_end(_RUNS[quote], source, start + 1)
    nul = source.find("\0", start + 1, len(source) if end is None else end)
    if nul >= 0:
        raise fail("NUL character in a quoted value", position=nul)
    if end is None:
        raise fail(f"unterminated {quote}-quoted value", position=start)
    return source[start + 1 : end].replace(quote * 2, quote), start, _after_quoted(source, end + 1)


def _after_quoted(source: str, pos: int) -> int:
    pos = _skip(_SPACE, source, pos)
    if pos < len(source) and source[pos] != ";":
        raise fail("unexpected text after a quoted value; expected ';'", position=pos)
    return pos + 1


def _read_unquoted(source: str, start: int) -> tuple[str, int, int]:
    end = source.find(";", start)
    end = len(source) if end < 0 else end
    control = _CONTROL.search(source, start, end)
    if control:
        raise fail("control character in a value", position=control.start())
    value = source[start:end].rstrip()
    if value[-1] in "'\"":
        raise fail("an unquoted value must not end with a quote; quote the whole value", position=start)
    return value, start, end + 1


def parse_ado(source: str) -> Draft:
    draft = Draft("sqlserver")
    spelled: dict[str, Pair] = {}  # keyword -> where it was set, to catch conflicting synonyms
    for count, pair in enumerate(tokenize(source), 1):
        if count > MAX_PAIRS:
            raise fail(f"more than {MAX_PAIRS} keyword=value pairs: not a connection string",
                       position=pair.key_position)  # fmt: skip
        keyword = KEYWORDS.get(pair.key)
        if keyword is None:
            raise unsupported(pair.key, pair.key_position, hidden=pair.hidden)
        # A pair after the password is named by the keyword's own spelling, never the text.
        key = keyword.name.lower() if pair.hidden else pair.key
        earlier = spelled.setdefault(keyword.name, pair)
        if earlier.key != pair.key and earlier.value != pair.value:
            # SqlClient lets the last one win; two spellings with two values is a mistake
            # to name, not to guess at (values left out: one may be a password). Both
            # spellings are keywords, so neither is text the parser cannot vouch for.
            raise fail(
                f"conflicting synonyms {earlier.key!r} and {pair.key!r} give {keyword.name} two values",
                key=key,
                position=pair.key_position,
            )
        spelled[keyword.name] = pair
        apply(draft, keyword, pair.value, Where(key, pair.value_position, pair.hidden))
    if draft.fields.get("host") is None:
        raise fail("a SQL Server connection string needs Server=host (or Data Source)", key="server")
    _cross_check(draft)
    return draft


def apply(draft: Draft, keyword: Keyword, value: str | None, where: Where) -> None:
    """Set one keyword's value on the draft; ``None`` puts back the default."""
    if keyword.target == "server":
        _apply_server(draft, value, where)
    elif keyword.target == "network_library":
        _check_network_library(value, where)
    elif not value:  # empty: back to the default, as in SqlClient
        (draft.options if keyword.option else draft.fields).pop(keyword.target, None)
    elif keyword.target == "password":
        draft.fields["password"] = value  # never converted, so never quoted in a message
    else:
        converted = keyword.convert(value, where)
        if keyword.target in RANGES and isinstance(converted, (int, float)):
            check_range(converted, where, keyword.target)
        if keyword.option:
            draft.options[keyword.target] = option_text(converted)
        else:
            draft.fields[keyword.target] = converted


def option_text(value: object) -> str:
    """An option's value in one spelling, so equal settings make equal pool keys."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _apply_server(draft: Draft, value: str | None, where: Where) -> None:
    for name in ("host", "port", "instance"):
        draft.fields.pop(name, None)
    if value:
        host, port, instance = parse_server(value, where)
        found = {"host": host, "port": port, "instance": instance}
        draft.fields.update((k, v) for k, v in found.items() if v is not None)


def _cross_check(draft: Draft) -> None:
    # SqlClient refuses both at once: Integrated Security means Windows authentication.
    if draft.options.get("integrated_security") == "true" and "authentication" in draft.options:
        raise fail(
            "Authentication and Integrated Security=true cannot be used together",
            key="authentication",
        )


_PROTOCOLS = {
    "tcp": "TCP",
    "np": "named pipes",
    "lpc": "shared memory",
    "sm": "shared memory",
    "admin": "the dedicated admin connection",
    "via": "VIA",
}
_NETWORK_LIBRARIES = {"dbmssocn": "TCP", "dbnmpntw": "named pipes", "dbmslpcn": "shared memory"}


def _only_tcp(what: str, where: Where) -> Exception:
    return where.error(
        f"{what} is not supported: tether reaches SQL Server over TCP only (write Server=tcp:host,port)"
    )


def _check_network_library(value: str | None, where: Where) -> None:
    library = (value or "dbmssocn").strip().lower()
    if library != "dbmssocn":
        raise _only_tcp(_NETWORK_LIBRARIES.get(library, f"network library {where.show(library)}"), where)


def parse_server(value: str, where: Where) -> tuple[str, int | None, str | None]:
    """``[tcp:]host[\\instance][,port]`` into host, port and instance."""
    rest = value.strip()
    prefix = re.match(r"([A-Za-z]+):(?!:)", rest)
    if prefix and prefix.group(1).lower() in _PROTOCOLS:
        protocol = prefix.group(1).lower()
        if protocol != "tcp":
            raise _only_tcp(f"{_PROTOCOLS[protocol]} ({protocol}:)", where)
        rest = rest[prefix.end() :].strip()
    if rest.lower().startswith("(localdb)"):
        raise _only_tcp("LocalDB (reached through named pipes)", where)
    port: int | None = None
    if "," in rest:
        rest, _, port_text = rest.rpartition(",")
        at = None if where.position is None else where.position + value.rfind(",") + 1
        port = parse_port(port_text, Where("port", at))
    name, backslash, instance = rest.partition("\\")
    if backslash and not instance.strip():
        raise where.error("empty instance name after '\\'")
    return _server_host(name.strip(), where), port, instance.strip().upper() or None


def _server_host(name: str, where: Where) -> str:
    if "," in name:
        raise where.error("several servers are not supported yet; give one host")
    if name.startswith("[") and name.endswith("]"):
        return _ipv6(name[1:-1], where)
    if name.lower() in ("(local)", ".", ""):
        if not name:
            raise where.error("no host name")
        return "localhost"  # SqlClient's spellings of this machine
    if name.count(":") == 1:
        raise where.error("the port follows a comma in SQL Server strings: Server=host,1433")
    if name.count(":") > 1:
        return _ipv6(name, where)
    if re.search(r"[\s;/@\\'\"]", name):
        raise where.error("invalid character in the host name")
    return name.lower()


def _ipv6(name: str, where: Where) -> str:
    if not is_ipv6(name.split("%", 1)[0]):
        raise where.error("not a valid IPv6 address")
    return name.lower()
