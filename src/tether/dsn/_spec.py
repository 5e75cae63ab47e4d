"""``ConnectionSpec`` and ``Secret``, and ``parse``, which reads a connection string into them.

The URL and ADO readers (``_url``, ``_ado``) fill a draft; this module checks it and
freezes it into a spec, and renders a spec back as a redacted URL.
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import quote

from ..errors import ConfigError
from ._ado import parse_ado
from ._common import (
    DEFAULT_PORTS,
    ENCRYPT,
    POOL_BLOCKING,
    POOL_MODES,
    RANGES,
    Draft,
    Where,
    check_range,
    is_secret_key,
    keyed_digest,
)
from ._drivers import KNOWN_DRIVERS, canonical_driver, unknown_driver
from ._keywords import find as find_keyword
from ._libpq import looks_like_libpq, parse_libpq
from ._settings import apply_named
from ._url import looks_like_url, parse_url

__all__ = ["AZURE_SUFFIXES", "KNOWN_DRIVERS", "ConnectionSpec", "Secret", "parse"]

# SqlClient's list of Azure SQL endpoints (it raises ConnectRetryCount and turns the pool
# blocking period off for them), plus Synapse.
AZURE_SUFFIXES = (
    ".database.windows.net",
    ".database.usgovcloudapi.net",
    ".database.chinacloudapi.cn",
    ".database.cloudapi.de",
    ".database.fabric.microsoft.com",
    ".sql.azuresynapse.net",
)

_SHAPES = (
    "expected a URL such as postgresql://user@host:5432/db (schemes postgresql, postgres, "
    "mssql, sqlserver, mysql, mariadb, each optionally +driver), a libpq string such as "
    "host=db port=5432 dbname=shop user=app, or a SQL Server ADO.NET string such as "
    "Server=tcp:host,1433;Database=db;User ID=app"
)


class Secret:
    """A password: ``reveal()`` returns it; ``repr``, ``str`` and pickling do not.

    Equal secrets compare equal (in constant time) and hash alike, so specs compare.
    """

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str, /) -> None:
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """The secret itself, for the one place that must hand it on (the driver's connect)."""
        return self._value

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(keyed_digest(self._value), keyed_digest(other._value))

    def __hash__(self) -> int:
        return hash(keyed_digest(self._value))

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("a Secret cannot be pickled; pass the connection string instead")

    def __copy__(self) -> Secret:
        return self  # immutable

    def __deepcopy__(self, memo: object) -> Secret:
        return self


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionSpec:
    """A parsed, validated connection string. ``None`` settings mean "tether's default"."""

    dialect: str
    driver: str | None = None
    host: str | None = None
    port: int | None = None
    instance: str | None = None
    database: str | None = None
    user: str | None = None
    password: Secret | None = None
    options: tuple[tuple[str, str], ...] = ()
    connect_retry_count: int | None = None
    connect_retry_interval: float | None = None
    login_timeout: float | None = None
    command_timeout: float | None = None  # seconds a statement may run; 0: no limit
    min_pool_size: int | None = None
    max_pool_size: int | None = None
    connection_lifetime: float | None = None
    pooling: bool | None = None
    """``tether.connect``: false opens a connection of its own instead of drawing from the
    implicit pool (SqlClient's ``Pooling``)."""
    pool_blocking_period: str | None = None
    pool_mode: str | None = None  # PgBouncer's, when one stands between (session, transaction)
    """The pool mode of a PgBouncer between tether and PostgreSQL: under transaction (or
    statement) pooling, session state lasts one transaction, and tether acts on that."""
    encrypt: str | None = None
    """TLS: mandatory (validates the certificate), optional, or strict (TDS 8.0, TLS first);
    SqlClient's ``Encrypt``."""
    trust_server_certificate: bool | None = None
    """Accept the server's certificate without validating it (SqlClient's
    ``TrustServerCertificate``)."""
    application_name: str | None = None
    """The name the server shows for the session (``application_name``, ``APP``)."""

    def __post_init__(self) -> None:
        _validate_identity(self)
        _validate_settings(self)
        # Host names are case-insensitive; a Unix socket directory is not.
        if self.host is not None and not self.host.startswith("/"):
            object.__setattr__(self, "host", self.host.lower())
        options = sorted((key.lower(), value) for key, value in self.options)
        object.__setattr__(self, "options", tuple(options))

    def option(self, name: str, default: str | None = None) -> str | None:
        """A driver option by name; SQL Server options also by any SqlClient spelling."""
        key = name.lower()
        keyword = find_keyword(key) if self.dialect == "sqlserver" else None
        key = keyword.target if keyword is not None and keyword.option else key
        return dict(self.options).get(key, default)

    @property
    def pool_key(self) -> tuple[Hashable, ...]:
        """Equal for equal connections; secrets only as keyed hashes, never in plain text."""
        return tuple(_key_part(self, f.name) for f in dataclasses.fields(self))

    @property
    def transaction_pooled(self) -> bool:
        """Behind PgBouncer's transaction (or statement) pooling: server state lasts one
        transaction, each may run on another server connection."""
        return self.pool_mode in ("transaction", "statement")

    @property
    def is_azure(self) -> bool:
        return self.host is not None and self.host.endswith(AZURE_SUFFIXES)

    def with_(self, **changes: Any) -> ConnectionSpec:
        """A copy with ``changes`` (typed values), validated like a parsed spec."""
        return dataclasses.replace(self, **changes)

    def redacted(self) -> str:
        """A URL for logs and messages, with the password and secret options as ``***``."""
        scheme = self.dialect + (f"+{self.driver}" if self.driver else "")
        path = "/" + _escape(self.database) if self.database else ""
        query = "&".join(f"{k}={v}" for k, v in _query_items(self))
        return f"{scheme}://{_authority(self)}{path}" + (f"?{query}" if query else "")

    def __repr__(self) -> str:
        return f"<ConnectionSpec {self.redacted()}>"

    def __str__(self) -> str:
        return self.redacted()


def parse(dsn: str, *, driver: str | None = None, **overrides: object) -> ConnectionSpec:
    """Parse a URL or an ADO.NET string; ``overrides`` set settings or options on top.

    ``parse(url, login_timeout=5, sslmode="require")``: override names are those of URL
    query parameters; ``None`` removes a value. Raises ConfigError for anything invalid.
    """
    draft = _read(dsn)
    draft.driver = _resolve_driver(draft.dialect, draft.driver, driver)
    for name, value in overrides.items():
        apply_named(draft, name, _override_text(name, value), Where(name))
    return _build(draft)


def _read(dsn: str) -> Draft:
    if not isinstance(dsn, str):
        raise ConfigError(f"a connection string must be a str, not {type(dsn).__name__}")
    if looks_like_url(dsn):
        return parse_url(dsn)
    if dsn.strip().lower().startswith("jdbc:"):
        raise ConfigError(f"JDBC URLs are not supported: {_SHAPES}", key="dsn")
    if looks_like_libpq(dsn):
        return parse_libpq(dsn)
    if "=" in dsn:
        return parse_ado(dsn)
    raise ConfigError(f"not a connection string: {_SHAPES}", key="dsn")


def _resolve_driver(dialect: str, in_url: str | None, argument: str | None) -> str | None:
    named = [canonical_driver(dialect, d) for d in (in_url, argument) if d is not None]
    if len(named) == 2 and named[0] != named[1]:
        raise ConfigError(
            f"the URL names driver {named[0]!r} but driver={named[1]!r} was given", key="driver"
        )
    return named[0] if named else None


def _override_text(name: str, value: object) -> str | None:
    """Overrides go through the same converters as URL text, so they validate alike."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    kind = type(value).__name__
    raise ConfigError(f"{name!r}: expected str, int, float, bool or None, not {kind}", key=name)


def _build(draft: Draft) -> ConnectionSpec:
    fields: dict[str, Any] = dict(draft.fields)  # typed by the converters that filled it
    password = fields.pop("password", None)
    named_instance = draft.dialect == "sqlserver" and fields.get("instance") is not None
    if fields.get("port") is None and not named_instance:
        fields["port"] = DEFAULT_PORTS[draft.dialect]  # a named instance's port is found later
    fields.update(
        dialect=draft.dialect,
        driver=draft.driver,
        password=Secret(str(password)) if password else None,
        options=tuple(draft.options.items()),
    )
    return ConnectionSpec(**fields)


def _validate_identity(spec: ConnectionSpec) -> None:
    if spec.dialect not in KNOWN_DRIVERS:
        raise ConfigError(f"unknown dialect {spec.dialect!r}", key="dialect")
    if spec.driver is not None and spec.driver not in KNOWN_DRIVERS[spec.dialect]:
        raise unknown_driver(spec.dialect, spec.driver)  # canonical names only, as parse gives
    if spec.port is not None and not 1 <= spec.port <= 65535:
        raise ConfigError(f"port must be from 1 to 65535, not {spec.port}", key="port")
    if spec.instance is not None and spec.dialect != "sqlserver":
        raise ConfigError("a named instance is a SQL Server feature", key="instance")


def _validate_settings(spec: ConnectionSpec) -> None:
    for name in RANGES:
        value = getattr(spec, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, not {type(value).__name__}", key=name)
        check_range(value, Where(name), name)
    low, high = spec.min_pool_size, spec.max_pool_size
    if low is not None and high is not None and low > high:
        raise ConfigError(
            f"min_pool_size ({low}) must not exceed max_pool_size ({high})", key="min_pool_size"
        )
    _check_choice(spec, "encrypt", ENCRYPT.values())
    _check_choice(spec, "pool_blocking_period", POOL_BLOCKING.values())
    _check_choice(spec, "pool_mode", POOL_MODES.values())


def _check_choice(spec: ConnectionSpec, name: str, allowed: Any) -> None:
    value = getattr(spec, name)
    if value is not None and value not in allowed:
        choices = ", ".join(sorted(set(allowed)))
        raise ConfigError(f"{name} must be one of {choices}, not {value!r}", key=name)


def _key_part(spec: ConnectionSpec, name: str) -> Hashable:
    value = getattr(spec, name)
    if isinstance(value, Secret):
        return ("secret", keyed_digest(value.reveal()))
    if name == "options":
        return tuple((k, keyed_digest(v) if is_secret_key(k) else v) for k, v in spec.options)
    hashable: Hashable = value
    return hashable


def _escape(text: str, safe: str = "") -> str:
    """Percent-encoded UTF-8; a lone surrogate as surrogatepass writes it, which the URL
    parser reads back, so any spec that parses has a redacted() that parses."""
    return quote(text, safe=safe, errors="surrogatepass")


def _authority(spec: ConnectionSpec) -> str:
    user = _escape(spec.user) if spec.user else ""
    secret = ":***" if spec.password is not None else ""
    credentials = f"{user}{secret}@" if user or secret else ""
    host = spec.host or ""
    host = f"[{_escape(host, ':')}]" if ":" in host else _escape(host)
    port = f":{spec.port}" if spec.port is not None else ""
    return f"{credentials}{host}{port}"


_SETTING_NAMES = tuple(
    f.name for f in dataclasses.fields(ConnectionSpec) if f.name not in
    ("dialect", "driver", "host", "port", "instance", "database", "user", "password", "options")
)  # fmt: skip


def _query_items(spec: ConnectionSpec) -> list[tuple[str, str]]:
    """Query parameters for redacted(), values already percent-encoded."""
    items = [("instance", spec.instance)] if spec.instance else []
    for name in _SETTING_NAMES:
        value = getattr(spec, name)
        if value is not None:
            items.append((name, _setting_text(value)))
    items += spec.options
    return [(_escape(k), _query_value(k, v)) for k, v in items]


def _query_value(key: str, value: str) -> str:
    return "***" if is_secret_key(key) else _escape(value)


def _setting_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
