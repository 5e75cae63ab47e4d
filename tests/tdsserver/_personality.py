"""Which SQL Server-compatible server the test server plays: SQL Server (the default) or
Babelfish for PostgreSQL 4.2, whose differences ../shared/SQLSERVER-FACTS.md lists. Each
switch reproduces one behaviour seen on the real server, so that tether's handling of it is
tested through every driver."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ._packets import Value

BABELFISH_VERSION = (
    "Babelfish for PostgreSQL with SQL Server Compatibility - 12.0.2000.8\n"
    "Dec  3 2026 00:00:00\nCopyright (c) Amazon Web Services\nPostgreSQL 16.4 on x86_64-pc-linux-gnu"
)


@dataclass(frozen=True, slots=True)
class Personality:
    name: str = "sqlserver"
    version: str | None = None  # @@VERSION; None: the SQL Server 2022 text of _builtins
    product_version: tuple[int, int, int] = (16, 0, 4135)  # in PRELOGIN and LOGINACK
    textsize_variable: bool = True  # False: @@TEXTSIZE fails (error 33557097)
    language_n_literal: bool = True  # False: SET LANGUAGE N'us_english' is a syntax error
    reset_skip_tran: bool = True  # False: the 0x10 flag is refused, and the session ended
    eager_implicit_transactions: bool = False  # True: with autocommit off, a transaction is
    # begun at login and after every commit, not at the first statement that needs one
    isolation_after_read: bool = True  # False: SET TRANSACTION ISOLATION LEVEL in a
    # transaction that has read anything fails (33557097)
    lock_timeout_error: int = 1222  # Babelfish reports the generic 33557097
    # SERVERPROPERTY() answers that differ from SQL Server's (lower-case names)
    server_properties: tuple[tuple[str, Value], ...] = ()
    unknown_property: Value = None  # SERVERPROPERTY() of a name it does not know: Babelfish ''
    # dbo's schema_id: SQL Server's is 1; Babelfish's schema ids are PostgreSQL oids, and
    # SCHEMA_NAME(1) is NULL there (babelfish_extensions, test/JDBC/expected/BABEL-741-vu-verify.out)
    dbo_schema_id: int = 1


SQLSERVER = Personality()
BABELFISH = Personality(
    name="babelfish", version=BABELFISH_VERSION, product_version=(12, 0, 2000), textsize_variable=False,
    language_n_literal=False,
    reset_skip_tran=False, eager_implicit_transactions=True, isolation_after_read=False,
    lock_timeout_error=33557097,
    # As Babelfish 4.2 answers (babelfish_extensions, properties.c): its own two, a
    # SQL Server 2014 version, a "Standard" edition, and '' for what it does not know.
    server_properties=(
        ("babelfish", 1), ("babelfishversion", "4.2.0"), ("productversion", "12.0.2000.8"),
        ("productmajorversion", "12"), ("productminorversion", "0"), ("productlevel", ""),
        ("productbuild", ""), ("edition", "Standard Edition"), ("editionid", -1534726760),
        ("engineedition", 2), ("lcid", ""), ("processid", 0),
    ),
    unknown_property="",
    dbo_schema_id=16386,  # an oid, as a Babelfish database's dbo schema has
)

# Babelfish whose administrator set babelfishpg_tds.product_version: its login looks like
# SQL Server 2022's, so only a refused 0x10 reset tells python-tds what it is.
BABELFISH_AS_2022 = replace(BABELFISH, name="babelfish-as-2022", product_version=(16, 0, 4135))

# Babelfish's generic error number, for whatever PostgreSQL raised that it maps to no
# SQL Server number; the message is PostgreSQL's.
BABELFISH_GENERIC_ERROR = 33557097
LOCK_TIMEOUT_MESSAGE = "canceling statement due to lock timeout"  # PostgreSQL's, for 55P03
