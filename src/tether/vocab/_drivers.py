"""Every Python database package tether knows, in one table.

The connection-string parser (which ``+driver`` names exist), the driver loader (which
module of ``tether.drivers`` to import, and which extra of tether to ``pip install`` when it
is missing) and the default classifier (which dialect explains an exception, by the
package that raised it) all read this table, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DriverInfo:
    name: str  # as in a URL's ``+driver`` suffix
    dialect: str
    package: str  # what to pip install
    imports: str  # the package's top-level module (its exceptions' ``__module__``)
    sync_module: str | None  # the module of ``tether.drivers`` for ``tether.Pool``
    async_module: str | None  # ... for ``tether.AsyncPool``
    aliases: tuple[str, ...] = ()  # other spellings people write (distribution names)
    extra: str | None = None  # tether's extra that installs it (pyproject.toml), if any

    @property
    def install(self) -> str:
        """The pip command that installs this driver: tether's extra when there is one."""
        return f"pip install 'tether[{self.extra}]'" if self.extra else f"pip install {self.package}"

    @property
    def pooled(self) -> bool:
        """Whether tether's pools can use it (otherwise only its errors are classified)."""
        return self.sync_module is not None or self.async_module is not None


# In order of preference within each dialect: the first installed is the default.
DRIVERS = (
    DriverInfo("psycopg", "postgresql", "psycopg[binary]", "psycopg", "psycopg", "psycopg_async",
               extra="postgresql"),
    DriverInfo("asyncpg", "postgresql", "asyncpg", "asyncpg", None, "asyncpg", extra="asyncpg"),
    DriverInfo("mssql_python", "sqlserver", "mssql-python", "mssql_python", "mssql_python", None,
               aliases=("mssql-python",), extra="mssql-python"),
    DriverInfo("pyodbc", "sqlserver", "pyodbc", "pyodbc", "pyodbc", None, extra="pyodbc"),
    DriverInfo("pymssql", "sqlserver", "pymssql", "pymssql", "pymssql", None, extra="pymssql"),
    DriverInfo("pytds", "sqlserver", "python-tds", "pytds", "pytds", None, aliases=("python-tds",),
               extra="pytds"),
    DriverInfo("pymysql", "mysql", "PyMySQL", "pymysql", "pymysql", None, extra="mysql"),
    # No pool support, but ``@tether.retry`` classifies their errors.
    DriverInfo("mysqldb", "mysql", "mysqlclient", "MySQLdb", None, None, aliases=("mysqlclient",)),
    DriverInfo("mariadb", "mysql", "mariadb", "mariadb", None, None),
)

DIALECTS = ("postgresql", "sqlserver", "mysql")


def find(dialect: str, name: str) -> DriverInfo | None:
    """The driver of ``dialect`` called ``name`` (or one of its aliases), any case."""
    wanted = name.lower()
    for info in DRIVERS:
        if info.dialect == dialect and (info.name == wanted or wanted in info.aliases):
            return info
    return None


def for_dialect(dialect: str, *, mode: str | None = None) -> tuple[DriverInfo, ...]:
    """The drivers a pool can use for ``dialect``, by preference; ``mode`` "sync" or
    "async" keeps those with a module for that pool."""
    return tuple(
        info for info in DRIVERS
        if info.dialect == dialect and info.pooled
        and (mode is None or (info.sync_module if mode == "sync" else info.async_module) is not None)
    )


def dialect_of_package(package: str) -> str | None:
    """The dialect whose errors a top-level package raises (``psycopg`` -> postgresql)."""
    for info in DRIVERS:
        if info.imports == package:
            return info.dialect
    return None
