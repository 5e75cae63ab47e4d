"""Fixtures for an embedded PgBouncer in front of ``pg_server`` (``pytest_plugins = ["fix_pgbouncer"]``).

- ``pgbouncer_transaction`` (session): a running :class:`tether.testing.EmbeddedPgBouncer`
  in transaction mode, trust auth, PgBouncer's default pool size (20).
- ``pgbouncer_session`` (session): the same in session mode.
- ``pgbouncer_admin`` and ``pgbouncer_session_admin``: those, for tests that administer
  the bouncer (``admin("KILL postgres")``, ``PAUSE``, ``restart()``) or the server behind
  it (``pg_server.stop()``). After the test, whatever it did, PostgreSQL and the bouncer
  run, nothing is paused or killed, server connections are renewed once released (a
  ``SET`` a test left on one does not reach the next test), and a query passes through.

All skip, naming the command to install, without ``pgbouncer``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import pytest

from fix_wait import wait_until
from tether.testing import EmbeddedPgBouncer, EmbeddedPostgres, pgbouncer_program

# After PostgreSQL comes back, PgBouncer fails clients fast until a login upstream works
# again: server_login_retry (0.5 s here) plus a login, and query_wait_timeout (5 s) for a
# client already queued.
_RECOVERY_TIMEOUT_S = 15.0


def need_pgbouncer() -> None:
    """Skip, saying what to install, without pgbouncer."""
    try:
        pgbouncer_program()
    except FileNotFoundError as exc:
        pytest.skip(f"no PgBouncer: {exc}")


def _bouncer(
    pg_server: EmbeddedPostgres, pool_mode: Literal["transaction", "session"]
) -> Iterator[EmbeddedPgBouncer]:
    need_pgbouncer()
    pg_server.start()
    with EmbeddedPgBouncer(pg_server.host, pg_server.port, pool_mode=pool_mode) as bouncer:
        yield bouncer


@pytest.fixture(scope="session")
def pgbouncer_transaction(pg_server: EmbeddedPostgres) -> Iterator[EmbeddedPgBouncer]:
    yield from _bouncer(pg_server, "transaction")


@pytest.fixture(scope="session")
def pgbouncer_session(pg_server: EmbeddedPostgres) -> Iterator[EmbeddedPgBouncer]:
    yield from _bouncer(pg_server, "session")


def passes_query(bouncer: EmbeddedPgBouncer) -> bool:
    """One query through the bouncer on a new connection (each try also prompts PgBouncer
    to log in upstream again after failures)."""
    import psycopg

    try:
        with psycopg.connect(bouncer.dsn, connect_timeout=2, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def restore(bouncer: EmbeddedPgBouncer, pg_server: EmbeddedPostgres) -> None:
    """Bring PostgreSQL and the bouncer back to serving, unpaused, with fresh server connections."""
    import psycopg

    pg_server.start()
    bouncer.start()
    # RESUME undoes PAUSE and SUSPEND; the console refuses it (08P01) when neither is on.
    with contextlib.suppress(psycopg.errors.ProtocolViolation):
        bouncer.admin("RESUME")
    for db in bouncer.admin("SHOW DATABASES"):
        if db.paused:  # KILL db or PAUSE db
            bouncer.admin(f"RESUME {db.name}")
        if db.disabled:
            bouncer.admin(f"ENABLE {db.name}")
    bouncer.admin("RECONNECT")
    what = f"a query through {bouncer!r}"
    wait_until(lambda: passes_query(bouncer), timeout=_RECOVERY_TIMEOUT_S, what=what)


@pytest.fixture
def pgbouncer_admin(
    pgbouncer_transaction: EmbeddedPgBouncer, pg_server: EmbeddedPostgres
) -> Iterator[EmbeddedPgBouncer]:
    restore(pgbouncer_transaction, pg_server)
    yield pgbouncer_transaction
    restore(pgbouncer_transaction, pg_server)


@pytest.fixture
def pgbouncer_session_admin(
    pgbouncer_session: EmbeddedPgBouncer, pg_server: EmbeddedPostgres
) -> Iterator[EmbeddedPgBouncer]:
    restore(pgbouncer_session, pg_server)
    yield pgbouncer_session
    restore(pgbouncer_session, pg_server)
