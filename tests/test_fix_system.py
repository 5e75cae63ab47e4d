"""Tests that need a missing system library skip with the command that installs it (issue 19)."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from typing import Any, cast

import pytest

import fix_system
import fix_tds
from fix_system import import_driver, missing_library, need_msodbc


@pytest.fixture
def no_libltdl(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The loader as on a fresh Debian 12: libltdl.so.7 absent, so is anything that links it."""
    real = ctypes.CDLL

    def cdll(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "libltdl.so.7" or "msodbcsql" in name:
            raise OSError("libltdl.so.7: cannot open shared object file: No such file or directory")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(fix_system.ctypes, "CDLL", cdll)
    missing_library.cache_clear()
    yield
    missing_library.cache_clear()


def test_missing_libltdl_names_the_package(no_libltdl: None) -> None:
    with pytest.raises(pytest.skip.Exception) as skipped:
        need_msodbc("/somewhere/libmsodbcsql-18.6.so.2.1")
    assert str(skipped.value) == ("libltdl.so.7 is missing (needed by mssql-python's ODBC driver): "
                                  "apt-get install libltdl7")


def test_mssql_python_skips_rather_than_fails(no_libltdl: None) -> None:
    pytest.importorskip("mssql_python")
    if fix_tds.msodbc_library() is None:
        pytest.skip("no mssql-python-odbc wheel here")
    for connect in (fix_tds.connect_mssql_python, fix_tds.connect_pyodbc_msodbc):
        with pytest.raises(pytest.skip.Exception, match=r"apt-get install libltdl7"):
            connect(cast(Any, None))  # skips before it would touch the server


def test_a_library_that_loads_is_not_missing() -> None:
    assert missing_library("libc.so.6", "the test") is None


def test_a_driver_without_its_system_library_names_apt(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(name: str) -> None:
        raise ImportError("libodbc.so.2: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(fix_system.importlib, "import_module", fail)
    with pytest.raises(pytest.skip.Exception, match=r"^libodbc\.so\.2 is missing \(needed by pyodbc\): "
                                                      r"apt-get install unixodbc$"):
        import_driver("pyodbc")


def test_an_absent_driver_names_pip() -> None:
    with pytest.raises(pytest.skip.Exception, match=r"pip install 'tether\[dev\]'$"):
        import_driver("no_such_driver_module")
