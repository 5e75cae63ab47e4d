"""System pieces (shared libraries from Debian packages) some tests need, found by loading them.

Each ``need_*`` returns what the test needs or skips it with the exact command that installs
the missing piece: a fresh machine lacks these until ``tools/system_packages.sh`` has run,
and a test that cannot run there must say how to make it run, not fail. Libraries are found
by asking the dynamic loader (``ctypes.CDLL``), which is what the drivers do themselves.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import re
import socket
from types import ModuleType

import pytest

# soname -> the Debian package that ships it (tools/system_packages.sh installs the same)
PACKAGES = {
    "libltdl.so.7": "libltdl7",
    "libodbc.so.2": "unixodbc",
    "libodbcinst.so.2": "unixodbc",
    "libkrb5.so.3": "libkrb5-3",
    "libgssapi_krb5.so.2": "libgssapi-krb5-2",
}
MSODBC = "mssql-python's ODBC driver"


def _soname(error: str) -> str | None:
    found = re.search(r"(lib[\w+.-]+?\.so(?:\.\d+)*): cannot open shared object", error)
    return found.group(1) if found else None


def _install_hint(soname: str) -> str:
    package = PACKAGES.get(soname)
    return f"apt-get install {package}" if package else f"install the package that ships {soname}"


@functools.cache
def missing_library(library: str, needed_by: str) -> str | None:
    """None when ``library`` (a soname or a path) loads, else why not and how to install it."""
    try:
        ctypes.CDLL(library)
    except OSError as exc:
        soname = _soname(str(exc)) or library
        return f"{soname} is missing (needed by {needed_by}): {_install_hint(soname)}"
    return None


def need_library(library: str, needed_by: str) -> None:
    reason = missing_library(library, needed_by)
    if reason is not None:
        pytest.skip(reason)


def import_driver(module: str, package: str = "'tether[dev]'") -> ModuleType:
    """Import a driver; skip naming ``pip install`` when it is absent, ``apt-get install``
    when it is there but a system library it links is not (pyodbc without libodbc.so.2)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        soname = _soname(str(exc))
        if soname is not None:
            pytest.skip(f"{soname} is missing (needed by {module}): {_install_hint(soname)}")
        pytest.skip(f"{module} is not installed ({exc}): pip install {package}")


def need_msodbc(library: str | None) -> str:
    """Microsoft's ODBC Driver 18 from the mssql-python-odbc wheel (``fix_tds.msodbc_library()``),
    used by mssql-python and by pyodbc-msodbc, checked to load with its system dependencies."""
    if library is None:
        pytest.skip("Microsoft's ODBC driver 18 library is not available: pip install "
                    "'tether[mssql-python]' (it brings the mssql-python-odbc wheel)")
    need_library("libltdl.so.7", MSODBC)  # the usual one missing: named even if others are too
    need_library(library, MSODBC)
    return library


def need_localhost_ipv4_only() -> None:
    """Skip where ``localhost`` also names ::1 (Debian's /etc/hosts does): the test servers
    listen on 127.0.0.1 only, so a check through that name sees a refused address."""
    found = {info[4][0] for info in socket.getaddrinfo("localhost", None, proto=socket.IPPROTO_TCP)}
    if found != {"127.0.0.1"}:
        pytest.skip(f"localhost resolves to {', '.join(sorted(found))} here, not 127.0.0.1 alone "
                    "(/etc/hosts), and the test servers listen on 127.0.0.1 only")
