"""Named settings, as URL query parameters and as ``parse(..., **overrides)`` give them.

A name is, in order: a tether setting (``login_timeout``, or a URL-style alias such as
``max_size``), a connection identity field (``host``, ``port``, ``user``...), for SQL
Server any SqlClient keyword or option key (``ApplicationIntent``,
``multi_subnet_failover``), and otherwise a driver option kept as given (``sslmode``).
An unknown name that is close to a tether setting is taken for a typo and refused.
"""

from __future__ import annotations

import re

from . import _ado as ado
from ._common import (
    AFTER_PASSWORD,
    ENCRYPT,
    POOL_BLOCKING,
    POOL_MODES,
    RANGES,
    Converter,
    Draft,
    Where,
    boolean,
    check_range,
    choice,
    did_you_mean,
    fail,
    integer,
    number,
    parse_port,
    text,
)
from ._keywords import find as find_keyword

SETTINGS: dict[str, Converter] = {
    "connect_retry_count": integer(),
    "connect_retry_interval": number(whole=False),
    "login_timeout": number(whole=False),
    "command_timeout": number(whole=False),
    "min_pool_size": integer(),
    "max_pool_size": integer(),
    "connection_lifetime": number(whole=False),
    "pooling": boolean(lenient=True),
    "pool_blocking_period": choice(POOL_BLOCKING),
    "pool_mode": choice(POOL_MODES),
    "encrypt": choice(ENCRYPT),
    "trust_server_certificate": boolean(lenient=True),
    "application_name": text(128),
}
# The names tether's Pool takes, and libpq's connect_timeout.
ALIASES = {
    "connect_timeout": "login_timeout",
    "min_size": "min_pool_size",
    "max_size": "max_pool_size",
    "max_lifetime": "connection_lifetime",
    "dbname": "database",
}
IDENTITY = ("host", "port", "instance", "database", "user", "password")
_TETHER_NAMES = (*SETTINGS, *ALIASES)


def apply_named(draft: Draft, name: str, value: str | None, where: Where) -> None:
    """Set ``name`` to ``value`` (text, or None to put back the default) on the draft."""
    lowered = name.strip().lower()
    canonical = ALIASES.get(lowered, lowered)
    keyword = find_keyword(canonical) if draft.dialect == "sqlserver" else None
    if canonical in SETTINGS:
        _set_setting(draft, canonical, value, where)
    elif canonical in IDENTITY:
        _set_identity(draft, canonical, value, where)
    elif keyword is not None:
        ado.apply(draft, keyword, value, where)
    else:
        _set_option(draft, lowered, value, where)


def vouched_name(dialect: str, name: str) -> str:
    """How a message may name the parameter ``name`` when the text written may be part of
    a password: by the setting, field or keyword it names, else by a placeholder."""
    lowered = name.strip().lower()
    canonical = ALIASES.get(lowered, lowered)
    if canonical in SETTINGS or canonical in IDENTITY:
        return canonical
    keyword = find_keyword(canonical) if dialect == "sqlserver" else None
    return keyword.name.lower() if keyword is not None else AFTER_PASSWORD


def _set_setting(draft: Draft, name: str, value: str | None, where: Where) -> None:
    if not value:
        draft.fields.pop(name, None)
        return
    converted = SETTINGS[name](value, where)
    if name in RANGES and isinstance(converted, (int, float)):
        check_range(converted, where, name)
    draft.fields[name] = converted


def _set_option(draft: Draft, name: str, value: str | None, where: Where) -> None:
    hint = did_you_mean(name, _TETHER_NAMES)
    if hint and where.hidden:  # the name may be part of the password: no "did you mean"
        raise where.error("unknown setting, close to one of tether's: misspelt?")
    if hint:
        raise where.error(f"unknown setting.{hint}")
    if value is None:
        draft.options.pop(name, None)
        return
    if name == "prepare_threshold" and not _is_prepare_threshold(value):
        raise where.error(f"must be a whole number >= 0 or 'none' (psycopg's setting){where.but_not(value)}")
    draft.options[name] = value


def _is_prepare_threshold(value: str) -> bool:
    """psycopg's ``prepare_threshold``, which tether hands it typed: a count, or none."""
    text = value.strip().lower()
    return text in ("none", "null") or (text.isascii() and text.isdigit())


def _set_identity(draft: Draft, name: str, value: str | None, where: Where) -> None:
    if not value:
        draft.fields.pop(name, None)
    elif name == "host":
        set_host(draft, value, where)
    elif name == "port":
        draft.fields["port"] = parse_port(value, Where("port", where.position))
    elif name == "instance":
        set_instance(draft, value, where)
    else:
        draft.fields[name] = value  # database, user, password: taken as they are


def set_host(draft: Draft, host: str, where: Where) -> None:
    if "," in host:
        raise fail("several hosts are not supported yet; give one host", key="host",
                   position=where.position)  # fmt: skip
    name, backslash, instance = host.partition("\\")
    if backslash and draft.dialect == "sqlserver":  # host\INSTANCE, as SQL Server users write it
        set_instance(draft, instance, where)
        host = name
    if not host.startswith("/") and re.search(r"[\s\x00-\x1f\x7f@/\\]", host):
        raise fail("invalid character in the host name", key="host", position=where.position)
    draft.fields["host"] = host


def set_instance(draft: Draft, instance: str, where: Where) -> None:
    if draft.dialect != "sqlserver":
        raise fail("a named instance is a SQL Server feature", key="instance",
                   position=where.position)  # fmt: skip
    if not instance.strip():
        raise fail("empty instance name", key="instance", position=where.position)
    draft.fields["instance"] = instance.strip().upper()
