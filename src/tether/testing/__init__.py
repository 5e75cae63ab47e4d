"""tether.testing: helpers for tether's demo, tests and benchmarks.

:class:`EmbeddedPostgres` runs a throwaway PostgreSQL on 127.0.0.1 from the binaries of
the ``pgserver`` package (``pip install 'tether[embedded]'``); administration needs
psycopg. :class:`EmbeddedMariaDB` runs a throwaway MariaDB on 127.0.0.1 from the system's
``mariadbd`` (Debian: ``mariadb-server``); administration needs PyMySQL.
:class:`EmbeddedPgBouncer` runs the system's ``pgbouncer`` (Debian: ``pgbouncer``) on
127.0.0.1 in front of a PostgreSQL; its console (``admin()``) needs psycopg.
"""

from __future__ import annotations

from ._mariadb import EmbeddedMariaDB, mariadb_programs
from ._pgbouncer import EmbeddedPgBouncer, pgbouncer_program
from ._postgres import EmbeddedPostgres, free_port, postgres_bin_dir

__all__ = [
    "EmbeddedMariaDB",
    "EmbeddedPgBouncer",
    "EmbeddedPostgres",
    "free_port",
    "mariadb_programs",
    "pgbouncer_program",
    "postgres_bin_dir",
]
