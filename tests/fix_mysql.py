"""Fixtures for an embedded MariaDB on 127.0.0.1 (``pytest_plugins = ["fix_mysql"]``).

- ``mariadb`` (session): a running :class:`tether.testing.EmbeddedMariaDB`, no TLS, root's
  password over TCP is :data:`MYSQL_PASSWORD`.
- ``mariadb_tls`` (session): the same with TLS on, a self-signed certificate for localhost
  and 127.0.0.1 made by the test.

Both skip, naming what to install, without MariaDB's server (Debian: mariadb-server), PyMySQL
or (for TLS) cryptography.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tether.testing import EmbeddedMariaDB, mariadb_programs

MYSQL_PASSWORD = "My-Pa55-w0rd-never-shown"


def _need_mariadb() -> None:
    try:
        mariadb_programs()
    except FileNotFoundError as exc:
        pytest.skip(f"no MariaDB server: {exc}")
    pytest.importorskip("pymysql", reason="PyMySQL is not installed: pip install 'tether[dev]'")


@pytest.fixture(scope="session")
def mariadb() -> Iterator[EmbeddedMariaDB]:
    _need_mariadb()
    with EmbeddedMariaDB(password=MYSQL_PASSWORD) as server:
        yield server


@pytest.fixture(scope="session")
def mariadb_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedMariaDB]:
    _need_mariadb()
    pytest.importorskip("cryptography")
    from test_check_support import make_certificate

    cert, key = make_certificate(tmp_path_factory.mktemp("mariadb-cert"))
    with EmbeddedMariaDB(password=MYSQL_PASSWORD, tls=(cert, key)) as server:
        yield server
