"""Django's PostgreSQL backend (psycopg 3), its connections drawn from a tether pool.

Everything but where connections come from is Django's: ``get_new_connection`` borrows
from the alias's pool (``OPTIONS["tether"]``: the pool's settings) instead of connecting,
and Django's ``close()`` gives the connection back. Django's objects (its adapters with
the time zone loader, its cursor classes, ``assume_role``) go on each driver connection the
pool opens (its ``kwargs`` and ``configure`` hook), including one that idle connection
resiliency opens to rebuild a session.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.db.backends.postgresql import base as django_pg  # type: ignore[import-untyped]
from django.db.backends.postgresql.psycopg_any import IsolationLevel, is_psycopg3  # type: ignore[import-untyped]

from ...pool import Pool
from .. import _pools
from .._pg_connect import DriverSetup, spec_and_setup

if not is_psycopg3:
    raise ImproperlyConfigured("tether.django.postgresql needs psycopg 3: pip install 'tether[postgresql]'")

import psycopg
from django.db.backends.postgresql.psycopg_any import register_tzloader  # psycopg 3's only
from psycopg.pq import Format

__all__ = ["DatabaseWrapper"]


class DatabaseWrapper(django_pg.DatabaseWrapper):  # type: ignore[misc]
    """``django.db.backends.postgresql``'s wrapper, on a tether pool."""

    @property
    def pool(self) -> None:
        """Django's own pool (psycopg_pool, ``OPTIONS["pool"]``) stays off: tether's is used."""
        return None

    @property
    def tether_pool(self) -> Pool:
        """This alias's tether pool (made at the first connection, or now)."""
        spec, setup, key = self._tether_target(self.get_connection_params())
        return self._pool_for(spec, setup, key)

    def get_connection_params(self) -> dict[str, Any]:
        options = self.settings_dict["OPTIONS"]
        if options.get("pool"):
            raise ImproperlyConfigured(
                "OPTIONS['pool'] is Django's psycopg_pool; with tether.django.postgresql put the "
                "pool's settings in OPTIONS['tether']")
        params: dict[str, Any] = super().get_connection_params()
        params.pop("tether", None)
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        isolation_level = self._isolation_level_option()
        spec, setup, key = self._tether_target(conn_params)
        connection = self._pool_for(spec, setup, key).getconn()
        if isolation_level is not None:
            connection.isolation_level = isolation_level
        return connection

    def _set_autocommit(self, autocommit: bool) -> None:
        # Only a change: tether remembers a client setting written during a borrow, to put
        # it back on return, and the pool's connections are in autocommit already.
        if self.connection.autocommit != autocommit:
            super()._set_autocommit(autocommit)

    def close_pool(self) -> None:
        _pools.close_pool(self.alias)

    def create_cursor(self, name: str | None = None) -> Any:
        if name:  # made by the driver connection: its server_cursor_factory, chosen now as Django does
            self.connection.raw.server_cursor_factory = self._server_cursor_class()
            cursor = self.connection.cursor(name, scrollable=False, withhold=self.connection.autocommit)
        else:
            cursor = self.connection.cursor()
        tzloader = self.connection.adapters.get_loader(django_pg.TIMESTAMPTZ_OID, Format.TEXT)
        if self.timezone != tzloader.timezone:  # as Django: only when the connection disagrees
            register_tzloader(self.timezone, cursor)
        return cursor

    # -- helpers -------------------------------------------------------------------------

    def _isolation_level_option(self) -> IsolationLevel | None:
        """``OPTIONS["isolation_level"]`` as Django reads it (and sets ``isolation_level``)."""
        self.isolation_level = IsolationLevel.READ_COMMITTED
        value = self.settings_dict["OPTIONS"].get("isolation_level")
        if value is None:
            return None
        try:
            self.isolation_level = IsolationLevel(value)
        except ValueError:
            raise ImproperlyConfigured(
                f"Invalid transaction isolation level {value} specified. Use one of the "
                "psycopg.IsolationLevel values.") from None
        return self.isolation_level

    def _server_cursor_class(self) -> Any:
        """Django's client-side binding ServerSideCursor, unless ``server_side_binding``."""
        if self.settings_dict["OPTIONS"].get("server_side_binding") is True:
            return psycopg.ServerCursor
        return django_pg.ServerSideCursor

    def _tether_target(self, conn_params: dict[str, Any]) -> Any:
        return spec_and_setup(conn_params, timezone_name=self.timezone_name,
                              server_cursor_factory=self._server_cursor_class(),
                              role=self.settings_dict["OPTIONS"].get("assume_role"))

    def _configure_role(self, connection: Any) -> bool:
        # The pool's configure hook set the role on the driver connection (and sets it
        # again after a session reset): no SET ROLE at every borrow.
        return False

    def _pool_for(self, spec: Any, setup: DriverSetup, key: Any) -> Pool:
        settings = _pools.pool_settings(self.settings_dict["OPTIONS"])
        settings.setdefault("name", f"django-{self.alias}")
        settings.setdefault("autocommit", True)  # Django sets autocommit itself, as with its pool
        return _pools.pool_for(self.alias, key, lambda: Pool(spec, kwargs=setup.kwargs(),
                                                             configure=setup.configure, **settings))
