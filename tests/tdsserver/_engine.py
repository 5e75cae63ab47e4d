"""Running one request (SQL batch, RPC, transaction-manager request) against a session."""

from __future__ import annotations

import re

from . import _tokens as tk
from ._expr import Ctx, Stmt
from ._packets import TM_BEGIN_XACT, TM_COMMIT_XACT, TM_ROLLBACK_XACT, Param, RpcCall, TmRequest, Value
from ._procs import call_procedure
from ._session import Reply, Session, SqlError
from ._statements import parse_batch

# Faults and login failures: number -> (severity, message) as SQL Server / Azure SQL word them.
ERRORS: dict[int, tuple[int, str]] = {
    18456: (14, "Login failed for user '{user}'."),
    4060: (11, 'Cannot open database "{db}" requested by the login. The login failed.'),
    40613: (17, "Database '{db}' on server '{server}' is not currently available. Please retry the "
                "connection later. If the problem persists, contact customer support, and provide them "
                "the session tracing ID of '00000000-0000-0000-0000-000000000000'."),
    42108: (14, "Can not connect to the SQL pool since it is paused. Please resume the SQL pool and try "
                "again."),
    40615: (14, "Cannot open server '{server}' requested by the login. Client with IP address '127.0.0.1' "
                "is not allowed to access the server."),
    40501: (20, "The service is currently busy. Retry the request after 10 seconds. Incident ID: "
                "{{00000000-0000-0000-0000-000000000000}}. Code: 0."),
    40197: (20, "The service has encountered an error processing your request. Please try again. Error "
                "code 4815."),
    1205: (13, "Transaction (Process ID {spid}) was deadlocked on lock resources with another process and "
               "has been chosen as the deadlock victim. Rerun the transaction."),
    1222: (16, "Lock request time out period exceeded."),
    49918: (16, "Cannot process request. Not enough resources to process request."),
    10928: (16, "Resource ID : 1. The request limit for the database is 200 and has been reached."),
    233: (20, "A transport-level error has occurred when sending the request to the server."),
}


def fault_error(number: int, severity: int | None, **names: object) -> SqlError:
    default_severity, template = ERRORS.get(number, (16, f"Simulated error {number}."))
    return SqlError(number, default_severity if severity is None else severity, template.format(**names))


def _aborts(exc: SqlError, session: Session) -> bool:
    return exc.aborts_batch or exc.number == 1205 or exc.severity >= 17 or (
        "XACT_ABORT" in session.opts.on and exc.severity >= 11)


def execute(ctx: Ctx, stmts: list[Stmt]) -> bool:
    """Run statements one by one, each under the catalog lock; False if any failed."""
    ok = True
    for stmt in stmts:
        with ctx.session.catalog.lock:
            try:
                stmt(ctx)
            except SqlError as exc:
                ok = False
                ctx.reply.error(exc)
                ctx.reply.done(tk.DONE_ERROR)
                if _aborts(exc, ctx.session):
                    if exc.number == 1205 or "XACT_ABORT" in ctx.session.opts.on:
                        ctx.session.rollback(ctx.reply)
                    return False
    return ok


def run_batch(session: Session, reply: Reply, sql: str) -> None:
    ctx = Ctx(session, reply)
    try:
        stmts = parse_batch(sql)
    except SqlError as exc:
        reply.error(exc)
        reply.done(tk.DONE_ERROR)
        return
    execute(ctx, stmts)


# --- RPC ------------------------------------------------------------------------------


def _declared_names(declaration: Value) -> list[str]:
    return [name.lower() for name in re.findall(r"@(\w+)", tk.to_text(declaration or ""))]


def _bind(declaration: Value, params: list[Param]) -> dict[str, Value]:
    names = _declared_names(declaration)
    bound: dict[str, Value] = {}
    for position, param in enumerate(params):
        name = param.name or (names[position] if position < len(names) else f"p{position + 1}")
        bound[name] = param.value
    return bound


def _run_text(ctx: Ctx, sql: Value) -> bool:
    try:
        stmts = parse_batch(tk.to_text(sql or ""))
    except SqlError as exc:
        ctx.reply.error(exc)
        ctx.reply.done(tk.DONE_ERROR)
        return False
    return execute(ctx, stmts)


def _prepare(session: Session, declaration: Value, sql: Value) -> int:
    handle = max(session.prepared, default=0) + 1
    session.prepared[handle] = (_declared_names(declaration), tk.to_text(sql or ""))
    return handle


def _call(ctx: Ctx, call: RpcCall) -> tuple[bool, list[tuple[int, Param, Value]]]:
    """Run one RPC; (succeeded, output parameters to return as (ordinal, param, value))."""
    s = ctx.session
    p = call.params
    if call.proc == "sp_executesql":
        if not p:
            raise SqlError(201, 16, "Procedure or function 'sp_executesql' expects parameter '@statement', "
                           "which was not supplied.")
        ctx.variables.update(_bind(p[1].value if len(p) > 1 else "", p[2:]))
        ok = _run_text(ctx, p[0].value)
        return ok, [(i + 2, q, ctx.variables.get(q.name)) for i, q in enumerate(p[2:]) if q.output and q.name]
    if call.proc in ("sp_prepexec", "sp_prepare"):
        handle = _prepare(s, p[1].value, p[2].value)
        ok = True
        if call.proc == "sp_prepexec":
            ctx.variables.update(_bind(p[1].value, p[3:]))
            ok = _run_text(ctx, p[2].value)
        return ok, [(0, p[0], handle)]
    if call.proc == "sp_execute":
        handle = int(p[0].value or 0)
        if handle not in s.prepared:
            raise SqlError(8179, 16, f"Could not find prepared statement with handle {handle}.")
        names, sql = s.prepared[handle]
        ctx.variables.update({q.name or (names[i] if i < len(names) else f"p{i}"): q.value
                              for i, q in enumerate(p[1:])})
        return _run_text(ctx, sql), []
    if call.proc == "sp_unprepare":
        s.prepared.pop(int(p[0].value or 0), None)
        return True, []
    with s.catalog.lock:
        call_procedure(ctx, call.proc, [(q.name, q.value) for q in p])
    return True, []


def run_rpc(session: Session, reply: Reply, calls: list[RpcCall]) -> None:
    for call in calls:
        ctx = Ctx(session, reply)
        reply.in_proc = True
        try:
            ok, outputs = _call(ctx, call)
        except SqlError as exc:
            reply.error(exc, proc=call.proc)
            ok, outputs = False, []
        finally:
            reply.in_proc = False
        reply.add(tk.returnstatus(0 if ok else 1))
        for ordinal, param, value in outputs:
            sql_type = tk.SqlType("int") if isinstance(value, int) or value is None else tk.type_of(value)
            name = f"@{param.name}" if param.name else ""
            reply.add(tk.returnvalue(ordinal, name, sql_type, value))
        reply.done(0 if ok else tk.DONE_ERROR, token=0xFE)


# --- transaction manager ----------------------------------------------------------------


def run_tm(session: Session, reply: Reply, req: TmRequest) -> None:
    try:
        with session.catalog.lock:
            if req.kind == TM_BEGIN_XACT:
                if req.isolation:
                    session.isolation = req.isolation
                session.chained = True
                _begin_unless_eager(session, reply)
            elif req.kind in (TM_COMMIT_XACT, TM_ROLLBACK_XACT):
                session.chained = session.chained and bool(req.begin_after)  # else: autocommit from here
                if req.kind == TM_COMMIT_XACT:
                    session.trancount = min(session.trancount, 1)
                    session.commit(reply)
                elif not session.rollback(reply):
                    raise SqlError(3903, 16, "The ROLLBACK TRANSACTION request has no corresponding "
                                   "BEGIN TRANSACTION.")
                if req.begin_after:
                    if req.new_isolation:
                        session.isolation = req.new_isolation
                    session.chained = True
                    _begin_unless_eager(session, reply)
    except SqlError as exc:
        reply.error(exc)
        reply.done(tk.DONE_ERROR)
        return
    reply.done()


def _begin_unless_eager(session: Session, reply: Reply) -> None:
    """Begin the client's transaction, or (Babelfish) hand it the one begun eagerly."""
    if session.personality.eager_implicit_transactions and session.trancount:
        reply.add(tk.env_begin_tran(session.descriptor))
        return
    session.begin(reply)
