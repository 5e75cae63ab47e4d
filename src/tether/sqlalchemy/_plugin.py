"""``create_engine(url, plugins=["tether"])``: the engine's pool becomes tether's.

The plugin (entry point ``sqlalchemy.plugins``: ``tether``) takes the engine's
``tether_*`` arguments as the tether pool's settings (``tether_max_size=20``), or a pool
of the application's own as ``tether_pool=``; sets ``poolclass`` to ``TetherPool``; and
listens to ``handle_error`` so tether's broken connections are SQLAlchemy disconnects.
The tether pool connects with the URL the engine was given, and with what the dialect
passes its driver besides the URL (psycopg's adapters context, PyMySQL's client flags),
and ``connect_args``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import CreateEnginePlugin, Engine
from sqlalchemy.engine.url import URL

from ._errors import on_handle_error
from ._pool import AsyncTetherPool, TetherPool

PREFIX = "tether_"
# What a dialect gives its driver's connect beyond the URL, per driver: kept, so the
# connections tether opens are those the dialect would have opened.
FORWARDED = {
    "psycopg": ("context", "client_encoding", "cursor_factory"),
    "pymysql": ("client_flag", "charset", "ssl", "init_command", "conv"),
}


# Where SQLAlchemy's name for a driver is not tether's: the URL tether parses names its own.
TETHER_DRIVER_NAMES = {"mssqlpython": "mssql_python"}  # SQLAlchemy's mssql+mssqlpython


def tether_driver_name(dialect_driver: str) -> str:
    return TETHER_DRIVER_NAMES.get(dialect_driver, dialect_driver)


class TetherPlugin(CreateEnginePlugin):
    """Puts a tether pool under the engine (``plugins=["tether"]``)."""

    def __init__(self, url: URL, kwargs: dict[str, Any]):
        super().__init__(url, kwargs)
        self.is_async = bool(kwargs.get("_is_async"))
        self.given = kwargs.pop(PREFIX + "pool", None)
        self.settings = {key[len(PREFIX):]: kwargs.pop(key) for key in list(kwargs) if key.startswith(PREFIX)}
        unknown = sorted(set(self.settings) - pool_argument_names())
        if unknown:
            raise TypeError(f"create_engine() got an unexpected keyword argument {PREFIX + unknown[0]!r}: "
                            f"not a setting of tether's pool")
        if self.given is not None and self.settings:
            raise TypeError(f"pass the pool's settings to the tether pool given as {PREFIX}pool, "
                            f"not as {PREFIX}{next(iter(self.settings))}")
        if "creator" in kwargs or "async_creator" in kwargs:
            raise TypeError("the tether plugin opens the connections: leave out creator and async_creator")
        self.connect_args = dict(kwargs.get("connect_args") or {})
        self.url = url.difference_update_query(["plugin", "plugins"])
        kwargs["poolclass"] = AsyncTetherPool if self.is_async else TetherPool

    def update_url(self, url: URL) -> URL:
        return with_odbc_driver(url.difference_update_query(["plugin", "plugins"]))

    def handle_pool_kwargs(self, pool_cls: type, pool_args: dict[str, Any]) -> None:
        dialect = pool_args["dialect"]
        make = self._maker(dialect)
        tether_pool = self.given if self.given is not None else make()
        driver = tether_pool._driver.name
        if driver != tether_driver_name(dialect.driver):
            if self.given is None and not self.is_async:  # an AsyncPool has not started yet
                tether_pool.close()
            raise TypeError(f"the engine's dialect talks to {dialect.driver}, and tether's pool opens "
                            f"{driver} connections: name the driver in the URL "
                            f"({dialect.name}+{driver}://...) or give the pool the dialect's")
        pool_args["tether_pool"] = tether_pool
        pool_args["owns"] = self.given is None
        pool_args["make"] = make

    def engine_created(self, engine: Engine) -> None:
        event.listen(engine, "handle_error", on_handle_error)

    def _maker(self, dialect: Any) -> Callable[[], Any]:
        import tether

        cls = tether.AsyncPool if self.is_async else tether.Pool
        driver = getattr(dialect, "driver", "")
        url = self.url
        if tether_driver_name(driver) != driver:
            url = url.set(drivername=f"{url.get_backend_name()}+{tether_driver_name(driver)}")
        dsn = url.render_as_string(hide_password=False)
        forwarded: dict[str, Any] = {}
        if FORWARDED.get(driver):  # not for pyodbc: its dialect warns of a URL without driver=,
            _, params = dialect.create_connect_args(self.url)  # where tether chooses the ODBC driver
            forwarded = {key: params[key] for key in FORWARDED[driver] if key in params}
        driver_kwargs = {**forwarded, **self.connect_args, **(self.settings.get("kwargs") or {})}
        settings = {**self.settings, "kwargs": driver_kwargs or None}

        def make() -> Any:
            return cls(dsn, **settings)

        return make


def with_odbc_driver(url: URL) -> URL:
    """``mssql+pyodbc`` without ``driver=`` names the ODBC driver tether chooses (Microsoft's,
    from the mssql-python-odbc wheel, when none is registered): SQLAlchemy's dialect warns
    of a URL without one ("No driver name specified"), for a connect string tether makes."""
    query = {key.lower() for key in url.query}
    if url.get_backend_name() != "mssql" or url.get_driver_name() != "pyodbc" or \
            query & {"driver", "odbc_driver", "odbc_connect", "dsn"} or not url.database:
        return url
    try:
        import pyodbc  # type: ignore[import-not-found,unused-ignore]

        from ..drivers._odbc_driver import odbc_driver
        from ..dsn import parse

        chosen = odbc_driver(parse(url.render_as_string(hide_password=False)), pyodbc.drivers())
    except Exception:  # no pyodbc, no driver: tether's connect says what is missing
        return url
    return url.update_query_dict({"driver": chosen.name})


def pool_argument_names() -> frozenset[str]:
    import tether

    parameters = inspect.signature(tether.Pool).parameters.values()
    return frozenset(p.name for p in parameters if p.kind is p.KEYWORD_ONLY)
