"""Connection URLs: ``scheme[+driver]://[user[:password]@]host[:port][/database][?key=value&...]``.

Parsed by hand rather than with ``urllib.parse`` so that every error can name its position,
and so that a password with an unescaped ``@``, ``/``, ``?`` or ``#`` is refused instead of
being silently split into a host, a path or a query.

An error message carries the URL with every secret as ``***``. Secrets are found by
position, from the URL's shape alone, never by searching the text for something that looks
like one, and under every reading a malformed URL allows:

* the password in the user info: from the first ':' to the '@' before the host, which is
  the first '@' when the URL is well formed (any later '@' is in the query) and may be the
  last one when it is not (a password holding a raw '@', '/', '?' or '#');
* a port that is not a number, and with no '@' anywhere everything after it
  (``postgresql://app:S3cr/et`` may be a user and a password without the ``@host``);
* in the query (read from the first '?', and from the first after the last '@'): from the
  value of the first parameter whose key is or may be a secret (``password``,
  ``sslpassword``, ``pass%77ord``, or a key that does not decode) to the end, as a value
  holding a raw '&' runs on into what reads as the next parameters.

The parameters after such a secret are *hidden* (``Where.hidden``): their errors name them
by position, and by a setting's own name when the key is one, never by the text written.
"""

from __future__ import annotations

import re

from ..errors import ConfigError
from ._common import MAX_PAIRS, Draft, Where, fail, is_ipv6, is_secret_key, parse_port, printable, quoted
from ._settings import apply_named, set_host, vouched_name

SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9_.+-]*)://")
SCHEMES = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mssql": "sqlserver",
    "sqlserver": "sqlserver",
    "mysql": "mysql",
    "mariadb": "mysql",
}
_ENCODE_HINT = "percent-encode '@', '/', '?', '#' and '%' in user names and passwords"
_SHOWN = 300  # characters of the URL a message shows; the position points past them

Span = tuple[int, int]
_PORT = re.compile(r"[0-9]{1,5}")


def looks_like_url(source: str) -> bool:
    return SCHEME.match(source) is not None


def redact_text(source: str) -> str:
    """The URL for an error message: never the password, even when the URL is malformed."""
    match = SCHEME.match(source)
    if match is None:
        return "<connection string>"
    shown = _masked(source, match.start(1), secret_spans(source, match.end()))
    if len(shown) > _SHOWN:
        shown = f"{shown[:_SHOWN]}... ({len(shown)} characters)"
    return printable(shown)


def parse_url(source: str) -> Draft:
    text = source.rstrip()
    try:
        return _parse(text)
    except ConfigError as exc:
        message = f"{exc} in {redact_text(text)}"
        raise ConfigError(message, key=exc.key, position=exc.position) from exc


# --- where the secrets are ----------------------------------------------------------------


def secret_spans(source: str, start: int) -> list[Span]:
    """Every span that is or may be a secret, under each reading of the URL's shape."""
    end = _authority_end(source, start)
    first_at = source.find("@", start, end)
    spans = _password_span(source, start, first_at) + _query_secrets(source, source.find("?", start))
    spans += _bad_port_span(source, max(start, first_at + 1), end, "@" not in source[start:])
    last_at = source.rfind("@", start)
    if last_at > first_at:  # perhaps a password holding '@', '/', '?' or '#' ends there
        spans += _password_span(source, start, last_at)
        spans += _query_secrets(source, source.find("?", last_at))
    return spans


def _password_span(source: str, start: int, at: int) -> list[Span]:
    colon = source.find(":", start, at) if at >= 0 else -1
    return [(colon + 1, at)] if colon >= 0 else []


def _bad_port_span(source: str, start: int, end: int, hostless: bool) -> list[Span]:
    """What follows the host (``start``-``end``) when it is not ``:port``. With no '@'
    anywhere, from there to the end of the URL: ``postgresql://app:S3cr/et`` may be a user
    and a password without the ``@host``, and where such a password ends is unknown."""
    if source.startswith("[", start):  # as _bracketed reads it
        close = source.find("]", start, end)
        begin = start + 1 if close < 0 else close + 1
    else:  # as _parse_hostport reads it: a second ':' is as wrong as a bad port
        begin = source.find(":", start, end)
        if begin < 0:
            return []
    if begin == end or (source.startswith(":", begin) and _PORT.fullmatch(source, begin + 1, end)):
        return []
    begin += source.startswith(":", begin)
    return [(begin, len(source) if hostless else end)]


def _query_secrets(source: str, question: int) -> list[Span]:
    """From the value of the first parameter whose key is or may be a secret to the end.
    Past the parser's limit on parameters, everything: it is not looked at."""
    if question < 0:
        return []
    pos = question + 1
    segments = source[pos:].split("&", MAX_PAIRS)
    for segment in segments[:MAX_PAIRS]:
        raw_key, equals, _ = segment.partition("=")
        if _may_be_secret(raw_key):
            return [(pos + len(raw_key) + len(equals), len(source))]
        pos += len(segment) + 1
    return [(pos, len(source))] if len(segments) > MAX_PAIRS else []


def _may_be_secret(raw_key: str) -> bool:
    key = _unquote(raw_key, plus=True)
    return key is None or is_secret_key(key)  # undecodable: it may have meant one


def _masked(source: str, start: int, spans: list[Span]) -> str:
    pieces: list[str] = []
    pos = start
    for begin, end in _merged(spans):
        pieces += [source[pos:begin], "***"]
        pos = end
    pieces.append(source[pos:])
    return "".join(pieces)


def _merged(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for begin, end in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((begin, end))
    return merged


# --- parsing ------------------------------------------------------------------------------


def _parse(source: str) -> Draft:
    match = SCHEME.match(source)
    assert match is not None  # looks_like_url said so
    draft = _scheme(match.group(1), match.start(1))
    start = match.end()
    _check_reserved(source, start)
    end = _authority_end(source, start)
    _check_authority(source, start, end)
    _parse_authority(draft, source, start, end)
    query = source.find("?", end)
    query = len(source) if query < 0 else query
    _parse_path(draft, source, end, query)
    _parse_query(draft, source, query)
    return draft


def _scheme(name: str, position: int) -> Draft:
    base, plus, driver = name.partition("+")
    dialect = SCHEMES.get(base.lower())
    if dialect is None:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise fail(f"unknown URL scheme {base!r}; expected one of {known}, optionally with "
                   "+driver", key="scheme", position=position)  # fmt: skip
    if plus and (not driver or "+" in driver):
        raise fail("expected scheme+driver, e.g. postgresql+psycopg://", key="driver",
                   position=position)  # fmt: skip
    return Draft(dialect, driver or None)


def _check_reserved(source: str, start: int) -> None:
    hash_mark = source.find("#", start)
    if hash_mark >= 0:
        raise fail(f"unexpected '#'; {_ENCODE_HINT}", position=hash_mark)


def _authority_end(source: str, start: int) -> int:
    ends = [i for i in (source.find("/", start), source.find("?", start)) if i >= 0]
    return min(ends, default=len(source))


def _check_authority(source: str, start: int, end: int) -> None:
    stray = source.find("@", end)
    if stray >= 0:  # a password's '/' or '?' cut the authority short
        raise fail(f"unexpected '@' after the host; {_ENCODE_HINT}", position=stray)
    first = source.find("@", start, end)
    second = source.find("@", first + 1, end) if first >= 0 else -1
    if second >= 0:
        raise fail(f"more than one '@' before the host; {_ENCODE_HINT}", position=second)


_ESCAPES = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


def _unquote(text: str, *, plus: bool = False) -> str | None:
    """Percent-decoded UTF-8 (``+`` a space when ``plus``), or None if it is not UTF-8.

    ``urllib.parse.unquote`` with ``errors="surrogatepass"``, at C speed: each run of
    escapes is decoded in one step (a run cut short is invalid UTF-8 either way), where
    unquote loops in Python over every '%'. Encoded lone surrogates pass, as
    ConnectionSpec.redacted() writes them.
    """
    if plus:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    try:
        return _ESCAPES.sub(_decode_run, text)
    except UnicodeDecodeError:
        return None


def _decode_run(run: re.Match[str]) -> str:
    return bytes.fromhex(run[0].replace("%", "")).decode("utf-8", "surrogatepass")


def _decode(text: str, where: Where, *, plus: bool = False) -> str:
    decoded = _unquote(text, plus=plus)
    if decoded is None:  # raised here, not in the except: the UnicodeDecodeError holds the bytes
        raise where.error("invalid percent-encoding (not UTF-8)")
    return decoded


def _parse_authority(draft: Draft, source: str, start: int, end: int) -> None:
    at = source.find("@", start, end)
    if at >= 0:
        user, colon, password = source[start:at].partition(":")
        draft.fields["user"] = _decode(user, Where("user", start)) or None
        if colon:
            where = Where("password", start + len(user) + 1)
            draft.fields["password"] = _decode(password, where) or None
        start = at + 1
    _parse_hostport(draft, source[start:end], start)


def _parse_hostport(draft: Draft, text: str, position: int) -> None:
    if text.startswith("["):
        host, port_text = _bracketed(text, position)
    elif "," in text:
        raise fail("several hosts are not supported yet; give one host", key="host",
                   position=position + text.index(","))  # fmt: skip
    else:
        host, _, port_text = text.rpartition(":") if ":" in text else (text, "", "")
        if ":" in host:
            raise fail("an IPv6 address goes in brackets: [::1]:5432", key="host",
                       position=position)  # fmt: skip
        host = _decode(host, Where("host", position))
    if host:
        set_host(draft, host, Where("host", position))
    if port_text:
        port_position = position + len(text) - len(port_text)
        draft.fields["port"] = parse_port(port_text, Where("port", port_position))


def _bracketed(text: str, position: int) -> tuple[str, str]:
    close = text.find("]")
    after = text[close + 1 :] if close >= 0 else ""
    if close < 0 or (after and not after.startswith(":")):
        raise fail("malformed bracketed IPv6 host", key="host", position=position)
    host = _decode(text[1:close], Where("host", position))
    if not is_ipv6(host.split("%", 1)[0]):
        raise fail("not a valid IPv6 address", key="host", position=position)
    return host, after[1:]


def _parse_path(draft: Draft, source: str, start: int, end: int) -> None:
    path = source[start:end]
    if len(path) <= 1:
        return
    slash = path.find("/", 1)
    if slash >= 0:
        raise fail("unexpected '/' in the database name; percent-encode it as %2F",
                   key="database", position=start + slash)  # fmt: skip
    database = _decode(path[1:], Where("database", start + 1))
    if database:
        draft.fields["database"] = database


def _parse_query(draft: Draft, source: str, start: int) -> None:
    position = start + 1
    hidden = False  # after a secret, a parameter may be the rest of it (a raw '&' in it)
    for count, segment in enumerate(source[start + 1 :].split("&", MAX_PAIRS), 1):
        if count > MAX_PAIRS:
            raise fail(f"more than {MAX_PAIRS} query parameters: not a connection string",
                       key="query", position=position)  # fmt: skip
        if segment:
            _parse_parameter(draft, segment, position, hidden)
            hidden = hidden or _may_be_secret(segment.partition("=")[0])
        position += len(segment) + 1


def _parse_parameter(draft: Draft, segment: str, position: int, hidden: bool) -> None:
    raw_key, equals, raw_value = segment.partition("=")
    key = _decode(raw_key, Where("query", position), plus=True).strip()
    if not key:
        raise fail("empty parameter name in the query", key="query", position=position)
    if not equals:
        name = "a parameter after a secret one" if hidden else f"parameter {quoted(key)}"
        raise fail(f"{name} has no '=value' (an '&' in a value must be percent-encoded as %26)",
                   key="query", position=position)  # fmt: skip
    # After a secret, the key is named by the setting it names, never as written.
    where = Where(vouched_name(draft.dialect, key) if hidden else key, position + len(raw_key) + 1, hidden)
    apply_named(draft, key, _decode(raw_value, where, plus=True), where)
