"""Packaging: the extras pyproject.toml declares, the messages that name them, and a real
build (sdist, then a wheel from it) installed into a fresh virtual environment."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import tether
from tether.vocab._drivers import DRIVERS

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
EXTRAS = ("postgresql", "asyncpg", "sqlserver", "mssql-python", "pyodbc", "pymssql", "pytds", "mysql",
          "embedded", "demo", "check", "cli", "otel", "prometheus", "sqlalchemy", "django", "django-mssql",
          "fastapi", "docs", "all", "dev")  # fmt: skip


def _project() -> dict[str, object]:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")
    with PYPROJECT.open("rb") as file:
        project: dict[str, object] = tomllib.load(file)["project"]
    return project


def _extras() -> dict[str, list[str]]:
    extras = _project()["optional-dependencies"]
    assert isinstance(extras, dict)
    return extras


def _name(requirement: str) -> str:
    """The distribution a requirement names, normalized (PEP 503), extras dropped."""
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group()).lower()


def _expand(extra: str, extras: dict[str, list[str]]) -> set[str]:
    """Every distribution an extra installs, following ``tether[...]`` references."""
    found: set[str] = set()
    for requirement in extras[extra]:
        if _name(requirement) == "tether":
            inner = re.search(r"\[(.*)\]", requirement)
            assert inner, requirement
            for name in inner.group(1).split(","):
                found |= _expand(name.strip(), extras)
        else:
            found.add(_name(requirement))
    return found


def test_extras_are_declared() -> None:
    assert set(_extras()) == set(EXTRAS)


def test_each_driver_names_an_extra_that_installs_it() -> None:
    extras = _extras()
    for info in DRIVERS:
        if not info.pooled:
            continue  # only classified (mysqlclient, mariadb): no extra
        assert info.extra in extras, info
        assert _name(info.package) in _expand(info.extra, extras), info
        assert info.install == f"pip install 'tether[{info.extra}]'"


def test_all_and_dev_cover_every_extra() -> None:
    extras = _extras()
    everything = _expand("all", extras)
    for extra in EXTRAS:
        if extra not in ("all", "dev", "docs", "fastapi"):  # site tools, an example: no runtime extras
            assert _expand(extra, extras) <= everything, extra
    dev = _expand("dev", extras)
    for extra in EXTRAS:
        if extra not in ("all", "dev"):  # the ops tests use OpenTelemetry and prometheus_client
            assert _expand(extra, extras) <= dev, extra
    assert {"pytest", "hypothesis", "build"} <= dev


def test_check_extra_brings_the_local_network_package() -> None:
    assert {"dnspython", "cryptography", "psutil"} <= _expand("check", _extras())


def test_demo_extra_brings_what_the_demo_imports() -> None:
    assert {"psycopg", "psycopg-pool", "pgserver", "matplotlib", "rich"} <= _expand("demo", _extras())


def test_version_is_written_once() -> None:
    project = _project()
    assert "version" not in project and project["dynamic"] == ["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+([a-z]+\d+)?", tether.__version__)


def test_license_metadata() -> None:
    project = _project()
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")


def test_missing_driver_message_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from tether.drivers import load_driver
    from tether.errors import ConfigError

    monkeypatch.setitem(sys.modules, "psycopg", None)  # import now fails as if it were not installed
    monkeypatch.delitem(sys.modules, "tether.drivers.psycopg", raising=False)
    wanted = "psycopg is not installed: pip install 'tether[postgresql]'"
    with pytest.raises(ConfigError, match=re.escape(wanted)):
        load_driver("postgresql", "psycopg")


# --- a real build --------------------------------------------------------------------------------


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=3).close()
    except OSError:
        return False
    return True


def _run(*argv: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run outside this checkout: no PYTHONPATH, another working directory."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout,
                          check=False, cwd=cwd, env=env)  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_sdist_and_wheel_install_into_a_fresh_venv(tmp_path: Path) -> None:
    if importlib.util.find_spec("build") is None:
        pytest.skip("the 'build' package is not installed: pip install 'tether[dev]'")
    if not _pypi_reachable():
        pytest.skip("pypi.org is not reachable: the isolated build cannot fetch setuptools")
    # A copy: setuptools writes tether.egg-info beside the package it builds, which must
    # not appear in this checkout's src/ (importlib.metadata would find a second tether).
    source = tmp_path / "source"
    junk = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(ROOT / "src", source / "src", ignore=junk)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    dist = tmp_path / "dist"
    # No flags: the sdist first, then the wheel built from the unpacked sdist, so a file
    # the sdist forgets breaks the wheel.
    built = _run(sys.executable, "-m", "build", "--outdir", dist, source, cwd=tmp_path)
    offline = r"No matching distribution found|Failed to establish a new connection|Network is unreachable"
    if built.returncode != 0 and re.search(offline, built.stdout + built.stderr):
        pytest.skip(f"the isolated build could not fetch setuptools: {built.stderr[-500:]}")
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    version = tether.__version__
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    assert sdist.name == f"tether-{version}.tar.gz"
    assert wheel.name == f"tether-{version}-py3-none-any.whl"

    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    assert f"tether-{version}/LICENSE" in names
    assert f"tether-{version}/src/tether/py.typed" in names

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = f"tether-{version}.dist-info"
        metadata = Parser().parsestr(archive.read(f"{info}/METADATA").decode())
        assert archive.read(f"{info}/licenses/LICENSE").decode().startswith("MIT License")
    assert "tether/py.typed" in names
    assert not [n for n in names if n.startswith("tests/")]
    assert metadata["Version"] == version
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert set(metadata.get_all("Provides-Extra") or []) == set(EXTRAS)
    requires = metadata.get_all("Requires-Dist") or []
    assert any(r.startswith("psycopg[binary]") and 'extra == "postgresql"' in r for r in requires)
    assert any(r.startswith("psutil") and 'extra == "check"' in r for r in requires)

    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env)
    python = env / "bin" / "python"
    pip = (python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index")
    installed = _run(*pip, wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr[-2000:]
    probe = ("import importlib.metadata as m, tether; "
             "print(tether.__version__, m.version('tether'), m.metadata('tether')['License-Expression'], "
             "tether.__file__)")  # fmt: skip
    shown = _run(python, "-c", probe, cwd=tmp_path, timeout=60)
    assert shown.returncode == 0, shown.stderr[-2000:]
    got_version, meta_version, licence, location = shown.stdout.split()
    assert got_version == meta_version == version
    assert licence == "MIT"
    assert str(env) in location  # the wheel's copy, not this checkout's
    cli = _run(env / "bin" / "tether", "--help", cwd=tmp_path, timeout=60)
    assert cli.returncode == 0 and "demo" in cli.stdout, cli.stderr[-2000:]


@pytest.mark.parametrize("page", ["README.md", "docs/index.md"])
def test_the_extras_tables_name_every_extra(page: str) -> None:
    text = (PYPROJECT.parent / page).read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`([a-z-]+)`", row.split("|")[1])}
    assert set(_extras()) <= named, f"{page}'s extras table lacks {sorted(set(_extras()) - named)}"
