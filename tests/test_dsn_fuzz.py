"""Property tests of the connection-string parser (tether.dsn.parse): passwords never leak.

Every generated string holds a *marker* password, written in one of many ways: in a URL's
user info (percent-encoded, minimally encoded, raw), as a query parameter (``password``,
``pass%77ord``, ``sslpassword``...; encoded or raw), or in an ADO.NET string (quoted with
' or ", unquoted, in ODBC's braces, raw), among other pairs, before or after mistakes.
Properties:

* ``parse`` returns a spec or raises ConfigError, never anything else;
* no ConfigError (message, ``repr``, ``key``, the chained errors, the formatted traceback)
  and no parsed spec's ``repr``/``str`` holds the password, any 4-character piece of it
  that holds a marker, nor any marker character raw, percent-encoded or escaped;
* a password written correctly parses back to itself, and the spec's ``redacted()`` URL
  parses back to the same spec (given the secrets it hides).

Why a leak check can be this strict: markers are caseless non-ASCII characters (CJK,
Hebrew, Arabic, an astral emoji, lone surrogates), while tether's own text and the other
parts of the generated strings are ASCII, so a marker in any output, in any form, can only
have come from the password. Between markers sit "fillers": the characters the parsers
treat specially, and pieces that read as a setting if the password is split there
(``;Encrypt=``, ``&login_timeout=``), each followed by a marker that the setting refuses,
so that only a message quoting it could show it.

One exception, by necessity: a raw (unencoded) '&' in a query password followed by
``key=value`` *is* another parameter (a driver option, shown in the spec), whatever
reading one prefers, so raw query passwords hold '=' only in such setting pieces.

CI runs about 11,000 examples, derandomized (the same ones every run, no example
database). ``TETHER_SLOW=1`` runs 20 times as many instead, freshly random each time.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, unquote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.dsn import ConnectionSpec, Secret, parse
from tether.dsn._ado import _read_key, _read_value, tokenize
from tether.dsn._common import is_secret_key
from tether.dsn._url import _unquote
from tether.errors import ConfigError

SLOW = os.environ.get("TETHER_SLOW") == "1"

Property = Callable[..., None]
# name -> (the property, its strategies, examples in CI); filled by @prop below.
PROPERTIES: dict[str, tuple[Property, tuple[st.SearchStrategy[Any], ...], int]] = {}


def prop(examples: int, *strategies: st.SearchStrategy[Any]) -> Callable[[Property], Property]:
    """Register a property: run() gives it its strategies and settings, in CI and long runs."""

    def register(body: Property) -> Property:
        PROPERTIES[body.__name__] = (body, strategies, examples)
        return body

    return register


# --- passwords ---------------------------------------------------------------------------

_CASELESS = "あいうカキク漢字語שלוםمرحب😀𝄞"
MARKERS = [c for c in _CASELESS if c.lower() == c.upper() == c.casefold() == c] + [
    "\ud800", "\udbff", "\udc00", "\udfff",  # lone surrogates
]  # fmt: skip
assert len(MARKERS) >= 20 and all(ord(c) > 127 for c in MARKERS)

# What the parsers treat specially, a few plain characters, and pieces that would read as
# a setting or keyword if a password holding them were split there, with a value that the
# setting refuses (a marker), so that only its error could show it.
FILLERS = [
    *"@:/?#&=;%+{}[]'\", \\", "\t", "\n", "\x00", "\x01", "\x7f",
    "%41", "%", "%C3", "%2", "%ED", "''", '""', "}}", "==", ";;", "a", "Z", "9", "-", ".", "_",
    ";Encrypt=", "; Connect Timeout =", ";Pooling=", ";Packet Size=", ";Command Timeout=", ";Bogus=",
    "&login_timeout=", "&max_size=", "&pooling=", "&encrypt=", "&command_timeout=", "&port=",
    "&password=", "&sslmode", "@db.example.com/", "@db:5432/shop?x=",
]  # fmt: skip
# For raw query values: a raw '&' followed by 'key=value' *is* another parameter, so no
# '=' here but in the pieces above naming a setting that refuses a marker as its value.
NO_EQUALS = [f for f in FILLERS if "=" not in f or (f.startswith("&") and f != "&password=")]


def passwords(fillers: list[str] = FILLERS, longest: int = 10) -> st.SearchStrategy[str]:
    """Markers, each followed by nothing or one filler (a few draws: hypothesis's own cost
    per draw, not the parser, is what bounds how many examples CI can afford)."""
    units = [marker + filler for marker in MARKERS for filler in ["", "", *fillers]]
    return st.lists(st.sampled_from(units), min_size=3, max_size=longest).map("".join)


def _escapes(char: str) -> set[str]:
    """The forms a character can take in an output: itself, percent-encoded, escaped."""
    encoded = quote(char, safe="", errors="surrogatepass")
    return {
        char,
        encoded,
        encoded.lower(),
        repr(char)[1:-1],
        ascii(char)[1:-1],
        char.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace"),
    }


def assert_no_leak(password: str, texts: Iterable[str], unit: str | None = None) -> None:
    """No text holds the password, a 4-character piece of it with a marker in it, or a
    marker in any form. ``unit``: the password is ``unit`` repeated (its pieces are those
    of two units)."""
    sample = password if unit is None else unit * 2
    forms = {form for char in set(sample) if ord(char) > 127 for form in _escapes(char)}
    pieces = {sample[i : i + 4] for i in range(len(sample) - 3)}
    pieces = {piece for piece in pieces if any(ord(char) > 127 for char in piece)}
    for text in texts:
        assert password not in text
        leaked = [piece for piece in pieces | forms if piece in text]
        assert not leaked, f"{leaked!r} in {text!r}"


def error_texts(exc: BaseException) -> list[str]:
    """What a log could show of an error: each chained error's str, repr and key, and the
    formatted traceback."""
    texts = ["".join(traceback.format_exception(exc))]
    seen: BaseException | None = exc
    while seen is not None:
        texts += [str(seen), repr(seen), repr(getattr(seen, "key", None))]
        seen = seen.__cause__ or seen.__context__
    return texts


def spec_texts(spec: ConnectionSpec) -> list[str]:
    texts = [repr(spec), str(spec), spec.redacted(), repr(spec.password), str(spec.password)]
    for text in texts:
        text.encode("utf-8")  # printable: no lone surrogate left in it
    return texts


def parse_or_error(text: str) -> ConnectionSpec | ConfigError:
    """The spec, or the ConfigError; any other exception fails the test."""
    try:
        return parse(text)
    except ConfigError as exc:
        return exc


def check(password: str, text: str, unit: str | None = None) -> ConnectionSpec | None:
    """Parse ``text``, check that nothing shows the password, return the spec if any."""
    result = parse_or_error(text)
    if isinstance(result, ConfigError):
        assert_no_leak(password, error_texts(result), unit)
        return None
    assert_no_leak(password, spec_texts(result), unit)
    return result


def assert_round_trip(spec: ConnectionSpec) -> None:
    """``redacted()`` parses back to the same spec, given the secrets it hides."""
    secrets = {key: value for key, value in spec.options if is_secret_key(key)}
    again = parse(spec.redacted(), password=spec.password, **secrets)
    assert again == spec
    assert again.pool_key == spec.pool_key


# --- URLs --------------------------------------------------------------------------------

SCHEMES = ["postgresql", "postgres", "mysql", "mariadb", "mssql", "sqlserver"]
NAMES = ["app", "u", "shop", "db_1", "x9", "reporting"]
HOSTS = ["db", "db.example.com", "h-1.local", "localhost", "10.0.0.7", "shop.database.windows.net"]
GOOD_PARAMS = ["sslmode=require", "login_timeout=5", "application_name=web", "command_timeout=2.5",
               "max_size=4", "pooling=off", "connect_retry_count=2", "options=-c%20x%3D1"]  # fmt: skip
URL_MISTAKES = ["login_timeout=soon", "port=x", "max_lifetme=5", "bogus%FF=1", "encrypt=sometimes",
                "flag", "command_timeout=-1", "command_timeout=nan", "x=%C3", "x=a@b", "x=1#frag",
                "=1", "min_size=5&max_size=1"]  # fmt: skip
# Keys that name the password itself, and ones that name a secret driver option.
PASSWORD_KEYS = ["password", "PASSWORD", "Password", "pass%77ord", "%70assword", "pa%73sword"]
OPTION_KEYS = ["sslpassword", "SSLPassword", "sslpass%77ord"]
# Good parameters twice over: about half the generated URLs have no mistake.
_PARAMS = st.lists(st.sampled_from(GOOD_PARAMS * 2 + URL_MISTAKES), max_size=2)


@dataclass(frozen=True)
class Url:
    scheme: str
    user: str
    host: str
    port: int | None
    database: str
    before: list[str]  # query parameters before the password's place
    after: list[str]

    def text(self, userinfo: str, secret: str | None = None) -> str:
        port = f":{self.port}" if self.port else ""
        params = [*self.before, *([secret] if secret else []), *self.after]
        query = "?" + "&".join(params) if params else ""
        return f"{self.scheme}://{userinfo}@{self.host}{port}/{self.database}{query}"

    @property
    def has_mistake(self) -> bool:
        return any(p in URL_MISTAKES for p in self.before + self.after)


URLS = st.builds(
    Url, st.sampled_from(SCHEMES), st.sampled_from(NAMES), st.sampled_from(HOSTS),
    st.sampled_from([None, 1433, 5432, 6543, 65535]), st.sampled_from(NAMES), _PARAMS, _PARAMS,
)  # fmt: skip


def _encoded(password: str) -> str:
    return quote(password, safe="", errors="surrogatepass")


def _minimal(password: str) -> str:
    """Only what the user info cannot hold raw: '%', '@', '/', '?' and '#'."""
    return "".join(quote(c, safe="") if c in "%@/?#" else c for c in password)


@prop(2_000, URLS, passwords(), st.sampled_from(["encoded", "minimal", "raw"]), st.booleans())
def url_user_info(url: Url, password: str, writing: str, forgot_host: bool) -> None:
    written = {"encoded": _encoded, "minimal": _minimal, "raw": lambda p: p}[writing](password)
    if forgot_host:  # user:password with no '@host': the password reads as a port (a raw
        # '@' in it would make it a user info again, which the other branch covers)
        check(password, f"{url.scheme}://{url.user}:{written.replace('@', '%40')}/{url.database}")
        return
    spec = check(password, url.text(f"{url.user}:{written}"))
    if writing != "raw" and not url.has_mistake:
        assert spec is not None, "a correctly encoded password must parse"
        assert spec.password == Secret(password)
        assert_round_trip(spec)


@prop(
    2_500,
    URLS,
    st.one_of(st.tuples(st.just("encoded"), passwords()), st.tuples(st.just("raw"), passwords(NO_EQUALS))),
    st.sampled_from(PASSWORD_KEYS + OPTION_KEYS),
    st.booleans(),
)
def url_query(url: Url, written: tuple[str, str], key: str, user_password: bool) -> None:
    writing, password = written
    value = _encoded(password) if writing == "encoded" else password
    userinfo = url.user + (":pw" if user_password else "")
    spec = check(password, url.text(userinfo, f"{key}={value}"))
    if writing == "encoded" and not url.has_mistake:
        assert spec is not None, "a correctly encoded password must parse"
        if key in OPTION_KEYS:
            assert spec.option("sslpassword") == password
        else:
            assert spec.password == Secret(password)
        assert_round_trip(spec)


# --- ADO.NET strings ---------------------------------------------------------------------

GOOD_PAIRS = ["Database=shop", "User ID=app", "Encrypt=yes", "Connect Timeout=5", "Command Timeout=30",
              "App=web", "MultipleActiveResultSets=true", "ConnectRetryCount=2", "Pooling=false"]  # fmt: skip
ADO_MISTAKES = ["Encrypt=maybe", "Conect Timeout=1", "ConnectRetryCount=999", "Server=np:x", "Packet Size=1",
                "Max Pool Size=0", "Command Timeout=-1", "CommandTimeout=1.5", "Bogus=1", "Driver={x}",
                "Server=h,0", "Min Pool Size=9;Max Pool Size=2", "x", "=1", "App='a'b", "App=a'",
                "App='unterminated"]  # fmt: skip
ADO_PASSWORD_KEYS = ["Password", "PWD", "password", " pwd ", "PassWord"]


def _unquoted_ok(password: str) -> bool:
    """Whether SqlClient reads ``password`` right when written unquoted."""
    return (
        password == password.strip()
        and ";" not in password
        and password[0] not in "'\""
        and password[-1] not in "'\""
        and not any(c in password for c in "\x00\x01\x7f")
    )


WRITINGS: dict[str, Callable[[str], str]] = {
    "single": lambda p: "'" + p.replace("'", "''") + "'",
    "double": lambda p: '"' + p.replace('"', '""') + '"',
    "unquoted": lambda p: p,  # right only when _unquoted_ok, else a mistake to survive
    "braces": lambda p: "{" + p.replace("}", "}}") + "}",  # ODBC's quoting: not SqlClient's
    "single-undoubled": lambda p: f"'{p}'",
    "double-undoubled": lambda p: f'"{p}"',
}


# Good pairs twice over: about half the generated strings have no mistake.
_PAIRS = st.lists(st.sampled_from(GOOD_PAIRS * 3 + ADO_MISTAKES), max_size=4)


@prop(
    3_000,
    passwords(),
    st.sampled_from(sorted(WRITINGS)),
    st.sampled_from(ADO_PASSWORD_KEYS),
    _PAIRS,
    st.integers(0, 5),
    st.sampled_from([";", "; ", " ;", ";;", " ; "]),
)
def ado(password: str, writing: str, key: str, pairs: list[str], place: int, separator: str) -> None:
    pairs = ["Server=tcp:db,1433", *pairs]
    pairs.insert(min(place, len(pairs)), f"{key}={WRITINGS[writing](password)}")
    if "App='unterminated" in pairs:  # before the password, a quote it closes makes it App's value
        pairs.remove("App='unterminated")
        pairs.append("App='unterminated")
    text = separator.join(pairs) + separator[: place % 2]
    mistakes = [p for p in pairs if p in ADO_MISTAKES]
    spec = check(password, text)
    correct = (writing in ("single", "double") and "\x00" not in password) or (
        writing == "unquoted" and _unquoted_ok(password)
    )
    if correct and not mistakes:
        assert spec is not None, "a correctly quoted password must parse"
        assert spec.password == Secret(password)
        assert_round_trip(spec)


# --- libpq keyword/value strings ----------------------------------------------------------

LIBPQ_PAIRS = ["port=6543", "dbname=shop", "user=app", "sslmode=require", "connect_timeout=5",
               "application_name='web app'", "options='-c x=1'", "max_size=4"]  # fmt: skip
LIBPQ_MISTAKES = ["port=x", "connect_timeout=soon", "max_lifetme=5", "= 1", "flag", "sslmode='open",
                  "host=a,b", "dbname=shop;"]  # fmt: skip
LIBPQ_WRITINGS: dict[str, Callable[[str], str]] = {
    "quoted": lambda p: "'" + p.replace("\\", "\\\\").replace("'", "\\'") + "'",
    "escaped": lambda p: "".join("\\" + c if c.isspace() or c in "'\\" else c for c in p),
    "raw": lambda p: p,  # right only without whitespace, a leading quote or a backslash
    "quoted-unescaped": lambda p: f"'{p}'",
}


@prop(
    1_500,
    passwords(),
    st.sampled_from(sorted(LIBPQ_WRITINGS)),
    st.lists(st.sampled_from(LIBPQ_PAIRS * 3 + LIBPQ_MISTAKES), max_size=4),
    st.integers(0, 5),
    st.sampled_from([" ", "  ", "\t", " \n "]),
)
def libpq(password: str, writing: str, pairs: list[str], place: int, separator: str) -> None:
    pairs = ["host=db", *pairs]
    pairs.insert(max(1, min(place, len(pairs))), f"password={LIBPQ_WRITINGS[writing](password)}")
    spec = check(password, separator.join(pairs))
    raw_ok = not any(c.isspace() or c == "\\" for c in password) and not password.startswith("'")
    correct = writing in ("quoted", "escaped") or (writing == "raw" and raw_ok)
    if correct and not any(p in LIBPQ_MISTAKES for p in pairs):
        assert spec is not None, "a correctly written password must parse"
        assert spec.password == Secret(password)
        assert_round_trip(spec)


# --- huge strings, any strings, and the parser's own pieces ---------------------------------


@prop(
    150,
    passwords(NO_EQUALS, longest=6),  # a raw '&' then 'key=value' is another parameter
    st.sampled_from([1_000, 5_000, 20_000, 50_000]),
    st.sampled_from(["url-user", "url-query", "ado-quoted", "ado-raw", "ado-braces"]),
    st.sampled_from(["", "&login_timeout=soon", ";Encrypt=maybe", "#", "@", ";Bogus=1"]),
)
def huge(password: str, times: int, where: str, tail: str) -> None:
    """Passwords of up to a megabyte or so, each written in a way that parses or fails."""
    big = password * times
    text = {
        "url-user": f"postgresql://app:{big}@db/shop?sslmode=require",
        "url-query": f"postgresql://app@db/shop?password={big}",
        "ado-quoted": f"Server=db;Password='{big.replace(chr(39), chr(39) * 2)}'",
        "ado-raw": f"Server=db;Password={big}",
        "ado-braces": f"Server=db;Password={{{big}}};Database=shop",
    }[where]
    check(big, text + tail, unit=password)


# Text for the fields that are shown (user, database, options, application name), with
# lone surrogates and control characters: a spec holding them must still print.
_SHOWN = (
    st.lists(
        st.one_of(st.characters(codec="utf-8"), st.sampled_from(["\ud800", "\udbff", "\udc80", "\udfff"])),
        min_size=1,
        max_size=8,
    )
    .map("".join)
    .filter(lambda t: t.strip() == t and "\x00" not in t)
)
_ANY = st.one_of(
    st.text(),
    st.lists(st.sampled_from([*FILLERS, *MARKERS])).map("".join),
    st.builds(lambda t: "postgresql://" + t, st.text()),
    st.builds(lambda t: "mssql://u:p@h/d?" + t, st.text()),
    st.builds(lambda t: "Server=h;" + t, st.text()),
    st.builds(lambda t: "Server=h;Password=" + "".join(t), st.lists(st.sampled_from(FILLERS + MARKERS))),
    st.builds(
        lambda user, db, option, raw: (
            f"mysql://{user}@h/{db}?x={option}" if raw else
            "postgresql://{}@h/{}?application_name={}&x={}".format(
                *(quote(t, safe="", errors="surrogatepass") for t in (user, db, option, option)))
        ),
        _SHOWN, _SHOWN, _SHOWN, st.booleans(),
    ),
    st.builds(
        lambda user, db, app: "Server=h;User ID='{}';Database=\"{}\";App='{}'".format(
            user.replace("'", "''"), db.replace('"', '""'), app.replace("'", "''")
        ),
        _SHOWN, _SHOWN, _SHOWN,
    ),
)  # fmt: skip


@prop(1_500, _ANY)
def any_text(text: str) -> None:
    """Any string: a spec whose repr and str work and are printable, or a ConfigError whose
    message is printable (controls and lone surrogates escaped)."""
    result = parse_or_error(text)
    if isinstance(result, ConfigError):
        assert str(result).isprintable(), str(result)
        for shown in error_texts(result):
            shown.encode("utf-8")
        return
    for shown in spec_texts(result):
        assert shown.isprintable(), shown
    assert_round_trip(result)


def _by_hand(source: str) -> list[tuple[str, str | None, int, int]]:
    """The ADO tokenizer's slow path alone: every pair read by _read_key/_read_value."""
    pairs, pos = [], 0
    while True:
        while pos < len(source) and (source[pos] == ";" or source[pos].isspace()):
            pos += 1
        if pos >= len(source):
            return pairs
        key, key_position, after_key = _read_key(source, pos)
        value, value_position, pos = _read_value(source, after_key)
        pairs.append((key, value, key_position, value_position))


_ADO_PIECES = st.sampled_from(["a", "b", "=", "==", ";", " ", "'", "''", '"', "\x00", "\x01", "\x85", "\t",
                               "é"])  # fmt: skip


@prop(1_500, st.lists(_ADO_PIECES, max_size=30).map("".join))
def tokenizer_paths_agree(source: str) -> None:
    """The one-regex fast path reads every pair as the by-hand reading does, and fails
    where it fails, with the same message."""
    try:
        fast = [(p.key, p.value, p.key_position, p.value_position) for p in tokenize(source)]
    except ConfigError as exc:
        with pytest.raises(ConfigError) as slow:
            _by_hand(source)
        assert (str(slow.value), slow.value.position) == (str(exc), exc.position)
        return
    assert fast == _by_hand(source)


_URL_PIECES = st.sampled_from(["%", "%4", "%41", "%C3", "%A9", "%c3%a9", "%ED%A0%80", "%F0%9F%98", "%80",
                               "+", "%2B", "%zz", "%E2%82%AC", "a", "é", "\ud800", " "])  # fmt: skip


@prop(500, st.lists(_URL_PIECES, max_size=12).map("".join), st.booleans())
def unquote_agrees_with_urllib(text: str, plus: bool) -> None:
    """tether's percent-decoding is urllib's (errors="surrogatepass"), None for not UTF-8."""
    try:
        expected: str | None = (unquote_plus if plus else unquote)(text, errors="surrogatepass")
    except UnicodeDecodeError:
        expected = None
    assert _unquote(text, plus=plus) == expected


# --- running them ------------------------------------------------------------------------

CHECKS = [
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
    HealthCheck.large_base_example,
]  # fmt: skip


def run(name: str, scale: int = 1) -> None:
    body, strategies, examples = PROPERTIES[name]
    chosen = settings(
        max_examples=examples * scale,
        deadline=None,
        derandomize=scale == 1,  # CI: the same examples every run
        database=None,
        suppress_health_check=CHECKS,
    )
    chosen(given(*strategies)(body))()


def test_at_least_10000_examples_run_in_ci() -> None:
    assert sum(examples for _, _, examples in PROPERTIES.values()) >= 10_000


@pytest.mark.timeout(3600 if SLOW else 120)
@pytest.mark.parametrize("name", sorted(PROPERTIES))
def test_property(name: str) -> None:
    run(name, scale=20 if SLOW else 1)  # TETHER_SLOW=1: the long run, freshly random
