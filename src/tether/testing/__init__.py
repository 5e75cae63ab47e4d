"""tether.testing: helpers for tether's demo, tests and benchmarks.

:class:`EmbeddedPostgres` runs a throwaway PostgreSQL on 127.0.0.1 from the binaries of
the ``pgserver`` package (``pip install 'tether[embedded]'``); administration needs
psycopg. :class:`EmbeddedMariaDB` runs a throwaway MariaDB on 127.0.0.1 from the system's
``mariadbd`` (Debian: ``mariadb-server``); administration needs PyMySQL.
"""

from __future__ import annotations

from ._mariadb import EmbeddedMariaDB, mariadb_programs
from ._postgres import EmbeddedPostgres, free_port, postgres_bin_dir

__all__ = ["EmbeddedMariaDB", "EmbeddedPostgres", "free_port", "mariadb_programs", "postgres_bin_dir"]
