"""tether.testing: helpers for tether's demo, tests and benchmarks.

:class:`EmbeddedPostgres` runs a throwaway PostgreSQL on 127.0.0.1 from the binaries of
the ``pgserver`` package (``pip install 'tether[embedded]'``); administration needs
psycopg.
"""

from __future__ import annotations

from ._postgres import EmbeddedPostgres, free_port, postgres_bin_dir

__all__ = ["EmbeddedPostgres", "free_port", "postgres_bin_dir"]
