"""libpq's keyword/value strings: ``host=db port=5432 dbname=shop user=app password='a b'``.

The shape psycopg, libpq and ``psql`` take, and what ``psycopg.conninfo.make_conninfo``
writes. Pairs are ``key = value``, separated by whitespace; a value holding a space, or
empty, is in single quotes; a backslash escapes the character after it, in quotes or not
(libpq's rules, ``conninfo_parse`` in fe-connect.c). Each key means what the same URL query
parameter means (``apply_named``): identity fields, tether settings, and libpq's own
keywords (``sslmode``, ``options``...) passed on to the driver. The string is PostgreSQL's.

A string is read as libpq's when its first key is a libpq keyword and its first value ends
at whitespace or at the end, not at ``;`` (ADO.NET strings separate pairs with ``;``); when
that key is SqlClient's too (``user``, ``password``), when it holds no ``;`` at all.

As for URLs, no error quotes what may be part of a password: a password wrongly quoted runs
on past where the parser ended it, so every pair after one is *hidden* (``Where.hidden``).
"""

from __future__ import annotations

import re

from ._common import AFTER_PASSWORD, MAX_PAIRS, Draft, Where, did_you_mean, fail, is_secret_key
from ._keywords import find as find_keyword
from ._settings import ALIASES, IDENTITY, SETTINGS, apply_named, vouched_name

# libpq's connection keywords (PostgreSQL 17, "Parameter Key Words"): a string beginning with
# one of them is libpq's.
KEYWORDS = frozenset((
    "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "require_auth",
    "channel_binding", "connect_timeout", "client_encoding", "options", "application_name",
    "fallback_application_name", "keepalives", "keepalives_idle", "keepalives_interval",
    "keepalives_count", "tcp_user_timeout", "replication", "gssencmode", "sslmode", "requiressl",
    "sslnegotiation", "sslcompression", "sslcert", "sslkey", "sslpassword", "sslcertmode",
    "sslrootcert", "sslcrl", "sslcrldir", "sslsni", "requirepeer", "ssl_min_protocol_version",
    "ssl_max_protocol_version", "krbsrvname", "gsslib", "gssdelegation", "service",
    "target_session_attrs", "load_balance_hosts",
))  # fmt: skip
# What else a libpq string may hold: tether's settings (as in a URL's query) and psycopg's
# prepare_threshold. libpq refuses any other keyword, and so does tether, by name.
ACCEPTED = KEYWORDS | set(SETTINGS) | set(ALIASES) | set(IDENTITY) | {"prepare_threshold"}
_FIRST = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPACE = re.compile(r"\s*")
_QUOTED = re.compile(r"'((?:\\.|[^'\\])*)'", re.DOTALL)
_BARE = re.compile(r"((?:\\.|[^\s\\])*\\?)", re.DOTALL)  # a lone backslash at the end: itself
_INNER_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=")
_BARE_UNTIL_SEMICOLON = re.compile(r"(?:\\.|[^\s\\;])*", re.DOTALL)
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


def looks_like_libpq(source: str) -> bool:
    first = _FIRST.match(source)
    if first is None or first.group(1).lower() not in KEYWORDS:
        return False
    if find_keyword(first.group(1)) is not None:  # user=, password=: SqlClient's words too
        return ";" not in source
    # Where the first value ends: a ';' there (after its quotes, if quoted) makes it ADO's.
    value = _QUOTED.match(source, first.end()) if source.startswith("'", first.end()) else None
    value = value or _BARE_UNTIL_SEMICOLON.match(source, first.end())
    assert value is not None  # the bare pattern matches the empty string
    return not source[value.end() :].lstrip().startswith(";")


def parse_libpq(source: str) -> Draft:
    draft = Draft("postgresql")
    at, pairs = 0, 0
    hidden = False  # after a secret, what follows may be the rest of it
    while True:
        at = _SPACE.match(source, at).end()  # type: ignore[union-attr]  # \s* always matches
        if at >= len(source):
            return draft
        pairs += 1
        if pairs > MAX_PAIRS:
            raise fail(f"more than {MAX_PAIRS} pairs: not a connection string", key="dsn", position=at)
        key_match = _KEY.match(source, at)
        if key_match is None:
            raise _at(at, hidden, "expected a keyword (key=value pairs separated by spaces)")
        key = key_match.group()
        where = Where(vouched_name("postgresql", key) if hidden else key, key_match.end(), hidden)
        at = _SPACE.match(source, key_match.end()).end()  # type: ignore[union-attr]
        if not source.startswith("=", at):
            raise where.error("expected '=' after the keyword")
        at = _SPACE.match(source, at + 1).end()  # type: ignore[union-attr]
        if key.lower() not in ACCEPTED:
            hint = "" if hidden else did_you_mean(key.lower(), ACCEPTED)
            raise where.error(f"not a libpq keyword nor a tether setting.{hint}")
        secret = is_secret_key(key)
        value, at = _value(source, at, Where(where.key, at, hidden or secret))
        if not secret and any(is_secret_key(k) for k in _INNER_KEY.findall(value)):
            # 'require password=...': a quote left open took the password into this value
            raise where.error("its value holds a password= pair: is a quote left open before it?")
        apply_named(draft, key, value, Where(where.key, where.position, hidden))
        hidden = hidden or secret


def _value(source: str, at: int, where: Where) -> tuple[str, int]:
    """The value starting at ``at`` (unescaped) and where it ends."""
    if source.startswith("'", at):
        match = _QUOTED.match(source, at)
        if match is None:
            raise where.error("unterminated quoted value (a quote inside a value is written \\')")
    else:
        match = _BARE.match(source, at)
        assert match is not None  # it matches the empty string
    return _ESCAPED.sub(r"\1", match.group(1)), match.end()


def _at(position: int, hidden: bool, problem: str) -> Exception:
    return Where(AFTER_PASSWORD if hidden else "dsn", position, hidden).error(problem)
