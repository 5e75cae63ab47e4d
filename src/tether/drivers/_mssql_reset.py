"""Putting a SQL Server session back as it was after login: what to send, per driver kind.

Two kinds of driver. Those with a server-side reset (Microsoft's ODBC driver through
``SQL_COPT_SS_RESET_CONNECTION``, python-tds through the TDS header flag that tether sets)
have the server drop temp tables, cursors, application locks and impersonation and
restore the SET options. The server's reset leaves the isolation level behind
(SQLSERVER-FACTS.md), and tether restores the login database too, so both are sent as
SQL when the borrow may have changed them; the reset rides on that batch, or on the next
borrower's first request when nothing needs sending.

The others (FreeTDS under pyodbc, pymssql) can only send SQL: SET options back to the
values captured at login, the isolation level, the database; what SQL cannot undo (temp
tables, cursors, locks, impersonation, a statement that could not be read) means the
connection cannot be reused.

The reasons are those of ``SQLServer.session_changes``; an empty tuple (the pool resets on
every return) means "anything may have changed".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

TRANSACTION = "open transaction"
ISOLATION = "isolation level"
DATABASE = "USE of another database"
SET_OPTION = "SET of a session option"
# What SQL alone can put back.
SQL_UNDOES = frozenset({TRANSACTION, ISOLATION, DATABASE, SET_OPTION})
# What the server's reset also drops; an application role survives it (SQL Server refuses
# to reset such a session: error 18059), and what could not be read is taken as anything.
SERVER_UNDOES = SQL_UNDOES | frozenset({"temporary table or procedure", "EXECUTE AS impersonation",
                                        "cursor", "application lock", "session context"})  # fmt: skip
UNREADABLE = frozenset({"statement that could not be scanned", "statement that could not be read"})

ROLLBACK_SQL = "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION"
ISOLATION_SQL = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED"  # SQL Server's login default
# The login-time values to capture where only SQL can restore them (one round trip at
# connect, for FreeTDS and pymssql only), in settings_sql's order. A server may lack one
# (Babelfish has no @@TEXTSIZE): capture() then asks for each alone and leaves that out.
CAPTURED = ("@@OPTIONS", "@@DATEFIRST", "@@LANGUAGE", "@@LOCK_TIMEOUT", "@@TEXTSIZE", "DB_NAME()")
CAPTURE_SQL = "SELECT " + ", ".join(CAPTURED)

# @@OPTIONS bits and the SET option each reflects (DISABLE_DEF_CNST_CHK, bit 1, has no SET).
_OPTION_BITS = (
    (2, "IMPLICIT_TRANSACTIONS"), (4, "CURSOR_CLOSE_ON_COMMIT"), (8, "ANSI_WARNINGS"), (16, "ANSI_PADDING"),
    (32, "ANSI_NULLS"), (64, "ARITHABORT"), (128, "ARITHIGNORE"), (256, "QUOTED_IDENTIFIER"),
    (512, "NOCOUNT"), (1024, "ANSI_NULL_DFLT_ON"), (2048, "ANSI_NULL_DFLT_OFF"),
    (4096, "CONCAT_NULL_YIELDS_NULL"), (8192, "NUMERIC_ROUNDABORT"), (16384, "XACT_ABORT"),
)  # fmt: skip
# Options outside @@OPTIONS, off in every fresh session.
_ALWAYS_OFF = ("NOEXEC", "FMTONLY", "PARSEONLY", "FORCEPLAN", "STATISTICS IO", "STATISTICS TIME",
               "STATISTICS PROFILE", "STATISTICS XML")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Plan:
    sql: tuple[str, ...]  # statements to send, as one batch (may be empty)


def plan(
    changes: tuple[str, ...], *, server_reset: bool, login_database: str | None, login_settings: str | None
) -> Plan | None:
    """What to send after the server's reset (``server_reset``) or instead of one; None
    when the session cannot be put back and the connection must go."""
    anything = not changes or any(reason in UNREADABLE for reason in changes)
    undoes = SERVER_UNDOES if server_reset else SQL_UNDOES
    if any(reason not in undoes and reason not in UNREADABLE for reason in changes):
        return None
    if anything and changes and not server_reset:
        return None  # a statement we could not read may have made a temp table
    sql: list[str] = []
    if anything or TRANSACTION in changes:
        sql.append(ROLLBACK_SQL)
    if not server_reset and (anything or SET_OPTION in changes):
        if login_settings is None:
            return None
        sql.append(login_settings)
    if anything or ISOLATION in changes:
        sql.append(ISOLATION_SQL)
    if anything or DATABASE in changes:
        if not login_database:
            return None
        sql.append(f"USE {quote_name(login_database)}")
    return Plan(tuple(sql))


def quote_name(name: str) -> str:
    return "[" + name.replace("]", "]]") + "]"


def settings_sql(options: int | None, datefirst: int | None, language: str | None,
                 lock_timeout: int | None, textsize: int | None) -> str:
    """SET statements that restore what ``CAPTURE_SQL`` read at login; a value that could
    not be read (None) is left out.

    LANGUAGE goes first: it sets DATEFIRST and DATEFORMAT to the language's defaults,
    which are the login's (a login's DATEFORMAT is its language's). It is written as a
    bracketed name, the form SQL Server, Azure SQL and Babelfish all accept (Babelfish
    refuses ``N'...'``). DEADLOCK_PRIORITY, ROWCOUNT and CONTEXT_INFO start NORMAL, 0 and
    empty in every session. Not restored: IDENTITY_INSERT (which table is not known) and
    SHOWPLAN (must be alone in its batch).
    """
    parts = [f"SET LANGUAGE {quote_name(language)}"] if language is not None else []
    parts += [f"SET {name} {int(value)}" for name, value in
              (("DATEFIRST", datefirst), ("LOCK_TIMEOUT", lock_timeout), ("TEXTSIZE", textsize))
              if value is not None]  # fmt: skip
    parts += ["SET ROWCOUNT 0", "SET DEADLOCK_PRIORITY NORMAL", "SET CONTEXT_INFO 0x"]
    parts += [f"SET {name} OFF" for name in _ALWAYS_OFF]
    if options is not None:
        # OFF before ON: turning ANSI_NULL_DFLT_ON on turns ANSI_NULL_DFLT_OFF off, and back.
        parts += [f"SET {name} OFF" for bit, name in _OPTION_BITS if not options & bit]
        parts += [f"SET {name} ON" for bit, name in _OPTION_BITS if options & bit]
    return "; ".join(parts)


def capture(
    row: Callable[[str], Any], refused: Callable[[BaseException], bool]
) -> tuple[str | None, str | None]:
    """(SET statements, login database) read from the session just opened: one round trip,
    or, where the server cannot answer one of ``CAPTURED``, one per value, each it refuses
    left out (logged at DEBUG). ``row(sql)`` runs a query and returns its first row;
    ``refused(exc)`` tells the server's refusal of a query (the session still usable) from
    a broken link, which is raised: the open fails as it would have anyway."""
    try:
        return settings_from_row(row(CAPTURE_SQL))
    except Exception as exc:
        if not refused(exc):
            raise
        log.debug("the login state capture was refused (%s); reading each value alone", exc)
    values: list[Any] = []
    for expression in CAPTURED:
        try:
            found = row(f"SELECT {expression}")
        except Exception as exc:
            if not refused(exc):
                raise
            log.debug("the server cannot tell %s at login (%s): not restored", expression, exc)
            found = None
        values.append(found[0] if found else None)
    return settings_from_row(values)


def settings_from_row(row: Any) -> tuple[str | None, str | None]:
    """(SET statements, login database) from the row ``CAPTURE_SQL`` returned; a value that
    is None is left out of the statements."""
    try:
        options, datefirst, language, lock_timeout, textsize, database = tuple(row)
        settings = settings_sql(_int(options), _int(datefirst), None if language is None else str(language),
                                _int(lock_timeout), _int(textsize))  # fmt: skip
    except (TypeError, ValueError):
        return None, None
    return settings, str(database) if database else None


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
