"""Which ODBC driver, and which server: ``Driver=`` in ADO strings (honoured by pyodbc, shown
in ``repr`` and by ``tether check``), and ``tether check`` naming Babelfish and advising on
a failed login with the number whichever step saw."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import tether
from fix_system import import_driver, need_msodbc
from fix_tds import DATABASE, PASSWORD, USER, freetds_odbc_library, msodbc_library
from tdsserver import BABELFISH, TdsServer
from tether.check import Status, run_check
from tether.drivers import load_driver
from tether.dsn import parse
from tether.errors import ConfigError
from tether.session import lease_of

FAST = {"attempts": 1, "timeout_s": 2.0, "resolvers": []}


def freetds() -> str:
    library = freetds_odbc_library()
    if library is None:
        pytest.skip("FreeTDS's ODBC driver is not installed: apt-get install tdsodbc")
    return library


def ado(srv: TdsServer, driver: str, password: str = PASSWORD) -> str:
    return (f"Driver={{{driver}}};Server=tcp:{srv.host},{srv.port};Database={DATABASE};"
            f"UID={USER};PWD={password};Encrypt=no")


@pytest.fixture(scope="module")
def babelfish() -> Iterator[TdsServer]:
    with TdsServer(users={USER: PASSWORD}, databases=("master", DATABASE), personality=BABELFISH) as srv:
        yield srv


def test_driver_is_an_ado_keyword() -> None:
    spec = parse("Driver={ODBC Driver 18 for SQL Server};Server=tcp:h,1433;Database=d;UID=u;PWD=p")
    assert spec.option("driver") == "{ODBC Driver 18 for SQL Server}"
    with pytest.raises(ConfigError, match="ODBC connection string"):
        parse("DSN=mine;Server=h")  # a data source name is still ODBC's alone


@pytest.mark.parametrize("which", ["freetds", "msodbcsql"])
def test_pyodbc_loads_the_driver_the_ado_string_names(which: str, babelfish: TdsServer) -> None:
    import_driver("pyodbc", "'tether[pyodbc]'")
    library = freetds() if which == "freetds" else need_msodbc(msodbc_library())
    babelfish.clear()
    pool = tether.Pool(ado(babelfish, library), driver="pyodbc", min_size=0, max_size=1, timeout=10)
    with pool, pool.connection() as conn:
        assert conn.execute("SELECT @@DATEFIRST").fetchone()[0] == 7
        shown = repr(lease_of(conn).raw)
    kind = "FreeTDS" if which == "freetds" else "Microsoft's ODBC driver"
    assert f"via {kind} ({library})" in shown
    assert PASSWORD not in shown
    assert babelfish.stats.logins == 1


@pytest.mark.parametrize(("driver", "label"), [("pytds", "python-tds"), ("pymssql", "pymssql")])
def test_drivers_without_odbc_refuse_an_odbc_driver(driver: str, label: str, babelfish: TdsServer) -> None:
    import_driver(driver, f"'tether[{driver}]'")
    spec = parse(ado(babelfish, "FreeTDS"), driver=driver)
    with pytest.raises(ConfigError, match=f"is an ODBC driver, and {label} does not use ODBC"):
        load_driver("sqlserver", driver).connect(spec, timeout_s=5, autocommit=True)


def test_check_names_babelfish_and_the_odbc_driver(babelfish: TdsServer) -> None:
    import_driver("pyodbc", "'tether[pyodbc]'")
    library = freetds()
    babelfish.clear()
    report = run_check(parse(ado(babelfish, library), driver="pyodbc"), **FAST)  # type: ignore[arg-type]
    login = report.event("login")
    assert login.status is Status.OK, login
    assert (login.data["babelfish"], login.data["odbc_driver"]) == (True, library)
    assert "the server is Babelfish for PostgreSQL" in login.detail
    assert f"via FreeTDS ({library})" in login.detail
    assert "Babelfish" in report.event("tls").data["product"]


def test_check_advises_on_a_failed_login_with_the_redirect_steps_number(babelfish: TdsServer) -> None:
    import_driver("mssql_python", "'tether[mssql-python]'")
    need_msodbc(msodbc_library())
    babelfish.clear()
    wrong = PASSWORD[::-1]
    spec = parse(f"Server=tcp:{babelfish.host},{babelfish.port};Database={DATABASE};UID={USER};PWD={wrong};"
                 "Encrypt=no", driver="mssql_python")
    report = run_check(spec, **FAST)  # type: ignore[arg-type]
    login, redirect = report.event("login"), report.event("redirect")
    assert login.status is Status.FAIL
    if login.data["code"] == "18456":
        pytest.fail("mssql-python now gives the number itself: this fallback is no longer exercised")
    assert (redirect.status, redirect.data["code"]) == (Status.FAIL, "18456"), redirect
    assert "wrong user name or password" in redirect.advice[0]
    assert "wrong user name or password" in " ".join(report.actions)
    assert wrong not in repr(report) and PASSWORD not in repr(report)
