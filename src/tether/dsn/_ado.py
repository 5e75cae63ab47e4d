"""ADO.NET (SqlClient) connection strings: ``Server=tcp:host,1433;Database=shop;...``.

The tokenizer follows SqlClient's ``DbConnectionOptions`` rules: keywords are
case-insensitive and trimmed, ``==`` inside a keyword is a literal ``=``, values may be
quoted with ``'`` or ``"`` (a doubled quote inside is a literal one), an unquoted value
runs to the next ``;`` and may not end with a quote, empty segments are skipped, and the
last occurrence of a keyword wins. Unlike SqlClient, two different synonyms with two
different values (``User ID=a;UID=b``) are a ``ConfigError`` naming both. The keywords are in _keywords.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass

from ._common import RANGES, Draft, Where, check_range, fail, parse_port
from ._keywords import KEYWORDS, Keyword, unsupported


@dataclass(frozen=True, slots=True)
class Pair:
    key: str  # lowercased and trimmed, as SqlClient compares keywords
    value: str | None  # None: an empty unquoted value, which means "the default"
    key_position: int
    value_position: int


def tokenize(source: str) -> list[Pair]:
    pairs: list[Pair] = []
    pos = _skip_separators(source, 0)
    while pos < len(source):
        key, key_position, pos = _read_key(source, pos)
        value, value_position, pos = _read_value(source, pos)
        pairs.append(Pair(key, value, key_position, value_position))
        pos = _skip_separators(source, pos)
    return pairs


def _skip_separators(source: str, pos: int) -> int:
    while pos < len(source) and (source[pos] == ";" or source[pos].isspace()):
        pos += 1
    return pos


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc" and not ch.isspace()


def _read_key(source: str, start: int) -> tuple[str, int, int]:
    chars: list[str] = []
    pos = start
    while pos < len(source):
        ch = source[pos]
        if ch == "=":
            if source.startswith("==", pos):  # an escaped '=' inside the keyword
                chars.append("=")
                pos += 2
                continue
            key = "".join(chars).rstrip().lower()
            if not key:
                raise fail("empty keyword before '='", position=start)
            return key, start, pos + 1
        if _is_control(ch):
            raise fail("control character in a keyword", position=pos)
        chars.append(ch)
        pos += 1
    raise fail("expected 'keyword=value'", position=start)


def _read_value(source: str, pos: int) -> tuple[str | None, int, int]:
    while pos < len(source) and source[pos].isspace():
        pos += 1
    if pos >= len(source) or source[pos] == ";":
        return None, pos, pos + 1
    if source[pos] in "'\"":
        return _read_quoted(source, pos)
    return _read_unquoted(source, pos)


def _read_quoted(source: str, start: int) -> tuple[str, int, int]:
    quote = source[start]
    chars: list[str] = []
    pos = start + 1
    while pos < len(source):
        ch = source[pos]
        if ch == quote and source.startswith(quote * 2, pos):
            chars.append(quote)
            pos += 2
        elif ch == quote:
            return "".join(chars), start, _after_quoted(source, pos + 1)
        elif ch == "\0":
            raise fail("NUL character in a quoted value", position=pos)
        else:
            chars.append(ch)
            pos += 1
    raise fail(f"unterminated {quote}-quoted value", position=start)


def _after_quoted(source: str, pos: int) -> int:
    while pos < len(source) and source[pos].isspace():
        pos += 1
    if pos < len(source) and source[pos] != ";":
        raise fail("unexpected text after a quoted value; expected ';'", position=pos)
    return pos + 1


def _read_unquoted(source: str, start: int) -> tuple[str, int, int]:
    end = source.find(";", start)
    end = len(source) if end < 0 else end
    raw = source[start:end]
    for offset, ch in enumerate(raw):
        if _is_control(ch):
            raise fail("control character in a value", position=start + offset)
    value = raw.rstrip()
    if value[-1] in "'\"":
        raise fail("an unquoted value must not end with a quote; quote the whole value", position=start)
    return value, start, end + 1


def parse_ado(source: str) -> Draft:
    draft = Draft("sqlserver")
    spelled: dict[str, Pair] = {}  # keyword -> where it was set, to catch conflicting synonyms
    for pair in tokenize(source):
        keyword = KEYWORDS.get(pair.key)
        if keyword is None:
            raise unsupported(pair.key, pair.key_position)
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
        apply(draft, keyword, pair.value, Where(pair.key, pair.value_position))
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
        raise _only_tcp(_NETWORK_LIBRARIES.get(library, f"network library {library!r}"), where)


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
    try:
        ipaddress.IPv6Address(name.split("%", 1)[0])
    except ValueError:
        raise where.error("not a valid IPv6 address") from None
    return name.lower()
