"""Fixtures for an embedded PostgreSQL on 127.0.0.1 (``pytest_plugins = ["fix_pg"]``).

- ``pg_server`` (session): a running :class:`tether.testing.EmbeddedPostgres`, trust auth.
- ``pg_dsn``: its URL, the server running.
- ``pg_admin``: the same server, for tests that administer it (``terminate_backends()``,
  ``backend_pids()``, ``execute(sql)``, ``stop()``, ``restart()``); it is running again
  after the test, whatever the test did.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tether.testing import EmbeddedPostgres


@pytest.fixture(scope="session")
def pg_server(tether_postgres: EmbeddedPostgres) -> EmbeddedPostgres:
    """The pytest plugin's ``tether_postgres``: the suite uses what it ships to users."""
    return tether_postgres


@pytest.fixture
def pg_dsn(pg_server: EmbeddedPostgres) -> str:
    pg_server.start()  # no-op unless an earlier test left it stopped
    return pg_server.dsn


@pytest.fixture
def pg_admin(pg_server: EmbeddedPostgres) -> Iterator[EmbeddedPostgres]:
    pg_server.start()
    yield pg_server
    pg_server.start()
