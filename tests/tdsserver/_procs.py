"""System procedures a batch can EXEC or a client can call by RPC name."""

from __future__ import annotations

from . import _tokens as tk
from ._expr import Ctx
from ._packets import Value
from ._session import SqlError

Args = list[tuple[str, Value]]


def _arg(args: Args, name: str, position: int, default: Value = None) -> Value:
    for arg_name, value in args:
        if arg_name == name:
            return value
    positional = [value for arg_name, value in args if not arg_name]
    return positional[position] if position < len(positional) else default


def call_procedure(ctx: Ctx, proc: str, args: Args, shown: str = "") -> int:
    """Run one; its return status. (sp_executesql and the sp_prep* family are in ``_engine``.)"""
    s = ctx.session
    if proc == "sp_set_session_context":
        key = tk.to_text(_arg(args, "key", 0))
        if key in s.readonly_context:
            raise SqlError(15664, 16, f"Cannot set key '{key}' in the session context. The key has been set "
                           "as read_only for this session.")
        s.context[key] = _arg(args, "value", 1)
        if _arg(args, "read_only", 2):
            s.readonly_context.add(key)
        return 0
    if proc == "sp_getapplock":
        owner = tk.to_text(_arg(args, "lockowner", 2, "Transaction")).lower()
        s.applocks.append((tk.to_text(_arg(args, "resource", 0)), owner))
        return 0
    if proc == "sp_releaseapplock":
        resource = tk.to_text(_arg(args, "resource", 0))
        s.applocks = [lock for lock in s.applocks if lock[0] != resource]
        return 0
    if proc in ("sp_datatype_info_100", "sp_datatype_info"):
        s.note_read()
        datatype_info(ctx, int(_arg(args, "data_type", 0, 0) or 0))
        return 0
    if proc == "sp_reset_connection":
        s.reset(ctx.reply, keep_transaction=False)
        return 0
    raise SqlError(2812, 16, f"Could not find stored procedure '{shown or proc}'.")


# SQLGetTypeInfo rows the ODBC drivers ask for at connect: (name, ODBC type, column size).
TYPE_INFO_ROWS = [("varchar", 12, 8000), ("nvarchar", -9, 4000), ("varbinary", -3, 8000),
                  ("datetime2", 93, 27), ("int", 4, 10), ("bigint", -5, 19), ("bit", -7, 1)]


def datatype_info(ctx: Ctx, data_type: int) -> None:
    """sp_datatype_info_100: the first columns of SQLGetTypeInfo's result for one type."""
    text, small, int_t = tk.SqlType("nvarchar", 128), tk.SqlType("smallint"), tk.SqlType("int")
    columns = [("TYPE_NAME", text), ("DATA_TYPE", small), ("PRECISION", int_t), ("LITERAL_PREFIX", text),
               ("LITERAL_SUFFIX", text), ("CREATE_PARAMS", text), ("NULLABLE", small),
               ("CASE_SENSITIVE", small), ("SEARCHABLE", small), ("UNSIGNED_ATTRIBUTE", small),
               ("MONEY", small), ("AUTO_INCREMENT", small), ("LOCAL_TYPE_NAME", text),
               ("MINIMUM_SCALE", small), ("MAXIMUM_SCALE", small), ("SQL_DATA_TYPE", small),
               ("SQL_DATETIME_SUB", small), ("NUM_PREC_RADIX", int_t), ("INTERVAL_PRECISION", small),
               ("USERTYPE", small), ("LENGTH", int_t), ("SS_DATA_TYPE", small)]
    rows = [[name, code, size, None, None, None, 1, 0, 3, None, 0, None, name, None, None, code, None,
             None, None, 0, size, 0] for name, code, size in TYPE_INFO_ROWS if data_type in (0, code)]
    types = [t for _, t in columns]
    ctx.reply.add(tk.colmetadata(columns))
    for values in rows:
        ctx.reply.add(tk.row(types, values))  # type: ignore[arg-type]
    ctx.reply.done(tk.DONE_COUNT, len(rows), curcmd=tk.CMD_SELECT)
