"""Shared fixtures: the embedded PostgreSQL (``fix_pg``), PgBouncer in front of it
(``fix_pgbouncer``), pools on it (``fix_pool``), MariaDB (``fix_mysql``), the TDS test server
(``fix_tds``), and the drivers each pool runs on for tests written once for both pools
(``fix_twins``)."""

pytest_plugins = ["fix_pg", "fix_pgbouncer", "fix_pool", "fix_mysql", "fix_tds", "fix_twins"]
