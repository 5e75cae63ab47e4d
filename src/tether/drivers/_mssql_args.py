"""A SQL Server ConnectionSpec in each driver's own terms.

SqlClient keywords (already parsed and validated by ``tether.dsn``) become: an ODBC
connection string for pyodbc (Microsoft's ODBC driver 18 or FreeTDS) and for
mssql-python, keyword arguments for pymssql and python-tds. Every option is either
mapped to what the driver honours or refused with a ConfigError that names the keyword
and the driver: nothing is dropped silently, and TLS is never weaker than asked for.

Decisions worth knowing:

- ``Encrypt`` unset means the driver's own default (Microsoft's driver: mandatory and
  validated; FreeTDS: opportunistic), except on Azure SQL endpoints, where it means
  mandatory, as in SqlClient. Mandatory encryption validates the server certificate
  unless ``TrustServerCertificate=true``; a driver that cannot validate (FreeTDS, under
  pyodbc or pymssql) refuses it rather than encrypt without checking.
- ``ConnectRetryCount`` and friends are tether's (the pool retries opens, the session
  proxy recovers idle breaks), so Microsoft's driver gets ``ConnectRetryCount=0``: a
  reconnect inside the driver would swap the socket under tether's liveness probe.
- Values go into ODBC strings in braces whenever they hold anything but plain text,
  with ``}`` doubled (the ODBC escape both Microsoft's driver and FreeTDS read).
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ._mssql_options import FREETDS, LABELS, MSSQL_PYTHON, PYMSSQL, PYTDS, Pairs, map_options, refuse

if TYPE_CHECKING:
    from ..dsn import ConnectionSpec

# -- encryption -----------------------------------------------------------------------------


def encryption(spec: ConnectionSpec) -> str | None:
    """mandatory, optional, strict, or None for the driver's default (Azure: mandatory)."""
    if spec.encrypt is None and spec.is_azure:
        return "mandatory"
    return spec.encrypt


def _ms_tls(spec: ConnectionSpec) -> Pairs:
    pairs: Pairs = []
    encrypt = encryption(spec)
    if encrypt is not None:
        pairs.append(("Encrypt", {"mandatory": "yes", "optional": "no", "strict": "strict"}[encrypt]))
    if spec.trust_server_certificate is not None:
        pairs.append(("TrustServerCertificate", "yes" if spec.trust_server_certificate else "no"))
    return pairs


def _freetds_tls(spec: ConnectionSpec, flavour: str) -> Pairs:
    encrypt = encryption(spec)
    if encrypt is None:
        return []
    if encrypt == "strict":
        raise refuse(flavour, "Encrypt", "strict (TDS 8) needs FreeTDS 1.4; use mssql_python or pyodbc "
                     "with Microsoft's driver")  # fmt: skip
    if encrypt == "optional":
        return [("Encryption", "request")]
    if spec.trust_server_certificate:
        return [("Encryption", "require")]
    # FreeTDS validates only against a "ca file" from freetds.conf: its ODBC connection
    # string and pymssql's arguments have no way to ask for it (1.3 ignores CAFile=), and
    # encrypting without validation is not what Encrypt=true means.
    raise refuse(
        flavour,
        "Encrypt",
        "FreeTDS cannot be asked to validate the server certificate from a connection string; "
        "set TrustServerCertificate=true to encrypt without validation, or use mssql_python "
        "(or pyodbc with Microsoft's ODBC driver), which validates",
    )


def _system_ca_file() -> str:
    import ssl

    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and os.path.exists(candidate):
            return candidate
    raise ConfigError("Encrypt=true needs the system's CA certificates, and none were found", key="encrypt")


# -- ODBC (pyodbc, mssql-python) --------------------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z0-9_.\-:\\/@#$%^&*!?+~ ,\[\]]*")


def odbc_quote(value: str) -> str:
    """An ODBC connection-string value: braces around anything that is not plain text."""
    if "\x00" in value:
        raise ConfigError("a NUL character cannot be passed in an ODBC connection string", key="odbc")
    plain = _PLAIN.fullmatch(value) is not None and value == value.strip() and not value.startswith("{")
    return value if plain and value else "{" + value.replace("}", "}}") + "}"


def odbc_string(pairs: Pairs) -> str:
    return "".join(f"{key}={odbc_quote(str(value))};" for key, value in pairs)


def _server(spec: ConnectionSpec, flavour: str) -> Pairs:
    host = spec.host or "localhost"
    host = f"[{host}]" if ":" in host else host
    if flavour == FREETDS:  # FreeTDS wants the port apart, and an instance after a backslash
        if spec.port is None and spec.instance:
            return [("Server", f"{host}\\{spec.instance}")]
        return [("Server", host), ("Port", spec.port or 1433)]
    where = f"{host}\\{spec.instance}" if spec.instance and spec.port is None else host
    return [("Server", f"tcp:{where}" + (f",{spec.port}" if spec.port is not None else ""))]


def odbc_pairs(spec: ConnectionSpec, flavour: str) -> Pairs:
    """The ODBC keywords for ``spec`` (the command timeout is tether's own: not among them)."""
    pairs = _server(spec, flavour)
    if flavour == FREETDS:
        pairs.append(("TDS_Version", spec.option("tds_version") or "7.4"))
    if spec.database:
        pairs.append(("Database", spec.database))
    if spec.user is not None:
        pairs.append(("UID", spec.user))
    if spec.password is not None:
        pairs.append(("PWD", spec.password.reveal()))
    if spec.application_name and flavour != MSSQL_PYTHON:  # mssql-python's goes in apart
        pairs.append(("APP", spec.application_name))
    pairs += _freetds_tls(spec, flavour) if flavour == FREETDS else _ms_tls(spec)
    if flavour != FREETDS:
        pairs.append(("ConnectRetryCount", 0))
    mapped, foreign = map_options(spec, flavour)
    pairs += mapped
    if flavour == FREETDS:
        foreign.pop("tds_version", None)
    pairs += _foreign_odbc(foreign, pairs, flavour)
    return pairs


# ODBC keywords that name the server, the login or the TLS policy: tether writes those from
# the connection string's own keywords, and a second spelling must not override them.
_ODBC_RESERVED = frozenset({
    "driver", "dsn", "filedsn", "savefile", "server", "servername", "address", "addr", "port", "database",
    "uid", "pwd", "app", "encrypt", "encryption", "trustservercertificate", "cafile", "ca file",
    "hostnameincertificate", "servercertificate", "connectretrycount", "trusted_connection", "authentication",
})  # fmt: skip


def _foreign_odbc(foreign: dict[str, str], pairs: Pairs, flavour: str) -> Pairs:
    """ODBC keywords written as such in a URL (``?ClientCharset=UTF-8``): passed as written,
    for the ODBC driver to judge, unless they would override what tether wrote."""
    written = {key.lower() for key, _ in pairs}
    for key in foreign:
        if key.lower() in _ODBC_RESERVED or key.lower() in written:
            raise ConfigError(
                f"{key!r} conflicts with the connection string's own keywords, which tether passes "
                f"to {LABELS[flavour]} itself (write them as SqlClient keywords: Server, Database, "
                "User ID, Password, Encrypt, TrustServerCertificate...)",
                key=key,
            )
    return list(foreign.items())


def login_timeout(timeout_s: float) -> int:
    """Whole seconds for drivers that count so; 0 would mean "wait for ever"."""
    return max(1, math.ceil(timeout_s))


# -- pymssql and python-tds ----------------------------------------------------------------------


def pymssql_kwargs(spec: ConnectionSpec, timeout_s: float) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"login_timeout": login_timeout(timeout_s), "port": str(spec.port or 1433)}
    host = spec.host or "localhost"
    kwargs["server"] = f"{host}\\{spec.instance}" if spec.instance and spec.port is None else host
    if spec.database:
        kwargs["database"] = spec.database
    if spec.user is not None:
        kwargs["user"] = spec.user
    if spec.password is not None:
        kwargs["password"] = spec.password.reveal()
    if spec.application_name:
        kwargs["appname"] = spec.application_name
    tls = dict(_freetds_tls(spec, PYMSSQL))
    if tls:
        kwargs["encryption"] = tls["Encryption"]
    own = ("tds_version", "charset", "conn_properties", "use_datetime2")
    return _with_options(kwargs, spec, PYMSSQL, own)


def pytds_kwargs(spec: ConnectionSpec, timeout_s: float) -> dict[str, Any]:
    # tether retries opens itself: pytds's own retry loop would spend the whole timeout.
    kwargs: dict[str, Any] = {"login_timeout": timeout_s, "disable_connect_retry": True}
    kwargs["dsn"] = spec.host or "localhost"  # python-tds's name for the server
    if spec.port is not None:
        kwargs["port"] = spec.port
    elif spec.instance:
        kwargs["dsn"] = f"{kwargs['dsn']}\\{spec.instance}"
    if spec.database:
        kwargs["database"] = spec.database
    if spec.user is not None:
        kwargs["user"] = spec.user
    if spec.password is not None:
        kwargs["password"] = spec.password.reveal()
    if spec.application_name:
        kwargs["appname"] = spec.application_name
    kwargs.update(_pytds_tls(spec))
    return _with_options(kwargs, spec, PYTDS, ("cafile",))


def _pytds_tls(spec: ConnectionSpec) -> dict[str, Any]:
    encrypt = encryption(spec)
    cafile = spec.option("cafile")
    if encrypt is None or encrypt == "optional":
        return {}
    if encrypt == "strict":
        raise refuse(PYTDS, "Encrypt", "strict (TDS 8) is not implemented by python-tds")
    if importlib.util.find_spec("OpenSSL") is None:
        raise refuse(PYTDS, "Encrypt", "python-tds encrypts with pyOpenSSL: pip install pyOpenSSL")
    if spec.trust_server_certificate and not cafile:
        raise refuse(PYTDS, "TrustServerCertificate", "python-tds always validates the certificate chain; "
                     "give the server's CA with ?cafile=/path")  # fmt: skip
    return {"cafile": cafile or _system_ca_file(), "validate_host": not spec.trust_server_certificate}


def _with_options(
    kwargs: dict[str, Any], spec: ConnectionSpec, flavour: str, own: tuple[str, ...]
) -> dict[str, Any]:
    mapped, foreign = map_options(spec, flavour)
    for key, value in mapped:
        kwargs[key] = value
    for key, value in foreign.items():
        if key in kwargs and kwargs[key] != value:
            raise ConfigError(f"{key!r} conflicts with what tether passes to {LABELS[flavour]}", key=key)
        if key not in own:
            raise ConfigError(
                f"{key!r} is not an option tether passes to {LABELS[flavour]}; "
                f"it takes {', '.join(own)} besides the SqlClient keywords",
                key=key,
            )
        kwargs[key] = _typed(value)
    return kwargs


def _typed(value: str) -> Any:
    lowered = value.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    return int(value) if value.isdigit() else value
