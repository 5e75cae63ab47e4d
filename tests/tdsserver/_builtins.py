"""@@variables and built-in functions (DB_NAME(), SERVERPROPERTY(), SESSION_CONTEXT(), ...)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import _tokens as tk
from ._packets import Value
from ._personality import BABELFISH_GENERIC_ERROR
from ._session import SqlError

if TYPE_CHECKING:
    from ._expr import Ctx

VERSION = "16.0.4135.4"
VERSION_TEXT = (f"Microsoft SQL Server 2022 (RTM) - {VERSION} (X64)\n"
                "\tCopyright (C) 2022 Microsoft Corporation\n"
                "\tDeveloper Edition (64-bit) on Linux (tether TDS test server)")
# database_id as SQL Server numbers the system databases; others follow from 5.
SYSTEM_DB_IDS = {"master": 1, "tempdb": 2, "model": 3, "msdb": 4}


def global_variable(name: str, ctx: Ctx) -> Value:
    s = ctx.session
    values: dict[str, Callable[[], Value]] = {
        "SPID": lambda: s.spid,
        "TRANCOUNT": lambda: s.trancount,
        "DATEFIRST": lambda: s.opts.datefirst,
        "LANGUAGE": lambda: s.opts.language,
        "LOCK_TIMEOUT": lambda: s.opts.lock_timeout,
        "OPTIONS": lambda: s.opts.bits(),
        "TEXTSIZE": lambda: s.opts.textsize,
        "VERSION": lambda: s.catalog.version or VERSION_TEXT,
        "SERVERNAME": lambda: ctx.reply.server_name,
        "SERVICENAME": lambda: "MSSQLSERVER",
        "ROWCOUNT": lambda: s.rowcount,
        "ERROR": lambda: 0,
        "IDENTITY": lambda: ctx.identity,
        "NESTLEVEL": lambda: 0,
        "PROCID": lambda: 0,
        "LANGID": lambda: 0,
        "MAX_PRECISION": lambda: 38,
        "MICROSOFTVERSION": lambda: 0x10000000 | 4135,
        "MAX_CONNECTIONS": lambda: 32767,
    }
    if name not in values:
        raise SqlError(137, 15, f'Must declare the scalar variable "@@{name}".')
    if name == "TEXTSIZE" and not s.catalog.personality.textsize_variable:
        raise SqlError(BABELFISH_GENERIC_ERROR, 16, "function sys.textsize() does not exist")
    return values[name]()


def database_id(ctx: Ctx, name: str) -> int | None:
    dbs = ctx.session.catalog.databases
    real = ctx.session.catalog.database(name)
    if real is None:
        return None
    others = [d for d in dbs if d.lower() not in SYSTEM_DB_IDS]
    return SYSTEM_DB_IDS.get(real.lower()) or 5 + others.index(real)


def database_name(ctx: Ctx, db_id: int) -> str | None:
    for db in ctx.session.catalog.databases:
        if database_id(ctx, db) == db_id:
            return db
    return None


SERVER_PROPERTIES: dict[str, Value] = {
    "productversion": VERSION, "productlevel": "RTM", "productmajorversion": "16",
    "productminorversion": "0", "productbuild": "4135", "edition": "Developer Edition (64-bit)",
    "editionid": -2117995310, "engineedition": 3, "instancename": None, "isclustered": 0,
    "ishadrenabled": 0, "isintegratedsecurityonly": 0, "issingleuser": 0,
    "collation": "SQL_Latin1_General_CP1_CI_AS", "lcid": 1033, "ispolybaseinstalled": 0,
    "isfulltextinstalled": 0, "processid": 1,
}


def server_property(ctx: Ctx, name: str) -> Value:
    properties = ctx.session.catalog.properties
    if name in properties:
        return properties[name]
    if name in ("servername", "machinename"):
        return ctx.reply.server_name
    return SERVER_PROPERTIES.get(name, ctx.session.catalog.personality.unknown_property)


def call_function(name: str, args: list[Value], ctx: Ctx) -> Value:
    s = ctx.session
    now = dt.datetime.now()
    simple: dict[str, Callable[[], Value]] = {
        "DB_NAME": lambda: s.database if not args or args[0] is None else database_name(ctx, int(args[0])),
        "DB_ID": lambda: database_id(ctx, tk.to_text(args[0]) if args else s.database),
        "SERVERPROPERTY": lambda: server_property(ctx, tk.to_text(args[0]).lower()),
        "SESSION_CONTEXT": lambda: s.context.get(tk.to_text(args[0])),
        "USER_NAME": lambda: "dbo",
        # SCHEMA_NAME(): the caller's default schema, dbo; SCHEMA_NAME(id): that schema's name,
        # NULL for an unknown id (learn.microsoft.com/sql/t-sql/functions/schema-name-transact-sql).
        # SQLAlchemy's dialect asks it at connect. Babelfish answers 'dbo' too (BABEL-741).
        "SCHEMA_NAME": lambda: "dbo" if not args or args[0] == s.personality.dbo_schema_id else None,
        "CURRENT_USER": lambda: "dbo",
        "SUSER_SNAME": lambda: s.user,
        "SUSER_NAME": lambda: s.user,
        "ORIGINAL_LOGIN": lambda: s.user,
        "APP_NAME": lambda: s.app,
        "HOST_NAME": lambda: s.hostname,
        "GETDATE": lambda: now.isoformat(sep=" ", timespec="milliseconds"),
        "SYSDATETIME": lambda: now.isoformat(sep=" "),
        "GETUTCDATE": lambda: dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(sep=" "),
        "NEWID": lambda: str(uuid.uuid4()).upper(),
        "XACT_STATE": lambda: 1 if s.trancount else 0,
        "SCOPE_IDENTITY": lambda: ctx.identity,
        "OBJECT_ID": lambda: (abs(hash(tk.to_text(args[0]).lower())) % 2**30
                              if s.table_exists(tk.to_text(args[0])) else None),
        "ISNULL": lambda: args[1] if args[0] is None else args[0],
        "COALESCE": lambda: next((a for a in args if a is not None), None),
        "LEN": lambda: None if args[0] is None else len(tk.to_text(args[0]).rstrip()),
        "UPPER": lambda: None if args[0] is None else tk.to_text(args[0]).upper(),
        "LOWER": lambda: None if args[0] is None else tk.to_text(args[0]).lower(),
        "LTRIM": lambda: None if args[0] is None else tk.to_text(args[0]).lstrip(),
        "RTRIM": lambda: None if args[0] is None else tk.to_text(args[0]).rstrip(),
        "ABS": lambda: None if args[0] is None else abs(args[0]),  # type: ignore[arg-type]
    }
    if name not in simple:
        raise SqlError(195, 15, f"'{name}' is not a recognized built-in function name.")
    try:
        return simple[name]()
    except IndexError:
        raise SqlError(174, 15, f"The {name.lower()} function requires more arguments.") from None
