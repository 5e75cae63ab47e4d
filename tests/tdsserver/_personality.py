"""Which SQL Server-compatible server the test server plays: SQL Server (the default) or
Babelfish for PostgreSQL 4.2, whose differences ../shared/SQLSERVER-FACTS.md lists. Each
switch reproduces one behaviour seen on the real server, so that tether's handling of it is
tested through every driver."""

from __future__ import annotations

from dataclasses import dataclass

BABELFISH_VERSION = (
    "Babelfish for PostgreSQL with SQL Server Compatibility - 12.0.2000.8\n"
    "Dec  3 2026 00:00:00\nCopyright (c) Amazon Web Services\nPostgreSQL 16.4 on x86_64-pc-linux-gnu"
)


@dataclass(frozen=True, slots=True)
class Personality:
    name: str = "sqlserver"
    version: str | None = None  # @@VERSION; None: the SQL Server 2022 text of _builtins
    textsize_variable: bool = True  # False: @@TEXTSIZE fails (error 33557097)
    language_n_literal: bool = True  # False: SET LANGUAGE N'us_english' is a syntax error
    reset_skip_tran: bool = True  # False: the 0x10 flag is refused, and the session ended
    eager_implicit_transactions: bool = False  # True: with autocommit off, a transaction is
    # begun at login and after every commit, not at the first statement that needs one
    isolation_after_read: bool = True  # False: SET TRANSACTION ISOLATION LEVEL in a
    # transaction that has read anything fails (33557097)
    lock_timeout_error: int = 1222  # Babelfish reports the generic 33557097


SQLSERVER = Personality()
BABELFISH = Personality(
    name="babelfish", version=BABELFISH_VERSION, textsize_variable=False, language_n_literal=False,
    reset_skip_tran=False, eager_implicit_transactions=True, isolation_after_read=False,
    lock_timeout_error=33557097,
)
