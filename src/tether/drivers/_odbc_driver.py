"""Which ODBC driver pyodbc loads for SQL Server: the one named, else the first found."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ._mssql_options import FREETDS, MSODBCSQL

if TYPE_CHECKING:
    from ..dsn import ConnectionSpec

@dataclass(frozen=True, slots=True)
class OdbcDriver:
    flavour: str  # MSODBCSQL or FREETDS
    name: str  # what goes after Driver=: a registered name or a library path

    @property
    def label(self) -> str:
        """For people: ``FreeTDS (/usr/lib/.../libtdsodbc.so)``."""
        kind = "FreeTDS" if self.flavour == FREETDS else "Microsoft's ODBC driver"
        return f"{kind} ({self.name})"


_FREETDS_PATHS = (
    "/usr/lib/x86_64-linux-gnu/odbc/libtdsodbc.so",
    "/usr/lib/aarch64-linux-gnu/odbc/libtdsodbc.so",
    "/usr/lib64/libtdsodbc.so.0",
    "/usr/local/lib/libtdsodbc.so",
    "/opt/homebrew/lib/libtdsodbc.so",
)


def odbc_driver(spec: ConnectionSpec, registered: list[str]) -> OdbcDriver:
    """The ODBC driver named in the spec (``driver=``), else the first found of
    Microsoft's ODBC driver 18 (from the ``mssql-python-odbc`` wheel, or registered) and
    FreeTDS."""
    named = spec.option("odbc_driver") or spec.option("driver")
    if named:
        return OdbcDriver(flavour_of(named.strip("{}")), named.strip("{}"))
    for name in registered:
        if name.startswith("ODBC Driver 18 for SQL Server"):
            return OdbcDriver(MSODBCSQL, name)
    bundled = bundled_msodbcsql()
    if bundled:
        return OdbcDriver(MSODBCSQL, bundled)
    for name in registered:
        if name.startswith("ODBC Driver 17 for SQL Server"):
            return OdbcDriver(MSODBCSQL, name)
    freetds = freetds_library(registered)
    if freetds:
        return OdbcDriver(FREETDS, freetds)
    raise ConfigError(
        "pyodbc found no SQL Server ODBC driver: pip install 'tether[mssql-python]' (it brings Microsoft's "
        "ODBC driver 18), or install FreeTDS's (Debian: apt-get install tdsodbc)",
        key="driver",
    )


def flavour_of(name: str) -> str:
    lowered = name.lower()
    if "msodbcsql" in lowered or ("odbc driver" in lowered and "sql server" in lowered):
        return MSODBCSQL
    if "tdsodbc" in lowered or "freetds" in lowered:
        return FREETDS
    raise ConfigError(
        f"unknown ODBC driver {name!r}: tether knows Microsoft's ODBC driver for SQL Server and FreeTDS",
        key="driver",
    )


def bundled_msodbcsql() -> str | None:
    """Microsoft's ODBC driver library from the ``mssql-python-odbc`` wheel, if installed."""
    found = importlib.util.find_spec("mssql_python_odbc")
    if found is None or not found.submodule_search_locations:
        return None
    root = os.path.join(next(iter(found.submodule_search_locations)), "libs", "linux")
    distros = ["rhel", "suse"]
    distros.insert(0 if os.path.exists("/etc/debian_version") else 2, "debian_ubuntu")
    for distro in distros:
        lib = os.path.join(root, distro, os.uname().machine, "lib")
        if os.path.isdir(lib):
            for entry in sorted(os.listdir(lib), reverse=True):
                if entry.startswith("libmsodbcsql-18") and ".so" in entry:
                    return os.path.join(lib, entry)
    return None


def freetds_library(registered: list[str]) -> str | None:
    for name in registered:
        if name.lower() == "freetds":
            return name
    return next((path for path in _FREETDS_PATHS if os.path.exists(path)), None)
