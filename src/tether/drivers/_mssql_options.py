"""SqlClient options (the keywords ``tether.dsn`` keeps as options) in each driver's terms.

One table: option key -> driver flavour -> how that driver says it. A flavour missing from
an option's table cannot honour it; a mapper raising ValueError cannot honour that value.
Either way the answer is a ConfigError naming the keyword and the driver: nothing is
dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..dsn import ConnectionSpec

MSODBCSQL, FREETDS, MSSQL_PYTHON, PYMSSQL, PYTDS = "msodbcsql", "freetds", "mssql_python", "pymssql", "pytds"
LABELS = {
    MSODBCSQL: "pyodbc with Microsoft's ODBC driver",
    FREETDS: "pyodbc with FreeTDS",
    MSSQL_PYTHON: "mssql-python",
    PYMSSQL: "pymssql",
    PYTDS: "python-tds",
}
_ODBC = (MSODBCSQL, FREETDS, MSSQL_PYTHON)

Pairs = list[tuple[str, Any]]  # ODBC keywords or keyword arguments, in order
Mapper = Callable[[str], Pairs]


def refuse(flavour: str, keyword: str, why: str = "") -> ConfigError:
    return ConfigError(
        f"{keyword!r} is not supported by {LABELS[flavour]}{': ' + why if why else ''}", key=keyword
    )


def _flag(odbc_key: str) -> dict[str, Mapper]:
    """A boolean whose false is the default everywhere: true maps to ``odbc_key=yes``."""

    def odbc(value: str) -> Pairs:
        return [(odbc_key, "yes")] if value == "true" else []

    return {flavour: odbc for flavour in _ODBC}


def _same(odbc_key: str, *flavours: str) -> dict[str, Mapper]:
    def same(value: str) -> Pairs:
        return [(odbc_key, value)]

    return dict.fromkeys(flavours, same)


def _only(default: str) -> Mapper:
    """Accepted when it asks for what every driver does anyway."""
    return lambda value: [] if value == default else _raise(value)


def _raise(value: str) -> Pairs:
    raise ValueError(value)


_MS_AUTH = {
    "SqlPassword": "SqlPassword",
    "ActiveDirectoryPassword": "ActiveDirectoryPassword",
    "ActiveDirectoryIntegrated": "ActiveDirectoryIntegrated",
    "ActiveDirectoryServicePrincipal": "ActiveDirectoryServicePrincipal",
    "ActiveDirectoryManagedIdentity": "ActiveDirectoryMsi",
    "ActiveDirectoryMSI": "ActiveDirectoryMsi",
    "ActiveDirectoryInteractive": "ActiveDirectoryInteractive",
}
# mssql-python gets tokens for these itself (azure-identity).
_MSSQL_PYTHON_AUTH = {**_MS_AUTH, "ActiveDirectoryDefault": "ActiveDirectoryDefault",
                      "ActiveDirectoryDeviceCodeFlow": "ActiveDirectoryDeviceCode"}  # fmt: skip


def _auth(table: dict[str, str]) -> Mapper:
    def mapper(value: str) -> Pairs:
        if value == "SqlPassword":
            return []
        return [("Authentication", table[value])]

    return mapper


def _packet_size(value: str) -> Pairs:
    return [("PacketSize", value)]


_READ_ONLY = {PYTDS: "readonly", PYMSSQL: "read_only"}


def _read_only(kwarg: str) -> Mapper:
    return lambda value: [(kwarg, value == "ReadOnly")]


# option key -> flavour -> mapper. A flavour missing from an option's table cannot honour
# it; a mapper raising ValueError cannot honour that value. Either way: ConfigError.
OPTIONS: dict[str, dict[str, Mapper]] = {
    "application_intent": {
        **_same("ApplicationIntent", MSODBCSQL, FREETDS, MSSQL_PYTHON),
        **{flavour: _read_only(kwarg) for flavour, kwarg in _READ_ONLY.items()},
    },
    "authentication": {
        MSODBCSQL: _auth(_MS_AUTH),
        MSSQL_PYTHON: _auth(_MSSQL_PYTHON_AUTH),
        FREETDS: _only("SqlPassword"),
        PYMSSQL: _only("SqlPassword"),
        PYTDS: _only("SqlPassword"),
    },
    "column_encryption_setting": {
        MSODBCSQL: lambda v: [("ColumnEncryption", "Enabled")] if v == "Enabled" else [],
        **{f: _only("Disabled") for f in (FREETDS, MSSQL_PYTHON, PYMSSQL, PYTDS)},
    },
    "current_language": {**_same("Language", MSODBCSQL, FREETDS), PYTDS: lambda v: [("language", v)]},
    "enlist": {f: _only("false") for f in (*_ODBC, PYMSSQL, PYTDS)},
    "failover_partner": {PYTDS: lambda v: [("failover_partner", v)]},
    "host_name_in_certificate": _same("HostnameInCertificate", MSODBCSQL, MSSQL_PYTHON),
    "integrated_security": {
        **_flag("Trusted_Connection"),
        PYTDS: lambda v: [("use_sso", True)] if v == "true" else [],
        PYMSSQL: _only("false"),
    },
    "ip_address_preference": {
        **_same("IpAddressPreference", MSODBCSQL, MSSQL_PYTHON),
        **{f: _only("UsePlatformDefault") for f in (FREETDS, PYMSSQL, PYTDS)},
    },
    "multiple_active_result_sets": {
        MSODBCSQL: _flag("MARS_Connection")[MSODBCSQL],
        FREETDS: _flag("MARS_Connection")[FREETDS],
        PYTDS: lambda v: [("use_mars", True)] if v == "true" else [],
        MSSQL_PYTHON: _only("false"),
        PYMSSQL: _only("false"),
    },
    "multi_subnet_failover": {
        **_flag("MultiSubnetFailover"),
        FREETDS: _only("false"),
        PYMSSQL: _only("false"),
        PYTDS: _only("false"),
    },
    "packet_size": {
        **dict.fromkeys(_ODBC, _packet_size),
        PYTDS: lambda v: [("blocksize", int(v))],
    },
    # tether never shows a password, whatever this says: nothing to pass on.
    "persist_security_info": {f: (lambda v: []) for f in (*_ODBC, PYMSSQL, PYTDS)},
    "replication": {f: _only("false") for f in (*_ODBC, PYMSSQL, PYTDS)},
    "server_certificate": _same("ServerCertificate", MSODBCSQL, MSSQL_PYTHON),
    "server_spn": _same("ServerSPN", MSODBCSQL, FREETDS, MSSQL_PYTHON),
    "transaction_binding": {f: _only("Implicit Unbind") for f in (*_ODBC, PYMSSQL, PYTDS)},
    "type_system_version": {f: _only("Latest") for f in (*_ODBC, PYMSSQL, PYTDS)},
    "user_instance": {f: _only("false") for f in (*_ODBC, PYMSSQL, PYTDS)},
    "workstation_id": _same("WSID", MSODBCSQL, FREETDS),
    "attach_db_filename": _same("AttachDBFileName", MSODBCSQL),
}
# Keywords tether reads itself, never passed to a driver: the ODBC driver's choice, which
# pyodbc honours (_odbc_driver), mssql-python when it names the Microsoft driver it bundles,
# and the drivers without ODBC refuse.
_TETHER_OPTIONS = frozenset({"driver", "odbc_driver"})
_NO_ODBC = (PYMSSQL, PYTDS)


def _check_odbc_choice(spec: ConnectionSpec, flavour: str) -> None:
    from ._odbc_driver import flavour_of

    named = spec.option("odbc_driver") or spec.option("driver")
    if not named or flavour in (MSODBCSQL, FREETDS):
        return
    if flavour in _NO_ODBC:
        raise refuse(flavour, "Driver", f"{named!r} is an ODBC driver, and {LABELS[flavour]} does not use "
                     "ODBC; connect with pyodbc (mssql+pyodbc://, or driver='pyodbc') to use it")  # fmt: skip
    if flavour_of(named.strip("{}")) != MSODBCSQL:
        raise refuse(flavour, "Driver", f"mssql-python always uses Microsoft's ODBC driver, not {named!r}; "
                     "connect with pyodbc (mssql+pyodbc://, or driver='pyodbc') to use it")  # fmt: skip


def map_options(spec: ConnectionSpec, flavour: str) -> tuple[Pairs, dict[str, str]]:
    """The SqlClient options mapped for ``flavour``, and the driver's own options left over."""
    from ..dsn._keywords import OPTIONS as KEYWORDS

    _check_odbc_choice(spec, flavour)
    mapped: Pairs = []
    foreign: dict[str, str] = {}
    for key, value in spec.options:
        if key in _TETHER_OPTIONS:
            continue
        keyword = KEYWORDS.get(key)
        if keyword is None:
            foreign[key] = value  # written for the driver itself (a URL query parameter)
            continue
        mapper = OPTIONS.get(key, {}).get(flavour)
        if mapper is None:
            raise refuse(flavour, keyword.name)
        try:
            mapped += mapper(value)
        except (ValueError, KeyError):
            raise refuse(flavour, keyword.name, f"{value!r} cannot be honoured") from None
    return mapped, foreign
