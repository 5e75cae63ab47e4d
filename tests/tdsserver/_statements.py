"""Statements: the batch parser (one closure per statement), SET, USE, EXEC, transactions,
control flow, WAITFOR, KILL, PRINT/RAISERROR/THROW, DECLARE.

A whole batch is parsed before anything runs, so a syntax error anywhere fails the batch
with error 102 and changes nothing, as in SQL Server.
"""

from __future__ import annotations

from . import _tokens as tk
from ._dml import parse_create_table, parse_delete, parse_insert, parse_select, parse_update
from ._expr import Ctx, Expr, Stmt, const, convert, parse_delay, parse_expr, parse_type
from ._lex import TokenStream, tokenize
from ._packets import Value
from ._procs import call_procedure
from ._session import LANGUAGES, OPTION_BITS, SqlError, syntax_error


class Parser(TokenStream):
    def __init__(self, sql: str) -> None:
        super().__init__(tokenize(sql))

    def batch(self) -> list[Stmt]:
        stmts: list[Stmt] = []
        while True:
            while self.accept_op(";"):
                pass
            if self.peek().kind == "eof":
                return stmts
            stmts.append(self.statement())

    def statement(self) -> Stmt:
        word = self.peek().up
        handler = getattr(self, f"st_{word.lower()}", None) if word else None
        if handler is None:
            if self.pos == 0 and self.peek().kind in ("word", "qword"):
                return parse_exec(self)  # a batch may start with a procedure name and no EXEC
            raise self.error()
        self.next()
        stmt: Stmt = handler()
        return stmt

    def st_go(self) -> Stmt:
        return lambda ctx: None

    def st_select(self) -> Stmt:
        return parse_select(self)

    def st_set(self) -> Stmt:
        return parse_set(self)

    def st_use(self) -> Stmt:
        db = self.name()
        return lambda ctx: use_database(ctx, db)

    def st_begin(self) -> Stmt:
        if self.accept("TRAN", "TRANSACTION"):
            name = self.optional_name()
            return lambda ctx: ctx.session.begin(ctx.reply, name)
        if self.at("DISTRIBUTED", "TRY", "CATCH"):
            raise self.error()
        body: list[Stmt] = []
        while not self.accept("END"):
            while self.accept_op(";"):
                pass
            if self.at("END"):
                continue
            if self.peek().kind == "eof":
                raise self.error()
            body.append(self.statement())
        return lambda ctx: run_statements(ctx, body)

    def st_commit(self) -> Stmt:
        if self.accept("TRAN", "TRANSACTION", "WORK"):
            self.optional_name()
        return lambda ctx: ctx.session.commit(ctx.reply)

    def st_rollback(self) -> Stmt:
        name = None
        if self.accept("TRAN", "TRANSACTION", "WORK"):
            name = self.optional_name()

        def run(ctx: Ctx) -> None:
            s = ctx.session
            if name is not None and s.rollback_to(name):
                return
            if name is not None and s.trancount and name.lower() != (s.tran_name or "").lower():
                # "transaction_name must refer to the outermost BEGIN TRANSACTION's, or a
                # savepoint's" (ROLLBACK TRANSACTION's documentation); nothing is rolled back
                raise SqlError(6401, 16, f"Cannot roll back {name}. No transaction or savepoint of that "
                               "name was found.")
            if not s.rollback(ctx.reply):
                raise SqlError(3903, 16, "The ROLLBACK TRANSACTION request has no corresponding "
                               "BEGIN TRANSACTION.")

        return run

    def st_save(self) -> Stmt:
        self.expect("TRAN", "TRANSACTION")
        name = self.name()

        def run(ctx: Ctx) -> None:
            if not ctx.session.trancount:
                raise SqlError(628, 16, "Cannot issue SAVE TRANSACTION when there is no active transaction.")
            ctx.session.save(name)

        return run

    def st_if(self) -> Stmt:
        cond = parse_expr(self)
        then = self.statement()
        otherwise = None
        while self.accept_op(";"):
            pass
        if self.accept("ELSE"):
            otherwise = self.statement()

        def run(ctx: Ctx) -> None:
            if cond(ctx, None) is True:
                then(ctx)
            elif otherwise is not None:
                otherwise(ctx)

        return run

    def st_create(self) -> Stmt:
        self.expect("TABLE")
        return parse_create_table(self)

    def st_drop(self) -> Stmt:
        self.expect("TABLE")
        if_exists = False
        if self.at("IF"):
            self.next()
            self.expect("EXISTS")
            if_exists = True
        names = [self.name()]
        while self.accept_op(","):
            names.append(self.name())

        def run(ctx: Ctx) -> None:
            s = ctx.session
            for name in names:
                if not s.table_exists(name):
                    if if_exists:
                        continue
                    raise SqlError(3701, 11, f"Cannot drop the table '{name}', because it does not exist "
                                   "or you do not have permission.")
                if not name.split(".")[-1].startswith("#"):
                    s.implicit_begin(ctx.reply)
                s.drop_table(name)

        return run

    def st_truncate(self) -> Stmt:
        self.expect("TABLE")
        name = self.name()

        def run(ctx: Ctx) -> None:
            table = ctx.session.find_table(name)
            ctx.session.implicit_begin(ctx.reply)
            old = list(table.rows)
            table.rows.clear()
            ctx.session.journal(lambda: table.rows.extend(old))

        return run

    def st_insert(self) -> Stmt:
        return parse_insert(self)

    def st_update(self) -> Stmt:
        return parse_update(self)

    def st_delete(self) -> Stmt:
        return parse_delete(self)

    def st_exec(self) -> Stmt:
        return parse_exec(self)

    st_execute = st_exec

    def st_waitfor(self) -> Stmt:
        self.expect("DELAY")
        delay = parse_expr(self)

        def run(ctx: Ctx) -> None:
            ctx.wait(parse_delay(tk.to_text(delay(ctx, None))))

        return run

    def st_kill(self) -> Stmt:
        target = parse_expr(self)

        def run(ctx: Ctx) -> None:
            value = target(ctx, None)
            spid = int(value) if isinstance(value, (int, float)) else -1
            if spid == ctx.session.spid:
                raise SqlError(6104, 16, "Cannot use KILL to kill your own process.")
            if not ctx.session.host.kill_other(spid):
                raise SqlError(6106, 16, f"Process ID {tk.to_text(value)} is not an active process ID.")

        return run

    def st_print(self) -> Stmt:
        text = parse_expr(self)
        return lambda ctx: ctx.reply.info(0, tk.to_text(text(ctx, None)))

    def st_raiserror(self) -> Stmt:
        self.expect_op("(")
        args = [parse_expr(self)]
        while self.accept_op(","):
            args.append(parse_expr(self))
        self.expect_op(")")
        if self.accept("WITH"):
            self.expect("NOWAIT", "LOG", "SETERROR")
            while self.accept_op(","):
                self.expect("NOWAIT", "LOG", "SETERROR")

        def run(ctx: Ctx) -> None:
            values = [a(ctx, None) for a in args]
            if len(values) < 3:
                raise SqlError(102, 15, "Incorrect syntax near ')'.")
            msg, severity, state = values[0], int(values[1] or 0), int(values[2] or 1)
            number = msg if isinstance(msg, int) else 50000
            text = f"Error {msg}." if isinstance(msg, int) else tk.to_text(msg) % tuple(values[3:])
            if severity <= 10:
                ctx.reply.add(tk.message(number, state, severity, text, ctx.reply.server_name))
            else:
                raise SqlError(number, severity, text, state)

        return run

    def st_throw(self) -> Stmt:
        number = parse_expr(self)
        self.expect_op(",")
        text = parse_expr(self)
        self.expect_op(",")
        state = parse_expr(self)

        def run(ctx: Ctx) -> None:
            exc = SqlError(int(number(ctx, None) or 50000), 16, tk.to_text(text(ctx, None)),
                           int(state(ctx, None) or 1))
            exc.aborts_batch = True
            raise exc

        return run

    def st_declare(self) -> Stmt:
        decls: list[tuple[str, tk.SqlType, Expr | None]] = []
        while True:
            tok = self.next()
            if tok.kind != "var":
                raise syntax_error(tok.text)
            self.accept("AS")
            sql_type = parse_type(self)
            init = parse_expr(self) if self.accept_op("=") else None
            decls.append((tok.text[1:].lower(), sql_type, init))
            if not self.accept_op(","):
                break

        def run(ctx: Ctx) -> None:
            for name, sql_type, init in decls:
                ctx.variables[name] = None if init is None else convert(init(ctx, None), sql_type)

        return run


# --- statements: SET, USE, EXEC -----------------------------------------------------------


def set_identity_insert(ctx: Ctx, name: str, on: bool) -> None:
    """SET IDENTITY_INSERT: "At any time, only one table in a session can have the
    IDENTITY_INSERT property set to ON" (error 8107 for a second); SQLAlchemy's dialect
    sets it around an INSERT that gives the IDENTITY column a value."""
    s = ctx.session
    table = s.find_table(name)
    if table.identity is None:
        raise SqlError(8106, 16, f"Table '{name}' does not have the identity property. Cannot perform SET "
                       "operation.")
    if on and s.identity_insert not in (None, table.name):
        raise SqlError(8107, 16, f"IDENTITY_INSERT is already ON for table '{s.identity_insert}'. Cannot "
                       f"perform SET operation for table '{name}'.")
    s.identity_insert = table.name if on else None if s.identity_insert == table.name else s.identity_insert


def parse_set(p: Parser) -> Stmt:
    tok = p.peek()
    if tok.kind == "var":
        p.next()
        p.expect_op("=")
        value = parse_expr(p)
        var = tok.text[1:].lower()
        return lambda ctx: ctx.variables.__setitem__(var, value(ctx, None))
    word = p.next().up
    if word == "TRANSACTION":
        p.expect("ISOLATION")
        p.expect("LEVEL")
        first = p.expect("READ", "REPEATABLE", "SERIALIZABLE", "SNAPSHOT")
        second = p.expect("UNCOMMITTED", "COMMITTED") if first == "READ" else (
            p.expect("READ") if first == "REPEATABLE" else "")
        level = {"READUNCOMMITTED": 1, "READCOMMITTED": 2, "REPEATABLEREAD": 3, "SERIALIZABLE": 4,
                 "SNAPSHOT": 5}[first + second]
        return lambda ctx: ctx.session.set_isolation(level)
    if word in ("STATISTICS", "SHOWPLAN"):
        p.next()
        while p.accept_op(","):
            p.next()
        p.expect("ON", "OFF")
        return lambda ctx: None
    if word == "IDENTITY_INSERT":
        table = p.name()
        on = p.expect("ON", "OFF") == "ON"
        return lambda ctx: set_identity_insert(ctx, table, on)
    if word in OPTION_BITS or word == "ANSI_DEFAULTS":
        names = [word]
        while p.accept_op(","):
            names.append(p.next().up)
        for name in names:
            if name not in OPTION_BITS and name != "ANSI_DEFAULTS":
                raise SqlError(195, 15, f"'{name}' is not a recognized SET option.")
        on = p.expect("ON", "OFF") == "ON"
        if "ANSI_DEFAULTS" in names:
            names += ["ANSI_NULLS", "ANSI_NULL_DFLT_ON", "ANSI_PADDING", "ANSI_WARNINGS",
                      "CURSOR_CLOSE_ON_COMMIT", "IMPLICIT_TRANSACTIONS", "QUOTED_IDENTIFIER"]

        def run(ctx: Ctx) -> None:
            opts = ctx.session.opts
            for name in names:
                (opts.on.add if on else opts.on.discard)(name)
            ctx.session.eager_begin(ctx.reply)  # Babelfish: IMPLICIT_TRANSACTIONS ON begins one

        return run
    valued = {"DATEFIRST", "LANGUAGE", "LOCK_TIMEOUT", "TEXTSIZE", "DATEFORMAT", "DEADLOCK_PRIORITY",
              "ROWCOUNT", "CONTEXT_INFO", "QUERY_GOVERNOR_COST_LIMIT"}
    if word not in valued:
        raise SqlError(195, 15, f"'{tok.text}' is not a recognized SET option.")
    arg_tok = p.peek()
    arg: Expr = const(str(p.next().value)) if arg_tok.kind in ("word", "qword") else parse_expr(p)
    n_literal = arg_tok.kind == "str" and arg_tok.text[:1] in "Nn"

    def run_valued(ctx: Ctx) -> None:
        if word == "LANGUAGE" and n_literal and not ctx.session.catalog.personality.language_n_literal:
            raise syntax_error(arg_tok.text)  # Babelfish: SET LANGUAGE us_english or [us_english] only
        set_valued(ctx, word, arg(ctx, None))

    return run_valued


def set_valued(ctx: Ctx, word: str, value: Value) -> None:
    opts = ctx.session.opts
    if word == "DATEFIRST":
        number = int(value)  # type: ignore[arg-type]
        if not 1 <= number <= 7:
            raise SqlError(1005, 15, "The value for DATEFIRST must be between 1 and 7.")
        opts.datefirst = number
    elif word == "LANGUAGE":
        name = tk.to_text(value)
        if name.lower() not in LANGUAGES:
            raise SqlError(2732, 16, f"Error number 2732 - The language '{name}' is not supported.")
        name = "us_english" if name.lower() == "english" else name.lower()
        old = opts.language
        opts.language = name
        opts.datefirst = LANGUAGES[name]
        ctx.reply.add(tk.env_text(tk.ENV_LANGUAGE, name, old))
        ctx.reply.info(5703, f"Changed language setting to {name}.")
    elif word == "LOCK_TIMEOUT":
        opts.lock_timeout = int(value)  # type: ignore[arg-type]
    elif word == "TEXTSIZE":
        number = int(value)  # type: ignore[arg-type]
        opts.textsize = 4096 if number == 0 else 2147483647 if number < 0 else number
    elif word == "DATEFORMAT":
        opts.dateformat = tk.to_text(value).lower()
    elif word == "DEADLOCK_PRIORITY":
        opts.deadlock_priority = tk.to_text(value).upper()
    elif word == "ROWCOUNT":
        opts.rowcount = int(value)  # type: ignore[arg-type]


def use_database(ctx: Ctx, name: str) -> None:
    s = ctx.session
    real = s.catalog.database(name)
    if real is None:
        raise SqlError(911, 16, f"Database '{name}' does not exist. Make sure that the name is entered "
                       "correctly.")
    old = s.database
    s.database = real
    ctx.reply.add(tk.env_text(tk.ENV_DATABASE, real, old))
    ctx.reply.info(5701, f"Changed database context to '{real}'.")


Args = list[tuple[str, Value]]


def parse_exec(p: Parser) -> Stmt:
    if p.accept_op("("):  # EXEC ('dynamic sql')
        text = parse_expr(p)
        p.expect_op(")")
        return lambda ctx: run_statements(ctx, Parser(tk.to_text(text(ctx, None))).batch())
    if p.peek().kind == "var" and p.peek(1).text == "=":
        p.next()
        p.next()
    proc = p.name().split(".")[-1]
    args: list[tuple[str, Expr]] = []
    if not p.at_end_of_statement():
        while True:
            name = ""
            if p.peek().kind == "var" and p.peek(1).text == "=":
                name = p.next().text[1:].lower()
                p.next()
            args.append((name, parse_expr(p)))
            p.accept("OUTPUT", "OUT")
            if not p.accept_op(","):
                break

    def run(ctx: Ctx) -> None:
        values = [(name, expr(ctx, None)) for name, expr in args]
        status = call_procedure(ctx, proc.lower(), values, shown=proc)
        ctx.reply.add(tk.returnstatus(status))
        ctx.reply.done(token=0xFE)

    return run


# --- running --------------------------------------------------------------------------------


def parse_batch(sql: str) -> list[Stmt]:
    return Parser(sql).batch()


def run_statements(ctx: Ctx, stmts: list[Stmt]) -> None:
    for stmt in stmts:
        stmt(ctx)
