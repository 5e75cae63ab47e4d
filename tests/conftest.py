"""Shared fixtures: the embedded PostgreSQL (``fix_pg``) and pools on it (``fix_pool``)."""

pytest_plugins = ["fix_pg", "fix_pool", "fix_mysql", "fix_tds"]
