"""Pieces shared by the URL and ADO parsers: the draft they fill, and text-to-value converters.

Every converter takes the raw text and a :class:`Where` (the key as the user wrote it and
its offset in the connection string) and raises :class:`ConfigError` naming both. No
converter ever puts a password into a message: passwords are never converted, and text
the parser cannot vouch for (``Where.hidden``: it may be the rest of a badly quoted
password) is named by position only.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import ipaddress
import math
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from ..errors import ConfigError

DEFAULT_PORTS = {"postgresql": 5432, "sqlserver": 1433, "mysql": 3306}

# Numeric limits, shared by the parsers and ConnectionSpec's own validation. None: no bound.
# SqlClient's: ConnectRetryCount 0-255, ConnectRetryInterval 1-60 s, timeouts >= 0
# (0 = no limit), Max Pool Size >= 1.
RANGES: dict[str, tuple[float, float | None]] = {
    "connect_retry_count": (0, 255),
    "connect_retry_interval": (1, 60),
    "login_timeout": (0, None),
    "command_timeout": (0, None),
    "min_pool_size": (0, None),
    "max_pool_size": (1, None),
    "connection_lifetime": (0, None),
}

ENCRYPT = {
    "true": "mandatory", "yes": "mandatory", "mandatory": "mandatory",
    "false": "optional", "no": "optional", "optional": "optional",
    "strict": "strict",
}  # fmt: skip
POOL_BLOCKING = {
    "auto": "auto",
    "alwaysblock": "always", "always": "always",
    "neverblock": "never", "never": "never",
}  # fmt: skip

# A connection pooler between tether and PostgreSQL (PgBouncer's pool_mode): under
# transaction or statement pooling, a session does not outlive a transaction.
POOL_MODES = {"session": "session", "transaction": "transaction", "statement": "statement"}

# One key per process: pool keys and Secret hashes are comparable within the process
# and useless outside it.
_HASH_KEY = secrets.token_bytes(32)
_SECRET_WORDS = ("password", "passwd", "pwd", "secret", "token")
_SECRET = re.compile("|".join(_SECRET_WORDS))
# More pairs or parameters than any connection string holds: refused, so a pasted blob
# costs a bounded number of per-pair steps (the scans over its text are linear anyway).
MAX_PAIRS = 1000


def keyed_digest(value: str) -> str:
    """An HMAC of ``value`` under the per-process key: equal values, equal digests."""
    data = value.encode("utf-8", "surrogatepass")
    return hmac.new(_HASH_KEY, data, hashlib.sha256).hexdigest()


def is_secret_key(key: str) -> bool:
    """Whether an option's value must be hidden like a password (``sslpassword``, ...)."""
    return _SECRET.search(key.lower()) is not None


@dataclass(slots=True)
class Draft:
    """What a parser found, before it becomes a frozen ConnectionSpec."""

    dialect: str
    driver: str | None = None
    fields: dict[str, object] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)


class Where(NamedTuple):
    """Where a value came from: the key as the user wrote it and, when known, its offset.

    ``hidden``: the text at this place may be part of a password (it comes after one, and
    a password quoted wrongly, or holding an unescaped separator, runs on past where the
    parser ended it). Messages then say where the value is and what is wrong with it but
    never quote it, and ``key`` is a name the parser vouches for (a keyword's canonical
    spelling), not text from the string.
    """

    key: str
    position: int | None = None
    hidden: bool = False

    def error(self, problem: str) -> ConfigError:
        at = "" if self.position is None else f" (position {self.position})"
        name = self.key if self.key == AFTER_PASSWORD else quoted(self.key)
        return ConfigError(f"{name}: {problem}{at}", key=self.key, position=self.position)

    def show(self, value: str) -> str:
        """``value`` quoted for a message, unless it may be part of a password."""
        return _NOT_QUOTED if self.hidden else quoted(value)

    def but_not(self, number: str) -> str:
        """``, not 300`` for a message, unless the number was read where a password may be."""
        return "" if self.hidden else f", not {number}"


_NOT_QUOTED = "the value given (not quoted: it follows the password and may be part of it)"
# The name of a parameter whose name, coming after a password, may be part of it.
AFTER_PASSWORD = "a parameter after the password"

Converter = Callable[[str, Where], object]

# Bounded digit counts: int() of a huge string is slow and, past 4300 digits, an error.
_INT = re.compile(r"[+-]?[0-9]{1,18}")
_FLOAT = re.compile(r"[+-]?(?:[0-9]{1,18}(?:\.[0-9]{0,18})?|\.[0-9]{1,18})(?:[eE][+-]?[0-9]{1,3})?")


def quoted(text: str) -> str:
    """Text quoted for a message (``repr`` escapes what a terminal cannot show), cut short
    so a pasted blob does not flood the log. Never call it on a password."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


def printable(text: str) -> str:
    """``text`` with what a terminal cannot show (controls, lone surrogates) escaped."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def check_range(value: float, where: Where, name: str) -> None:
    low, high = RANGES[name]
    if not math.isfinite(value):
        raise where.error("must be a finite number" + where.but_not(repr(value)))
    if value < low or (high is not None and value > high):
        span = f"from {low:g} to {high:g}" if high is not None else f"at least {low:g}"
        raise where.error(f"must be {span}" + where.but_not(f"{value:g}"))


def integer(low: int | None = None, high: int | None = None) -> Converter:
    def convert(text: str, where: Where) -> int:
        stripped = text.strip()
        if not _INT.fullmatch(stripped):
            raise where.error(f"expected a whole number, not {where.show(text)}")
        value = int(stripped)
        _check_bounds(value, low, high, where)
        return value

    return convert


def number(*, whole: bool) -> Converter:
    """Seconds as float; ``whole`` for ADO strings, where SqlClient accepts integers only."""

    def convert(text: str, where: Where) -> float:
        stripped = text.strip()
        pattern = _INT if whole else _FLOAT
        value = float(stripped) if pattern.fullmatch(stripped) else math.nan
        if not math.isfinite(value):
            kind = "a whole number of seconds" if whole else "a number of seconds"
            raise where.error(f"expected {kind}, not {where.show(text)}")
        return value

    return convert


def _check_bounds(value: int, low: int | None, high: int | None, where: Where) -> None:
    if low is None:
        return
    if value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise where.error(f"must be {span}" + where.but_not(str(value)))


_TRUE = ("true", "yes")
_FALSE = ("false", "no")


def boolean(*, lenient: bool = False, extra_true: tuple[str, ...] = ()) -> Converter:
    """SqlClient's booleans: true/false/yes/no; URLs (``lenient``) also take 1/0/on/off."""
    true = _TRUE + extra_true + (("1", "on") if lenient else ())
    false = _FALSE + (("0", "off") if lenient else ())

    def convert(text: str, where: Where) -> bool:
        word = text.strip().lower()
        if word in true:
            return True
        if word in false:
            return False
        accepted = "/".join(true + false)
        raise where.error(f"expected one of {accepted}, not {where.show(text)}")

    return convert


def choice(mapping: Mapping[str, str]) -> Converter:
    """One of a fixed set, matched ignoring case and spaces ('Active Directory Default')."""

    def convert(text: str, where: Where) -> str:
        found = mapping.get(re.sub(r"\s+", "", text).lower())
        if found is None:
            accepted = ", ".join(sorted(set(mapping.values())))
            raise where.error(f"expected one of {accepted}, not {where.show(text)}")
        return found

    return convert


def canonical(*names: str) -> dict[str, str]:
    """A choice mapping whose values are spelled as given: ``canonical('ReadOnly', ...)``."""
    return {re.sub(r"\s+", "", name).lower(): name for name in names}


def text(max_length: int | None = None) -> Converter:
    def convert(value: str, where: Where) -> str:
        if max_length is not None and len(value) > max_length:
            raise where.error(f"must be at most {max_length} characters, not {len(value)}")
        return value

    return convert


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` for a close candidate, else an empty string."""
    # difflib's first filter (real_quick_ratio), without building a matcher for the word:
    # a word of no length close to any candidate's costs no difflib time at all.
    near = [c for c in candidates if 2.0 * min(len(word), len(c)) / (len(word) + len(c)) >= 0.8]
    close = difflib.get_close_matches(word.lower(), near, n=1, cutoff=0.8) if near else []
    return f" Did you mean {close[0]!r}?" if close else ""


def parse_port(text: str, where: Where) -> int:
    """A TCP port; the message never quotes the text, which may be a mangled password."""
    stripped = text.strip()
    value = int(stripped) if re.fullmatch(r"[0-9]{1,5}", stripped) else 0
    if not 1 <= value <= 65535:
        raise ConfigError(
            f"port must be a number from 1 to 65535 (position {where.position})",
            key="port",
            position=where.position,
        )
    return value


def is_ipv6(text: str) -> bool:
    # A bool rather than the ValueError, so callers raise outside any except block: their
    # ConfigError must not carry, as __context__, an error quoting text that may be secret.
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def fail(message: str, *, key: str | None = None, position: int | None = None) -> ConfigError:
    at = "" if position is None else f" (position {position})"
    return ConfigError(f"{message}{at}", key=key, position=position)
