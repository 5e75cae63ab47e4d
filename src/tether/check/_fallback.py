"""Log in without a tether driver module: python-tds for SQL Server, PyMySQL for MySQL.

Used by the login step while ``tether.drivers`` has no module for the database (or the one
asked for): one small function each, opening a connection as the driver would be asked to,
within the step's timeout.
"""

from __future__ import annotations

import importlib
import ssl
from dataclasses import dataclass
from typing import Any

from ..dsn import ConnectionSpec

__all__ = ["Direct", "direct_connector"]


@dataclass(frozen=True, slots=True)
class Direct:
    """A driver-like object: ``name``, ``connect(spec, timeout_s=, autocommit=)``, ``close(raw)``."""

    name: str

    def connect(self, spec: ConnectionSpec, *, timeout_s: float, autocommit: bool | None) -> Any:
        if self.name == "pytds":
            return _pytds(spec, timeout_s)
        return _pymysql(spec, timeout_s)

    def close(self, raw: Any) -> None:
        raw.close()


def direct_connector(dialect: str, wanted: str | None) -> Direct | None:
    """The fallback for ``dialect`` (when ``wanted`` is it or None), if its package is installed."""
    name = {"sqlserver": "pytds", "mysql": "pymysql"}.get(dialect)
    if name is None or wanted not in (None, name):
        return None
    try:
        importlib.import_module(name)
    except ImportError:
        return None
    return Direct(name)


def _secret(spec: ConnectionSpec) -> str:
    return spec.password.reveal() if spec.password is not None else ""


def _pytds(spec: ConnectionSpec, timeout_s: float) -> Any:
    pytds = importlib.import_module("pytds")  # untyped
    return pytds.connect(
        dsn=spec.host, port=spec.port, database=spec.database, user=spec.user or "",
        password=_secret(spec), login_timeout=timeout_s, timeout=timeout_s, autocommit=True,
        disable_connect_retry=True, appname=spec.application_name or "tether check",
    )


def _mysql_ssl(spec: ConnectionSpec) -> ssl.SSLContext | None:
    mode = (spec.option("ssl_mode") or spec.option("ssl-mode") or "").upper().replace("-", "_")
    if mode in ("", "DISABLED", "PREFERRED"):
        return None  # PyMySQL has no "preferred": it does not ask for TLS
    context = ssl.create_default_context(cafile=spec.option("ssl_ca"))
    if mode != "VERIFY_IDENTITY":
        context.check_hostname = False
    if mode == "REQUIRED":
        context.verify_mode = ssl.CERT_NONE
    return context


def _pymysql(spec: ConnectionSpec, timeout_s: float) -> Any:
    pymysql = importlib.import_module("pymysql")  # untyped
    return pymysql.connect(
        host=spec.host, port=spec.port or 3306, user=spec.user or "", password=_secret(spec),
        database=spec.database, connect_timeout=timeout_s, read_timeout=timeout_s, write_timeout=timeout_s,
        autocommit=True, ssl=_mysql_ssl(spec),
    )
