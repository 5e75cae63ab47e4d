"""pytest plugin (entry point ``tether_wan``): WAN emulator and database fixtures for any
test suite.

- ``tether_postgres``: a PostgreSQL for the session (:class:`tether.testing.EmbeddedPostgres`
  on 127.0.0.1, trust authentication), started at its first use and removed at the end;
  ``.address`` is ``(host, port)`` for ``wan_link(upstream=...)``, ``.dsn`` its URL. Where pgserver
  or psycopg is missing, the test is skipped naming the extra that installs it.
- ``wan_emulator``: a running :class:`tether.wan.Emulator` for the session, its HTTP API
  on a free loopback port (``wan_emulator.api_url``), so Toxiproxy clients can drive it.
- ``wan_link``: a factory, ``wan_link(upstream=(host, port), **kwargs) -> Link``, whose
  links live on ``wan_emulator`` and are removed when the test ends.

tether is imported lazily so that merely having the plugin installed costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tether.testing import EmbeddedPostgres
    from tether.wan import Emulator, Link

__all__ = ["tether_postgres", "wan_emulator", "wan_link"]


@pytest.fixture(scope="session")
def tether_postgres() -> Iterator[EmbeddedPostgres]:
    """An embedded PostgreSQL for the session. Shared by every test that asks for it: a test
    that stops or restarts a server should make its own ``EmbeddedPostgres``."""
    from tether.testing import EmbeddedPostgres, postgres_bin_dir

    try:
        postgres_bin_dir()
    except FileNotFoundError as exc:
        pytest.skip(f"tether_postgres needs an embedded PostgreSQL: {exc}")
    pytest.importorskip("psycopg", reason="tether_postgres needs psycopg: pip install 'tether[postgresql]'")
    with EmbeddedPostgres() as server:
        yield server


@pytest.fixture(scope="session")
def wan_emulator() -> Iterator[Emulator]:
    """A WAN emulator shared by the session; its control API on 127.0.0.1, a free port."""
    from tether.wan import Emulator

    emulator = Emulator(api_port=0)
    try:
        yield emulator
    finally:
        emulator.close()


@pytest.fixture
def wan_link(wan_emulator: Emulator) -> Iterator[Callable[..., Link]]:
    """Make links in front of an upstream: ``wan_link(upstream=("127.0.0.1", 5432))``.

    Keyword arguments are those of :meth:`Emulator.create`. Every link made is removed
    (its connections closed) at teardown.
    """
    made: list[Link] = []

    def make(**kwargs: Any) -> Link:
        link = wan_emulator.create(**kwargs)
        made.append(link)
        return link

    yield make
    for link in made:
        link.close()
