"""Tests that nobody here wrote: SQLAlchemy's and Django's own suites, with and without tether.

Downloads the source distributions of the installed SQLAlchemy and Django from PyPI (``pip
download --no-binary``), unpacks them into ``.compat/``, starts an embedded PostgreSQL on
127.0.0.1 (the system's PostgreSQL binaries when they have the contrib extensions
SQLAlchemy's provisioning creates, citext and hstore; else pgserver's), and runs:

- SQLAlchemy: ``test/dialect/postgresql``, ``test/engine/test_reconnect.py``,
  ``test/engine/test_pool.py``, ``test/orm/test_transaction.py`` with ``--dburi
  postgresql+psycopg://...``, once as they are and once with tether's pool in every engine
  (``tether.sqlalchemy``'s plugin, when that module exists);
- Django: the ``backends``, ``transactions``, ``transaction_hooks`` and ``queries`` apps with
  ``tests/runtests.py``, once with ``django.db.backends.postgresql`` and once with
  ``tether.django.postgresql``.

Each run's pass/fail/skip/error counts go to ``bench/results/compat.json`` and a table on
stdout, with every test whose outcome differs between the two runs of a suite and the
reason (``EXPLAINED``; a difference without one is printed as unexplained).

    python tools/compat.py                 # everything (a few minutes)
    python tools/compat.py --only django   # one suite
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from tether.testing import EmbeddedPostgres  # noqa: E402

CACHE = ROOT / ".compat"
RESULTS = ROOT / "bench" / "results" / "compat.json"
SYSTEM_PG = Path("/usr/lib/postgresql")
RUN_TIMEOUT_S = 1200.0  # one suite run, at most

SQLALCHEMY_TESTS = ("test/dialect/postgresql", "test/engine/test_reconnect.py",
                    "test/engine/test_pool.py", "test/orm/test_transaction.py")
DJANGO_APPS = ("backends", "transactions", "transaction_hooks", "queries")

# Why a test's outcome differs with tether. Keys are test ids as the report prints them,
# "*" matching anything (the server's version is in SQLAlchemy's class names).
EXPLAINED = {
    "sqlalchemy:test.dialect.postgresql.test_dialect.MiscBackendTest_*.test_readonly_flag_*": (
        "keeps the DBAPI connection (conn.connection.dbapi_connection) after the Connection went "
        "back and reads its session through it: tether's connection refuses every use after its "
        "borrow ended (ConnectionReturned), so no stale reference reaches the next borrower"),
    "sqlalchemy:test.dialect.postgresql.test_dialect.MiscBackendTest_*.test_deferrable_flag_*": (
        "the same as test_readonly_flag_*: the DBAPI connection used after it went back"),
    "sqlalchemy:test.engine.test_reconnect.RealPrePingEventHandlerTest_*": (
        "injects its faults by patching the dialect's dbapi.connect; tether opens connections with "
        "its own driver, so no fault is injected and the expected error never comes"),
    "sqlalchemy:test.dialect.postgresql.test_types.NumRangeRoundTripTest_*": (
        "RuntimeError: concurrent poll() invocation at setup, once: tether's socket probe keeps one "
        "select.poll object per connection (net/_probe.py), used from two threads at once here; "
        "a tether bug, reported"),
    "django:backends.postgresql.tests.Tests.test_connect_pool*": (
        "tests Django's own psycopg_pool option (OPTIONS['pool']); the tether backend replaces that "
        "pool with tether's and refuses OPTIONS['pool'] with ImproperlyConfigured"),
    "django:backends.postgresql.tests.Tests.test_pooling*": (
        "tests Django's own psycopg_pool option (OPTIONS['pool']), which the tether backend "
        "replaces (connection.pool is None; the pool is tether.django.pool_for_alias())"),
    "django:backends.postgresql.tests.Tests.test_bypass_timezone_configuration": (
        "assumes the session's default time zone is the server's: the tether backend makes "
        "Django's time zone the session default (libpq's options=-c TimeZone=...), so that the "
        "pool's DISCARD ALL keeps it and no SET TIME ZONE is needed; RESET TIMEZONE then gives "
        "Django's zone and _configure_connection has nothing to commit"),
    "django:backends.postgresql.tests.Tests.test_connect_role": (
        "expects psycopg's InvalidParameterValue from connect() for a role that does not exist; the "
        "tether backend sets the role in the pool's configure hook, whose failure makes the "
        "connection fail: tether.ConnectError (a psycopg.OperationalError), raised from that error"),
}


@dataclass
class Run:
    """One run of one suite: its counts and each test's outcome."""

    suite: str
    variant: str
    command: str
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    note: str = ""


# -- sources --------------------------------------------------------------------------------


def source_tree(package: str, version: str) -> Path:
    """The unpacked sdist of ``package==version`` in the cache (downloaded once)."""
    sdists = CACHE / "sdists"
    sdists.mkdir(parents=True, exist_ok=True)
    (CACHE / ".gitignore").write_text("*\n")
    found = sorted(sdists.glob(f"{package.lower()}-{version}.tar.gz"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--no-binary", package.lower(), "-d", str(sdists), f"{package}=={version}"],
                       check=True, timeout=600)
        found = sorted(sdists.glob(f"{package.lower()}-{version}.tar.gz"))
    tree = CACHE / found[0].name.removesuffix(".tar.gz")
    if not tree.exists():
        with tarfile.open(found[0]) as archive:
            archive.extractall(CACHE, filter="data")
    return tree


def postgres_bin_dir() -> Path | None:
    """The newest system PostgreSQL with citext and hstore (SQLAlchemy's provisioning creates
    both); None: pgserver's, without them."""
    for bin_dir in sorted(SYSTEM_PG.glob("*/bin"), reverse=True):
        share = Path("/usr/share/postgresql") / bin_dir.parent.name / "extension"
        if (bin_dir / "postgres").exists() and (share / "citext.control").exists():
            return bin_dir
    return None


# -- SQLAlchemy -----------------------------------------------------------------------------

def tether_sqlalchemy() -> str | None:
    """Why the SQLAlchemy suite cannot run with tether here, or None when it can."""
    try:
        import tether.sqlalchemy  # noqa: F401
    except ImportError as exc:
        return f"tether.sqlalchemy is not importable ({exc}): only the run without tether"
    return None


# Loaded into SQLAlchemy's pytest with -p, in both runs. SQLAlchemy's test plugin runs its
# provisioning (and, with an async driver, the tests) inside an asyncio loop, in a greenlet,
# even for a blocking driver; tether's threaded pool refuses to block a running loop (its
# guard against a sync pool used from a coroutine), so the harness runs without that loop:
# no run here uses an async driver.
_PLUGIN_MODULE = '''"""Written by tools/compat.py (see _PLUGIN_MODULE there)."""
import os

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    from sqlalchemy.testing import asyncio

    asyncio.ENABLE_ASYNCIO = False
    if os.environ.get("COMPAT_TETHER") == "1":
        import tether.sqlalchemy  # registers the "tether" engine plugin

        made = tether.sqlalchemy.TetherPool.__init__

        def counted(self, *args, **kwargs):  # evidence that the engines ran on tether's pool
            MADE.append(1)
            made(self, *args, **kwargs)

        tether.sqlalchemy.TetherPool.__init__ = counted
        # create_engine takes "plugin=tether" out of the URL it keeps (engine.url), and
        # SQLAlchemy's testing_engine() builds its engines from config.db.url: without this,
        # only config.db would run on tether's pool.
        import sqlalchemy

        create_engine = sqlalchemy.create_engine

        def on_tether(url, **kwargs):
            # Engines on the test server through psycopg, opened by the dialect: not the
            # tests' SQLite or mock-DBAPI engines, nor those given their own creator or
            # pool, which tether's plugin refuses (it opens the connections itself).
            real = str(url).startswith(os.environ["COMPAT_DBURI"]) and not {
                "creator", "async_creator", "pool", "poolclass", "module"} & set(kwargs)
            plugins = list(kwargs.pop("plugins", None) or [])
            if real and "tether" not in plugins and "plugin=tether" not in str(url):
                plugins.append("tether")
            return create_engine(url, plugins=plugins, **kwargs) if plugins else create_engine(url, **kwargs)

        sqlalchemy.create_engine = on_tether


MADE = []


def pytest_sessionfinish(session):
    with open(os.environ["COMPAT_POOLS_FILE"], "w") as out:
        out.write(str(len(MADE)))
'''


def run_sqlalchemy(tree: Path, pg: EmbeddedPostgres, variant: str) -> Run:
    database = "sqla_test"
    recreate_database(pg, database, schemas=("test_schema", "test_schema_2"))
    dburi = f"postgresql+psycopg://{pg.user}@{pg.host}:{pg.port}/{database}"
    if variant == "tether":
        dburi += "?plugin=tether"
    report = CACHE / "results" / f"sqlalchemy-{variant}.xml"
    report.parent.mkdir(exist_ok=True)
    plugin_dir = CACHE / "plugins"
    plugin_dir.mkdir(exist_ok=True)
    (plugin_dir / "tether_compat_plugin.py").write_text(_PLUGIN_MODULE)
    command = [sys.executable, "-m", "pytest", *SQLALCHEMY_TESTS, "--dburi", dburi,
               "-p", "tether_compat_plugin", "-p", "no:cacheprovider", "-q", "--tb=line",
               f"--junitxml={report}",
               "-o", "addopts=--strict-markers -p warnings -p logging"]
    run = Run("sqlalchemy", variant, " ".join(command[3:]))
    # the sdist's lib/ first (its conftest puts it there too), so the plugin and the tests
    # import the same SQLAlchemy
    env = with_tether_path(tree / "lib", plugin_dir)
    env["COMPAT_TETHER"] = "1" if variant == "tether" else "0"
    env["COMPAT_DBURI"] = dburi.split("?")[0]
    pools_file = CACHE / "results" / f"sqlalchemy-{variant}.pools"
    env["COMPAT_POOLS_FILE"] = str(pools_file)
    output = timed_run(run, command, cwd=tree, env=env)
    if variant == "tether" and pools_file.exists():
        run.note = f"engines on tether's pool (TetherPool instances made): {pools_file.read_text()}"
    if not report.exists():
        run.note = "no report: " + output[-2000:]
        return run
    run.outcomes = junit_outcomes(report)
    run.counts = dict(Counter(run.outcomes.values()))
    return run


def junit_outcomes(report: Path) -> dict[str, str]:
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        test_id = f"sqlalchemy:{case.get('classname')}.{case.get('name')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed" if child.tag == "failure" else "error"
            elif child.tag == "skipped":
                outcome = "xfailed" if (child.get("type") or "").endswith("xfail") else "skipped"
        outcomes[test_id] = outcome
    return outcomes


# -- Django ---------------------------------------------------------------------------------

_DJANGO_SETTINGS = '''"""runtests.py's settings for the embedded PostgreSQL (written by tools/compat.py)."""
import os

DATABASES = {{
    alias: {{"ENGINE": os.environ["COMPAT_ENGINE"], "HOST": "{host}", "PORT": {port}, "NAME": name,
             "USER": "{user}"}}
    for alias, name in (("default", "django_default"), ("other", "django_other"))
}}
SECRET_KEY = "django_tests_secret_key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = False
'''

ENGINES = {"django": "django.db.backends.postgresql", "tether": "tether.django.postgresql"}
_RESULT_LINE = re.compile(r"^(test\w*) \(([\w.]+)\)(?:\n.*?)? \.\.\. (.*)$", re.MULTILINE)


def run_django(tree: Path, pg: EmbeddedPostgres, variant: str) -> Run:
    settings_dir = CACHE / "settings"
    settings_dir.mkdir(exist_ok=True)
    (settings_dir / "compat_settings.py").write_text(
        _DJANGO_SETTINGS.format(host=pg.host, port=pg.port, user=pg.user))
    command = [sys.executable, "runtests.py", "--settings=compat_settings", "--parallel=1", "-v", "2",
               "--noinput", *DJANGO_APPS]
    env = with_tether_path(settings_dir)
    env["COMPAT_ENGINE"] = ENGINES[variant]
    run = Run("django", variant, " ".join(command[1:]) + f" (ENGINE {ENGINES[variant]})")
    output = timed_run(run, command, cwd=tree / "tests", env=env)
    run.outcomes = django_outcomes(output)
    run.counts = dict(Counter(run.outcomes.values()))
    if not run.outcomes:
        run.note = "no results: " + output[-2000:]
    return run


def django_outcomes(output: str) -> dict[str, str]:
    """Each test's outcome from runtests.py -v 2 (a test with subtests: its worst)."""
    words = {"ok": "passed", "FAIL": "failed", "ERROR": "error", "expected failure": "xfailed",
             "unexpected success": "failed"}
    rank = {"passed": 0, "xfailed": 0, "skipped": 0, "failed": 1, "error": 2}
    outcomes: dict[str, str] = {}
    for name, where, said in _RESULT_LINE.findall(output):
        test_id = f"django:{where}" if where.endswith(name) else f"django:{where}.{name}"
        outcome = "skipped" if said.startswith("skipped") else words.get(said.strip(), "error")
        if rank[outcome] >= rank.get(outcomes.get(test_id, "passed"), 0):
            outcomes[test_id] = outcome
    # failures inside subtests are reported after the "... ok" line
    for kind, name, where in re.findall(r"^(FAIL|ERROR): (test\w*) \(([\w.]+)\)", output, re.MULTILINE):
        test_id = f"django:{where}" if where.endswith(name) else f"django:{where}.{name}"
        outcomes[test_id] = "failed" if kind == "FAIL" else "error"
    return outcomes


# -- running --------------------------------------------------------------------------------


def recreate_database(pg: EmbeddedPostgres, name: str, *, schemas: Sequence[str] = ()) -> None:
    pg.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    pg.execute(f"CREATE DATABASE {name}")
    import psycopg

    with psycopg.connect(pg.url().rsplit("/", 1)[0] + f"/{name}", autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f"CREATE SCHEMA {schema}")


def with_tether_path(*extra: Path) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(p) for p in extra] + [str(ROOT / "src")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def timed_run(run: Run, command: list[str], *, cwd: Path, env: dict[str, str]) -> str:
    print(f"  {run.suite} / {run.variant}: {run.command}", flush=True)
    began = time.monotonic()
    try:
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S)
        output = done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        output = f"{exc.stdout or ''}{exc.stderr or ''}"
        run.note = f"stopped after {RUN_TIMEOUT_S:.0f} s"
    run.seconds = round(time.monotonic() - began, 1)
    log = CACHE / "results" / f"{run.suite}-{run.variant}.log"
    log.parent.mkdir(exist_ok=True)
    log.write_text(output if isinstance(output, str) else output.decode("utf-8", "replace"))
    return str(output)


# -- the report -----------------------------------------------------------------------------


def explanation(test_id: str) -> str | None:
    for key, why in EXPLAINED.items():
        if fnmatch.fnmatchcase(test_id, key.replace("[", "[[]")):
            return why
    return None


def differences(plain: Run, tethered: Run) -> list[dict[str, str | None]]:
    found = []
    for test_id in sorted(set(plain.outcomes) | set(tethered.outcomes)):
        before, after = plain.outcomes.get(test_id, "absent"), tethered.outcomes.get(test_id, "absent")
        if before != after:
            found.append({"test": test_id, plain.variant: before, tethered.variant: after,
                          "why": explanation(test_id)})
    return found


def report(runs: list[Run], notes: list[str]) -> dict[str, object]:
    by_suite: dict[str, list[Run]] = {}
    for run in runs:
        by_suite.setdefault(run.suite, []).append(run)
    diffs = {suite: differences(*pair) for suite, pair in by_suite.items() if len(pair) == 2}
    return {
        "versions": {name: metadata.version(name) for name in ("SQLAlchemy", "Django", "psycopg")},
        "runs": [{k: v for k, v in asdict(run).items() if k != "outcomes"} for run in runs],
        "differences": diffs,
        "notes": notes,
    }


def keep_other_suites(result: dict[str, Any], only: str) -> None:
    """With --only, the other suite's last results stay in the file."""
    try:
        before = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        return
    result["runs"] = [run for run in before.get("runs", []) if run["suite"] != only] + result["runs"]
    others = {suite: [{**diff, "why": explanation(diff["test"])} for diff in diffs]
              for suite, diffs in before.get("differences", {}).items() if suite != only}
    result["differences"] = {**others, **result["differences"]}


def print_table(result: dict[str, object]) -> None:
    kinds = ("passed", "failed", "error", "skipped", "xfailed")
    print(f"\n{'suite':<11} {'run':<8} " + " ".join(f"{k:>8}" for k in kinds) + f" {'seconds':>8}")
    for run in result["runs"]:  # type: ignore[attr-defined]
        counts = run["counts"]
        print(f"{run['suite']:<11} {run['variant']:<8} "
              + " ".join(f"{counts.get(k, 0):>8}" for k in kinds) + f" {run['seconds']:>8}")
        if run["note"]:
            print(f"    note: {run['note'][:500]}")
    for suite, diffs in result["differences"].items():  # type: ignore[attr-defined]
        print(f"\n{suite}: {len(diffs)} test(s) differ")
        for diff in diffs:
            outcome = ", ".join(f"{k} {v}" for k, v in diff.items() if k not in ("test", "why"))
            print(f"  {diff['test']} ({outcome})\n    why: {diff['why'] or 'UNEXPLAINED'}")
    for note in result["notes"]:  # type: ignore[attr-defined]
        print(f"note: {note}")


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when every difference is explained, 1 when one is not, 2 when a run gave no results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("sqlalchemy", "django"), help="run one suite")
    args = parser.parse_args(argv)
    suites = [args.only] if args.only else ["sqlalchemy", "django"]
    notes: list[str] = []
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        notes.append("no system PostgreSQL with citext and hstore: pgserver's, where SQLAlchemy's "
                     "provisioning fails")
    runs: list[Run] = []
    # two-phase commit tests need prepared transactions
    with EmbeddedPostgres(bin_dir=bin_dir, max_connections=300,
                          settings={"max_prepared_transactions": "20"}) as pg:
        print(f"PostgreSQL {pg.execute('SHOW server_version')[0][0]} at {pg.host}:{pg.port}", flush=True)
        if "sqlalchemy" in suites:
            tree = source_tree("SQLAlchemy", metadata.version("SQLAlchemy"))
            runs.append(run_sqlalchemy(tree, pg, "plain"))
            missing = tether_sqlalchemy()
            if missing is None:
                runs.append(run_sqlalchemy(tree, pg, "tether"))
            else:
                notes.append(missing)
        if "django" in suites:
            tree = source_tree("Django", metadata.version("Django"))
            runs.append(run_django(tree, pg, "django"))
            runs.append(run_django(tree, pg, "tether"))
    result = report(runs, notes)
    if args.only:
        keep_other_suites(result, args.only)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"\nwritten: {RESULTS.relative_to(ROOT)}")
    if any(not run.counts for run in runs):
        return 2
    unexplained = [d for diffs in result["differences"].values() for d in diffs if not d["why"]]  # type: ignore[attr-defined]
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
