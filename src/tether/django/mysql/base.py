"""Django's MySQL/MariaDB backend, its connections drawn from a tether pool (PyMySQL).

Django's MySQL backend is written for mysqlclient (``MySQLdb``); tether's MySQL driver is
PyMySQL, whose ``install_as_MySQLdb()`` shim Django accepts. When mysqlclient is not
installed, this module installs the shim before Django's backend is imported (the shim
is process-wide: ``import MySQLdb`` then gives PyMySQL everywhere). Django's connect
arguments that are objects (``conv``, ``client_flag``, ``charset``, ``ssl``...) go to
PyMySQL through the pool's ``kwargs``; the session settings Django makes at each new
connection (``SQL_AUTO_IS_NULL = 0``, the isolation level) are made by the pool's
``configure`` hook, once per server session and again after a session reset.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

if importlib.util.find_spec("MySQLdb") is None:
    import pymysql  # type: ignore[import-untyped]

    pymysql.install_as_MySQLdb()

from django.db.backends.mysql import base as django_mysql  # type: ignore[import-untyped]

from ...dsn import ConnectionSpec, parse
from ...pool import Pool
from .. import _pools

__all__ = ["DatabaseWrapper"]

_TEXT = ("host", "port", "user", "password", "database")  # into the connection string


@dataclass(frozen=True, slots=True)
class SessionSetup:
    """What Django's ``init_connection_state`` sets on a new session, set by ``configure``."""

    isolation_level: str | None

    def configure(self, raw: Any) -> None:
        with raw.cursor() as cursor:
            cursor.execute("SET SQL_AUTO_IS_NULL = 0")
            if self.isolation_level:
                cursor.execute(f"SET SESSION TRANSACTION ISOLATION LEVEL {self.isolation_level.upper()}")
        if getattr(raw, "encoders", {}).get(bytes) is bytes:  # as Django does, for mysqlclient
            raw.encoders.pop(bytes)


class DatabaseWrapper(django_mysql.DatabaseWrapper):  # type: ignore[misc]
    """``django.db.backends.mysql``'s wrapper, on a tether pool."""

    @property
    def tether_pool(self) -> Pool:
        """This alias's tether pool (made at the first connection, or now)."""
        return self._pool_for(self.get_connection_params())

    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        params.pop("tether", None)
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        return self._pool_for(conn_params).getconn()

    def init_connection_state(self) -> None:
        # Django's version check only: the pool's configure hook made the session settings
        # (Django's would SET them at every borrow, and tether would reset them at return).
        django_mysql.BaseDatabaseWrapper.init_connection_state(self)

    def is_usable(self) -> bool:
        # PyMySQL's ping() reconnects by default, behind the pool's back: never here.
        try:
            self.connection.ping(reconnect=False)
        except self.Database.Error:
            return False
        return True

    def close_pool(self) -> None:
        _pools.close_pool(self.alias)

    def _pool_for(self, conn_params: dict[str, Any]) -> Pool:
        spec, kwargs, setup, key = split_params(conn_params, self.isolation_level)
        settings = _pools.pool_settings(self.settings_dict["OPTIONS"])
        settings.setdefault("name", f"django-{self.alias}")
        return _pools.pool_for(self.alias, key, lambda: Pool(spec, kwargs=kwargs, configure=setup.configure,
                                                             **settings))


def split_params(params: dict[str, Any], isolation_level: str | None
                 ) -> tuple[ConnectionSpec, dict[str, Any], SessionSetup, Hashable]:
    """Django's connect arguments: text into the connection string, the rest to PyMySQL."""
    text = {k: params[k] for k in _TEXT if params.get(k) not in (None, "")}
    spec = parse("mysql://", driver="pymysql", **text)
    kwargs = {k: v for k, v in params.items() if k not in _TEXT}
    setup = SessionSetup(isolation_level)
    key = (spec, repr(sorted(kwargs.items(), key=lambda item: item[0])), setup)
    return spec, kwargs, setup, key
