"""ADO.NET (SqlClient) connection strings: ``Server=tcp:host,1433;Database=shop;...``.

The tokenizer follows SqlClient's ``DbConnectionOptions`` rules: keywords are
case-insensitive and trimmed, ``==`` inside a keyword is a literal ``=``, values may be
quoted with ``'`` or ``"`` (a doubled quote inside is a literal one), an unquoted value
runs to the next ``;`` and may not end with a quote, empty segments are skipped, and the
last occurrence of a keyword wins. Unlike SqlClient, two different synonyms with two
different values (``User ID=a;UID=b``) are a ``ConfigError`` naming both. The keywords are in _keywords.

Messages never quote a password, nor text that may be part of one: the pair after an
unquoted password (an unquoted ';' ends a password early), and everything after a
password written in ODBC's braces (``Password={a;b}``), whose end cannot be told.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ._common import RANGES, Draft, Where, check_range, fail, is_ipv6, parse_port
from ._keywords import KEYWORDS, Keyword, unsupported

_PASSWORD_KEYS = frozenset(k for k, keyword in KEYWORDS.items() if keyword.target == "password")


@dataclass(frozen=True, slots=True)
class Pair:
    key: str  # lowercased and trimmed, as SqlClient compares keywords
    value: str | None  # None: an empty unquoted value, which means "the default"
    key_position: int
    value_position: int
    hidden: bool = False  # may be part of a password: name it by position, never quote it


# Every scan below is a find() or a regex without backtracking, so a tokenizer pass is
# linear in the length of the string, whatever it holds.
_SPACE = re.compile(r"\s*")
_SEPARATORS = re.compile(r"[;\s]*")
_EQUALS = re.compile(r"=+")
_QUOTES = {"'": re.compile(r"'+"), '"': re.compile(r'"+')}
# What unicodedata calls Cc, less what str.isspace() accepts (\t-\r, \x1c-\x1f, \x85).
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")


def tokenize(source: str) -> list[Pair]:
    pairs: list[Pair] = []
    pos = _SEPARATORS.match(source).end()
    while pos < len(source):
        key, key_position, pos = _read_key(source, pos)
        value, value_position, pos = _read_value(source, pos)
        pairs.append(Pair(key, value, key_position, value_position))
        pos = _SEPARATORS.match(source, pos).end()
    return _hide_what_may_be_passwords(source, pairs)


def _hide_what_may_be_passwords(source: str, pairs: list[Pair]) -> list[Pair]:
    """Mark the pairs that may be part of a password, so no message quotes them.

    An unquoted password ends at the first ';', so the pair after it may be the rest of a
    password holding ';'. One starting with '{' was written for ODBC, which quotes with
    braces: where it ends cannot be told, so everything after it is marked.
    """
    marked: list[Pair] = []
    doubt_next = doubt_rest = False
    for pair in pairs:
        if doubt_next or doubt_rest:
            pair = replace(pair, hidden=True)
        doubt_next = False
        if pair.key in _PASSWORD_KEYS:
            first = source[pair.value_position : pair.value_position + 1]
            doubt_next = first not in ("'", '"')
            doubt_rest = doubt_rest or first == "{"
        marked.append(pair)
    return marked


def _read_key(source: str, start: int) -> tuple[str, int, int]:
    """Up to the first lone '='; each '==' inside the keyword is a literal '='."""
    parts: list[str] = []
    pos = start
    while True:
        equals = source.find("=", pos)
        end = len(source) if equals < 0 else equals
        control = _CONTROL.search(source, pos, end)
        if control:
            raise fail("control character in a keyword", position=control.start())
        if equals < 0:
            raise fail("expected 'keyword=value'", position=start)
        run = _EQUALS.match(source, equals).end() - equals  # pairs are escapes; an odd one ends
        parts.append(source[pos:equals] + "=" * (run // 2))
        pos = equals + run
        if run % 2:
            key = "".join(parts).rstrip().lower()
            if not key:
                raise fail("empty keyword before '='", position=start)
            return key, start, pos


def _read_value(source: str, pos: int) -> tuple[str | None, int, int]:
    pos = _SPACE.match(source, pos).end()
    if pos >= len(source) or source[pos] == ";":
        return None, pos, pos + 1
    if source[pos] in "'\"":
        return _read_quoted(source, pos)
    return _read_unquoted(source, pos)


def _read_quoted(source: str, start: int) -> tuple[str, int, int]:
    """Up to the closing quote; each doubled quote inside is a literal one."""
    quote = source[start]
    parts: list[str] = []
    pos = start + 1
    while True:
        mark = source.find(quote, pos)
        end = len(source) if mark < 0 else mark
        nul = source.find("\0", pos, end)
        if nul >= 0:
            raise fail("NUL character in a quoted value", position=nul)
        if mark < 0:
            raise fail(f"unterminated {quote}-quoted value", position=start)
        run = _QUOTES[quote].match(source, mark).end() - mark
        parts.append(source[pos:mark] + quote * (run // 2))
        pos = mark + run
        if run % 2:
            return "".join(parts), start, _after_quoted(source, pos)


def _after_quoted(source: str, pos: int) -> int:
    pos = _SPACE.match(source, pos).end()
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
    for pair in tokenize(source):
        keyword = KEYWORDS.get(pair.key)
        if keyword is None:
            raise unsupported(pair.key, pair.key_position, hidden=pair.hidden)
        earlier = spelled.setdefault(keyword.name, pair)
        if earlier.key != pair.key and earlier.value != pair.value:
            # SqlClient lets the last one win; two spellings with two values is a mistake
            # to name, not to guess at (values left out: one may be a password).
            raise fail(
                f"conflicting synonyms {earlier.key!r} and {pair.key!r} give {keyword.name} two values",
                key=pair.key,
                position=pair.key_position,
            )
        spelled[keyword.name] = pair
        apply(draft, keyword, pair.value, Where(pair.key, pair.value_position, pair.hidden))
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
