"""The mini T-SQL engine: a tokenizer, a recursive-descent parser that turns each statement
into a closure, and the closures themselves.

Not a database: just enough T-SQL for what the four drivers send on their own and what
tether's tests send. A whole batch is parsed before anything runs, so a syntax error
anywhere fails the batch with error 102 and changes nothing, as in SQL Server.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from . import _tokens as tk
from ._packets import Value
from ._session import (
    LANGUAGES,
    OPTION_BITS,
    Reply,
    Session,
    SqlError,
    Table,
    syntax_error,
)

VERSION = "16.0.4135.4"
VERSION_TEXT = (f"Microsoft SQL Server 2022 (RTM) - {VERSION} (X64)\n"
                "\tCopyright (C) 2022 Microsoft Corporation\n"
                "\tDeveloper Edition (64-bit) on Linux (tether TDS test server)")
# database_id as SQL Server numbers the system databases; others follow from 5.
SYSTEM_DB_IDS = {"master": 1, "tempdb": 2, "model": 3, "msdb": 4}


# --- tokens -----------------------------------------------------------------------------


@dataclass
class Tok:
    kind: str  # word, qword (quoted identifier), var, gvar, num, str, bin, op, eof
    text: str
    value: Value = None

    @property
    def up(self) -> str:
        return self.text.upper() if self.kind == "word" else ""


_TOKEN_RE = re.compile(
    r"""(?P<ws>\s+|--[^\n]*|/\*.*?\*/)
      | (?P<str>[Nn]?'(?:[^']|'')*')
      | (?P<bin>0[xX][0-9a-fA-F]*)
      | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<gvar>@@\w+)
      | (?P<var>@\w+)
      | (?P<qword>\[(?:[^\]]|\]\])*\]|"[^"]*")
      | (?P<word>\#{0,2}[^\W\d][\w$#@]*|\#{1,2}[\w$#@]+)
      | (?P<op><>|!=|<=|>=|[-+*/%=<>(),;.!~&|^])""",
    re.VERBOSE | re.DOTALL,
)


def tokenize(sql: str) -> list[Tok]:
    toks: list[Tok] = []
    pos = 0
    while pos < len(sql):
        m = _TOKEN_RE.match(sql, pos)
        if m is None:
            if sql[pos] == "'" or sql[pos : pos + 2].upper() == "N'":
                raise SqlError(105, 15, f"Unclosed quotation mark after the character string '{sql[pos:]}'.")
            raise syntax_error(sql[pos])
        pos = m.end()
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "ws":
            continue
        if kind == "str":
            toks.append(Tok("str", text, text[text.index("'") + 1 : -1].replace("''", "'")))
        elif kind == "num":
            is_float = any(c in text for c in ".eE")
            toks.append(Tok("num", text, float(text) if is_float else int(text)))
        elif kind == "bin":
            digits = text[2:]
            toks.append(Tok("bin", text, bytes.fromhex(digits if len(digits) % 2 == 0 else "0" + digits)))
        elif kind == "qword":
            toks.append(Tok("qword", text, text[1:-1].replace("]]", "]")))
        else:
            toks.append(Tok(kind, text, text))
    toks.append(Tok("eof", ""))
    return toks


# --- execution context and expressions --------------------------------------------------


@dataclass
class Ctx:
    """One request's execution: the session, the reply being built, variables/parameters."""

    session: Session
    reply: Reply
    variables: dict[str, Value] = field(default_factory=dict)  # lower-case names without '@'
    identity: Value = None

    def wait(self, seconds: float) -> None:
        # Waits run without the catalog lock so other sessions (and KILL) keep going.
        self.session.catalog.lock.release()
        try:
            self.session.host.wait(seconds)
        finally:
            self.session.catalog.lock.acquire()


Row = dict[str, Value]


@dataclass
class Expr:
    fn: Callable[[Ctx, Row | None], Value]
    column: str | None = None  # a bare column reference: its declared type is the result's
    sql_type: tk.SqlType | None = None  # a CAST/CONVERT: the result type is known
    aggregate: bool = False  # COUNT(*)

    def __call__(self, ctx: Ctx, row: Row | None) -> Value:
        return self.fn(ctx, row)


def _const(value: Value) -> Expr:
    return Expr(lambda ctx, row: value)


def _cmp_key(value: Value) -> Value:
    # The default collation is case-insensitive and ignores trailing spaces.
    return value.rstrip().lower() if isinstance(value, str) else value


def _coerce_pair(a: Value, b: Value) -> tuple[Value, Value]:
    if isinstance(a, str) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return _to_number(a), b
    if isinstance(b, str) and isinstance(a, (int, float)) and not isinstance(a, bool):
        return a, _to_number(b)
    return _cmp_key(a), _cmp_key(b)


def _to_number(value: str) -> int | float:
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            raise SqlError(245, 16, f"Conversion failed when converting the varchar value '{value}' "
                           "to data type int.") from None


def compare(op: str, a: Value, b: Value) -> bool | None:
    if a is None or b is None:
        return None  # UNKNOWN: filtered out like FALSE
    x, y = _coerce_pair(a, b)
    try:
        if op == "=":
            return bool(x == y)
        if op in ("<>", "!="):
            return bool(x != y)
        if op == "<":
            return bool(x < y)  # type: ignore[operator]
        if op == ">":
            return bool(x > y)  # type: ignore[operator]
        if op == "<=":
            return bool(x <= y)  # type: ignore[operator]
        return bool(x >= y)  # type: ignore[operator]
    except TypeError:
        raise SqlError(206, 16, "Operand type clash.") from None


def convert(value: Value, sql_type: tk.SqlType) -> Value:
    """CAST/CONVERT and the coercion of values stored into a typed column."""
    if value is None:
        return None
    kind = sql_type.kind
    if kind in tk.INT_SIZES:
        number = _to_number(value) if isinstance(value, str) else value
        return int(number)
    if kind == "bit":
        return bool(_to_number(value)) if isinstance(value, str) else bool(value)
    if kind == "float":
        return float(_to_number(value) if isinstance(value, str) else value)
    if kind == "varbinary":
        return value if isinstance(value, bytes) else tk.to_text(value).encode("utf-16-le")
    return tk.to_text(value)


def _global(name: str, ctx: Ctx) -> Value:
    s = ctx.session
    values: dict[str, Callable[[], Value]] = {
        "SPID": lambda: s.spid,
        "TRANCOUNT": lambda: s.trancount,
        "DATEFIRST": lambda: s.opts.datefirst,
        "LANGUAGE": lambda: s.opts.language,
        "LOCK_TIMEOUT": lambda: s.opts.lock_timeout,
        "OPTIONS": lambda: s.opts.bits(),
        "TEXTSIZE": lambda: s.opts.textsize,
        "VERSION": lambda: VERSION_TEXT,
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


def _function(name: str, args: list[Value], ctx: Ctx) -> Value:
    s = ctx.session
    now = dt.datetime.now()
    simple: dict[str, Callable[[], Value]] = {
        "DB_NAME": lambda: s.database if not args or args[0] is None else database_name(ctx, int(args[0])),
        "DB_ID": lambda: database_id(ctx, tk.to_text(args[0]) if args else s.database),
        "SERVERPROPERTY": lambda: (ctx.reply.server_name if tk.to_text(args[0]).lower() in
                                   ("servername", "machinename") else
                                   SERVER_PROPERTIES.get(tk.to_text(args[0]).lower())),
        "SESSION_CONTEXT": lambda: s.context.get(tk.to_text(args[0])),
        "USER_NAME": lambda: "dbo",
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


# --- the parser -------------------------------------------------------------------------

Stmt = Callable[[Ctx], None]

STATEMENT_WORDS = frozenset({
    "SELECT", "INSERT", "UPDATE", "DELETE", "SET", "USE", "BEGIN", "COMMIT", "ROLLBACK", "SAVE", "IF",
    "ELSE", "END", "CREATE", "DROP", "EXEC", "EXECUTE", "WAITFOR", "KILL", "PRINT", "RAISERROR", "THROW",
    "DECLARE", "TRUNCATE", "WHILE", "RETURN", "GO", "WITH",
})
CLAUSE_WORDS = frozenset({"FROM", "WHERE", "ORDER", "GROUP", "HAVING", "UNION", "INTO", "AS", "ON", "OFF",
                          "AND", "OR", "NOT", "IS", "NULL", "VALUES", "OPTION"})


class Parser:
    def __init__(self, sql: str) -> None:
        self.toks = tokenize(sql)
        self.pos = 0

    # token helpers
    def peek(self, ahead: int = 0) -> Tok:
        return self.toks[min(self.pos + ahead, len(self.toks) - 1)]

    def next(self) -> Tok:
        tok = self.peek()
        self.pos = min(self.pos + 1, len(self.toks) - 1)
        return tok

    def at(self, *words: str) -> bool:
        return self.peek().up in words

    def at_op(self, *ops: str) -> bool:
        tok = self.peek()
        return tok.kind == "op" and tok.text in ops

    def accept(self, *words: str) -> bool:
        if self.at(*words):
            self.next()
            return True
        return False

    def accept_op(self, op: str) -> bool:
        if self.at_op(op):
            self.next()
            return True
        return False

    def expect(self, *words: str) -> str:
        if not self.at(*words):
            raise self.error()
        return self.next().up

    def expect_op(self, op: str) -> None:
        if not self.accept_op(op):
            raise self.error()

    def error(self) -> SqlError:
        tok = self.peek()
        if tok.kind == "eof":
            return syntax_error(self.toks[self.pos - 1].text if self.pos else "")
        return syntax_error(tok.text)

    def at_end_of_statement(self) -> bool:
        tok = self.peek()
        return tok.kind == "eof" or self.at_op(";") or tok.up in STATEMENT_WORDS

    def name(self) -> str:
        """A possibly dotted, possibly bracketed object name: shop.dbo.[t], tempdb..#t."""
        parts: list[str] = []
        while True:
            tok = self.peek()
            if tok.kind in ("word", "qword"):
                parts.append(str(self.next().value))
            elif not (parts or self.at_op(".")):
                raise self.error()
            else:
                parts.append("")
            if not self.accept_op("."):
                return ".".join(parts)

    def optional_name(self) -> str | None:
        tok = self.peek()
        if tok.kind == "qword" or (tok.kind == "word" and tok.up not in STATEMENT_WORDS | CLAUSE_WORDS):
            return self.name()
        if tok.kind == "var":
            self.next()
            return tok.text
        return None

    # batch and statements
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
            self.optional_name()
            return lambda ctx: ctx.session.begin(ctx.reply)
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
        if self.accept("TRAN", "TRANSACTION", "WORK"):
            self.optional_name()

        def run(ctx: Ctx) -> None:
            if not ctx.session.rollback(ctx.reply):
                raise SqlError(3903, 16, "The ROLLBACK TRANSACTION request has no corresponding "
                               "BEGIN TRANSACTION.")

        return run

    def st_save(self) -> Stmt:
        self.expect("TRAN", "TRANSACTION")
        self.name()

        def run(ctx: Ctx) -> None:
            if not ctx.session.trancount:
                raise SqlError(628, 16, "Cannot issue SAVE TRANSACTION when there is no active transaction.")

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


# --- expressions ------------------------------------------------------------------------


def parse_expr(p: Parser) -> Expr:
    return _parse_or(p)


def _parse_or(p: Parser) -> Expr:
    left = _parse_and(p)
    while p.accept("OR"):
        right = _parse_and(p)
        left = _binary(_or, left, right)
    return left


def _binary(fn: Callable[[Value, Value], Value], left: Expr, right: Expr) -> Expr:
    return Expr(lambda c, r: fn(left(c, r), right(c, r)))


def _column_getter(name: str) -> Expr:
    return Expr(lambda c, r: r[name] if r else None)


def _row_key(ctx: Ctx, key: Expr, row: Row | None) -> tuple[int, Value]:
    return _sort_key(key(ctx, row))


def _or(a: Value, b: Value) -> Value:
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def _parse_and(p: Parser) -> Expr:
    left = _parse_not(p)
    while p.accept("AND"):
        right = _parse_not(p)
        left = _binary(_and, left, right)
    return left


def _and(a: Value, b: Value) -> Value:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _parse_not(p: Parser) -> Expr:
    if p.accept("NOT"):
        inner = _parse_not(p)
        return Expr(lambda c, r: None if (v := inner(c, r)) is None else not v)
    if p.accept("EXISTS"):
        raise p.error()
    return _parse_comparison(p)


def _parse_comparison(p: Parser) -> Expr:
    left = _parse_additive(p)
    if p.at_op("=", "<>", "!=", "<", ">", "<=", ">="):
        op = p.next().text
        right = _parse_additive(p)
        return Expr(lambda c, r: compare(op, left(c, r), right(c, r)))
    if p.accept("IS"):
        negate = p.accept("NOT")
        p.expect("NULL")
        return Expr(lambda c, r: (left(c, r) is None) != negate)
    if p.at("LIKE"):
        p.next()
        pattern = _parse_additive(p)
        return Expr(lambda c, r: _like(left(c, r), pattern(c, r)))
    if p.at("IN"):
        p.next()
        p.expect_op("(")
        items = [parse_expr(p)]
        while p.accept_op(","):
            items.append(parse_expr(p))
        p.expect_op(")")
        return Expr(lambda c, r: any(compare("=", left(c, r), i(c, r)) for i in items))
    return left


def _like(value: Value, pattern: Value) -> Value:
    if value is None or pattern is None:
        return None
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in tk.to_text(pattern))
    return re.fullmatch(regex, tk.to_text(value), re.IGNORECASE | re.DOTALL) is not None


def _parse_additive(p: Parser) -> Expr:
    left = _parse_term(p)
    while p.at_op("+", "-"):
        op = p.next().text
        right = _parse_term(p)
        left = _binary(functools.partial(_arith, op), left, right)
    return left


def _parse_term(p: Parser) -> Expr:
    left = _parse_unary(p)
    while p.at_op("*", "/", "%"):
        op = p.next().text
        right = _parse_unary(p)
        left = _binary(functools.partial(_arith, op), left, right)
    return left


def _arith(op: str, a: Value, b: Value) -> Value:
    if a is None or b is None:
        return None
    if op == "+" and (isinstance(a, str) or isinstance(b, str)):
        if isinstance(a, str) and isinstance(b, str):
            return a + b
        a, b = _coerce_pair(a, b)
    x, y = a, b
    try:
        if op == "+":
            return x + y  # type: ignore[operator]
        if op == "-":
            return x - y  # type: ignore[operator]
        if op == "*":
            return x * y  # type: ignore[operator]
        if y == 0:
            raise SqlError(8134, 16, "Divide by zero error encountered.")
        if op == "%":
            return x % y  # type: ignore[operator]
        if isinstance(x, int) and isinstance(y, int):
            return int(x / y)  # integer division truncates toward zero
        return x / y  # type: ignore[operator]
    except TypeError:
        raise SqlError(206, 16, "Operand type clash.") from None


def _parse_unary(p: Parser) -> Expr:
    if p.accept_op("-"):
        inner = _parse_unary(p)
        return Expr(lambda c, r: None if (v := inner(c, r)) is None else -v)  # type: ignore[operator]
    if p.accept_op("+"):
        return _parse_unary(p)
    return _parse_primary(p)


def _parse_primary(p: Parser) -> Expr:
    tok = p.peek()
    if tok.kind in ("num", "str", "bin"):
        p.next()
        return _const(tok.value)
    if tok.up == "NULL":
        p.next()
        return _const(None)
    if tok.kind == "gvar":
        p.next()
        name = tok.text[2:].upper()
        return Expr(lambda c, r: _global(name, c))
    if tok.kind == "var":
        p.next()
        var = tok.text[1:].lower()

        def variable(c: Ctx, r: Row | None) -> Value:
            if var not in c.variables:
                raise SqlError(137, 15, f'Must declare the scalar variable "{tok.text}".')
            return c.variables[var]

        return Expr(variable)
    if p.accept_op("("):
        inner = parse_expr(p)
        p.expect_op(")")
        return inner
    if tok.up in ("CAST", "CONVERT", "TRY_CAST", "TRY_CONVERT") and p.peek(1).text == "(":
        return _parse_cast(p)
    if tok.up in ("CURRENT_TIMESTAMP", "CURRENT_USER", "SESSION_USER", "SYSTEM_USER"):
        p.next()
        fname = {"CURRENT_TIMESTAMP": "GETDATE", "SYSTEM_USER": "SUSER_SNAME"}.get(tok.up, "USER_NAME")
        return Expr(lambda c, r: _function(fname, [], c))
    if tok.kind == "word" and p.peek(1).text == "(" and p.peek(1).kind == "op":
        p.next()
        p.next()
        fname = tok.up
        if fname == "COUNT":
            if p.accept_op("*"):
                p.expect_op(")")
                return Expr(lambda c, r: 0, aggregate=True)
            raise p.error()
        args: list[Expr] = []
        if not p.at_op(")"):
            args.append(parse_expr(p))
            while p.accept_op(","):
                args.append(parse_expr(p))
        p.expect_op(")")
        return Expr(lambda c, r: _function(fname, [a(c, r) for a in args], c))
    if tok.kind in ("word", "qword") and tok.up not in STATEMENT_WORDS | CLAUSE_WORDS:
        column = p.name().split(".")[-1]

        def column_value(c: Ctx, r: Row | None) -> Value:
            if r is None or column.lower() not in r:
                raise SqlError(207, 16, f"Invalid column name '{column}'.")
            return r[column.lower()]

        return Expr(column_value, column=column)
    raise p.error()


def _parse_cast(p: Parser) -> Expr:
    fname = p.next().up
    p.expect_op("(")
    if fname.endswith("CONVERT"):
        sql_type = parse_type(p)
        p.expect_op(",")
        inner = parse_expr(p)
        if p.accept_op(","):
            parse_expr(p)  # style
    else:
        inner = parse_expr(p)
        p.expect("AS")
        sql_type = parse_type(p)
    p.expect_op(")")
    return Expr(lambda c, r: convert(inner(c, r), sql_type), sql_type=sql_type)


TYPE_KINDS = {
    "INT": "int", "INTEGER": "int", "BIGINT": "bigint", "SMALLINT": "smallint", "TINYINT": "tinyint",
    "BIT": "bit", "FLOAT": "float", "REAL": "float", "DECIMAL": "float", "NUMERIC": "float",
    "MONEY": "float", "SMALLMONEY": "float", "VARBINARY": "varbinary", "BINARY": "varbinary",
    "IMAGE": "varbinary", "ROWVERSION": "varbinary", "TIMESTAMP": "varbinary",
}


def parse_type(p: Parser) -> tk.SqlType:
    tok = p.next()
    if tok.kind not in ("word", "qword"):
        raise syntax_error(tok.text)
    name = str(tok.value).upper()
    size = 4000 if name in ("TEXT", "NTEXT", "XML", "SQL_VARIANT") else 128
    if p.accept_op("("):
        size_tok = p.next()
        if size_tok.up == "MAX":
            size = 4000
        elif size_tok.kind == "num":
            size = int(size_tok.value)  # type: ignore[arg-type]
        else:
            raise syntax_error(size_tok.text)
        if p.accept_op(","):
            p.next()
        p.expect_op(")")
    kind = TYPE_KINDS.get(name, "nvarchar")
    if name in ("CHAR", "NCHAR", "VARCHAR", "NVARCHAR") and size == 128:
        size = 1
    return tk.SqlType(kind, size if kind in ("nvarchar", "varbinary") else 0)


def parse_delay(text: str) -> float:
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,3}))?)?\s*", text)
    if m is None:
        raise SqlError(148, 15, "Incorrect time syntax in time string used with WAITFOR.")
    hours, minutes, seconds, millis = m.groups()
    fraction = int((millis or "0").ljust(3, "0")) / 1000
    return int(hours) * 3600 + int(minutes) * 60 + int(seconds or 0) + fraction


# --- statements: SET, USE, EXEC -----------------------------------------------------------


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
        return lambda ctx: setattr(ctx.session, "isolation", level)
    if word in ("STATISTICS", "SHOWPLAN"):
        p.next()
        while p.accept_op(","):
            p.next()
        p.expect("ON", "OFF")
        return lambda ctx: None
    if word == "IDENTITY_INSERT":
        p.name()
        p.expect("ON", "OFF")
        return lambda ctx: None
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

        return run
    valued = {"DATEFIRST", "LANGUAGE", "LOCK_TIMEOUT", "TEXTSIZE", "DATEFORMAT", "DEADLOCK_PRIORITY",
              "ROWCOUNT", "CONTEXT_INFO", "QUERY_GOVERNOR_COST_LIMIT"}
    if word not in valued:
        raise SqlError(195, 15, f"'{tok.text}' is not a recognized SET option.")
    arg_tok = p.peek()
    arg: Expr = _const(str(p.next().value)) if arg_tok.kind in ("word", "qword") else parse_expr(p)

    def run_valued(ctx: Ctx) -> None:
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


def _arg(args: Args, name: str, position: int, default: Value = None) -> Value:
    for arg_name, value in args:
        if arg_name == name:
            return value
    positional = [value for arg_name, value in args if not arg_name]
    return positional[position] if position < len(positional) else default


def call_procedure(ctx: Ctx, proc: str, args: Args, shown: str = "") -> int:
    """The system procedures a batch can EXEC (RPC-only ones live in ``_engine``)."""
    s = ctx.session
    if proc == "sp_set_session_context":
        key = tk.to_text(_arg(args, "key", 0))
        readonly_key = "\x00readonly:" + key
        if readonly_key in s.context:
            raise SqlError(15664, 16, f"Cannot set key '{key}' in the session context. The key has been set "
                           "as read_only for this session.")
        s.context[key] = _arg(args, "value", 1)
        if _arg(args, "read_only", 2):
            s.context[readonly_key] = True
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
    ctx.reply.done(tk.DONE_COUNT, len(rows))


# --- statements: tables -------------------------------------------------------------------


def parse_create_table(p: Parser) -> Stmt:
    name = p.name()
    p.expect_op("(")
    columns: list[tuple[str, tk.SqlType]] = []
    identity: list[int] = []
    while True:
        if p.at("PRIMARY", "CONSTRAINT", "UNIQUE", "FOREIGN", "CHECK", "INDEX"):
            _skip_definition(p)
        else:
            tok = p.next()
            if tok.kind not in ("word", "qword"):
                raise syntax_error(tok.text)
            columns.append((str(tok.value), parse_type(p)))
            if _skip_definition(p):
                identity.append(len(columns) - 1)
        if not p.accept_op(","):
            break
    p.expect_op(")")

    def run(ctx: Ctx) -> None:
        if not name.split(".")[-1].startswith("#"):
            ctx.session.implicit_begin(ctx.reply)
        ctx.session.create_table(name, list(columns))
        table = ctx.session.find_table(name)
        table.identity = identity[0] if identity else None

    return run


def _skip_definition(p: Parser) -> bool:
    """Skip constraints up to the next ',' or ')' at this depth; True if IDENTITY was seen."""
    depth = 0
    identity = False
    while True:
        tok = p.peek()
        if tok.kind == "eof":
            raise p.error()
        if tok.kind == "op" and tok.text in (",", ")") and depth == 0:
            return identity
        identity = identity or tok.up == "IDENTITY"
        if tok.kind == "op" and tok.text == "(":
            depth += 1
        elif tok.kind == "op" and tok.text == ")":
            depth -= 1
        p.next()


def _row_dict(table: Table, values: list[Value]) -> Row:
    return {name.lower(): value for (name, _), value in zip(table.columns, values, strict=True)}


def parse_insert(p: Parser) -> Stmt:
    p.accept("INTO")
    name = p.name()
    columns: list[str] | None = None
    if p.accept_op("("):
        columns = [p.name()]
        while p.accept_op(","):
            columns.append(p.name())
        p.expect_op(")")
    p.expect("VALUES")
    rows: list[list[Expr]] = []
    while True:
        p.expect_op("(")
        row = [parse_expr(p)]
        while p.accept_op(","):
            row.append(parse_expr(p))
        p.expect_op(")")
        rows.append(row)
        if not p.accept_op(","):
            break

    def run(ctx: Ctx) -> None:
        s = ctx.session
        table = s.find_table(name)
        identity = table.identity
        targets = [table.index(c) for c in columns] if columns is not None else [
            i for i in range(len(table.columns)) if i != identity]
        if not name.split(".")[-1].startswith("#"):
            s.implicit_begin(ctx.reply)
        added: list[list[Value]] = []
        for exprs in rows:
            if len(exprs) != len(targets):
                raise SqlError(110, 15, "There are fewer columns in the INSERT statement than values "
                               "specified in the VALUES clause.")
            values: list[Value] = [None] * len(table.columns)
            for index, expr in zip(targets, exprs, strict=True):
                values[index] = _store(table, index, expr(ctx, None))
            if identity is not None and identity not in targets:
                values[identity] = ctx.identity = table.next_identity
                table.next_identity += 1
            added.append(values)
        table.rows.extend(added)
        s.journal(lambda: _remove_rows(table, added))
        _count(ctx, len(added))

    return run


def _store(table: Table, index: int, value: Value) -> Value:
    column, sql_type = table.columns[index]
    converted = convert(value, sql_type)
    if isinstance(converted, str) and sql_type.kind == "nvarchar" and len(converted) > sql_type.size:
        raise SqlError(2628, 16, f"String or binary data would be truncated in table '{table.name}', "
                       f"column '{column}'. Truncated value: '{converted[:sql_type.size]}'.")
    return converted


def _remove_rows(table: Table, rows: list[list[Value]]) -> None:
    ids = {id(r) for r in rows}
    table.rows[:] = [r for r in table.rows if id(r) not in ids]


def _count(ctx: Ctx, rows: int) -> None:
    ctx.session.rowcount = rows
    nocount = "NOCOUNT" in ctx.session.opts.on
    ctx.reply.done(0 if nocount else tk.DONE_COUNT, rows)


def _where(p: Parser) -> Expr | None:
    return parse_expr(p) if p.accept("WHERE") else None


def _matching(ctx: Ctx, table: Table, where: Expr | None) -> list[list[Value]]:
    return [r for r in table.rows if where is None or where(ctx, _row_dict(table, r)) is True]


def parse_update(p: Parser) -> Stmt:
    name = p.name()
    p.expect("SET")
    assignments: list[tuple[str, Expr]] = []
    while True:
        column = p.name().split(".")[-1]
        p.expect_op("=")
        assignments.append((column, parse_expr(p)))
        if not p.accept_op(","):
            break
    where = _where(p)

    def run(ctx: Ctx) -> None:
        s = ctx.session
        table = s.find_table(name)
        if not name.split(".")[-1].startswith("#"):
            s.implicit_begin(ctx.reply)
        targets = [(table.index(c), e) for c, e in assignments]
        rows = _matching(ctx, table, where)
        for r in rows:
            old = list(r)
            new = [(i, _store(table, i, e(ctx, _row_dict(table, r)))) for i, e in targets]
            for i, v in new:
                r[i] = v
            s.journal(functools.partial(r.__setitem__, slice(None), old))
        _count(ctx, len(rows))

    return run


def parse_delete(p: Parser) -> Stmt:
    p.accept("FROM")
    name = p.name()
    where = _where(p)

    def run(ctx: Ctx) -> None:
        s = ctx.session
        table = s.find_table(name)
        if not name.split(".")[-1].startswith("#"):
            s.implicit_begin(ctx.reply)
        rows = _matching(ctx, table, where)
        _remove_rows(table, rows)
        s.journal(lambda: table.rows.extend(rows))
        _count(ctx, len(rows))

    return run


# --- SELECT ---------------------------------------------------------------------------------


@dataclass
class Item:
    expr: Expr | None  # None: '*'
    alias: str | None


def parse_select(p: Parser) -> Stmt:
    p.accept("ALL", "DISTINCT")
    top: Expr | None = None
    if p.accept("TOP"):
        top = _parse_primary(p)
    items: list[Item] = []
    while True:
        if p.accept_op("*"):
            items.append(Item(None, None))
        else:
            expr = parse_expr(p)
            alias = None
            if p.accept("AS") or p.peek().kind in ("qword", "str") or (
                    p.peek().kind == "word" and p.peek().up not in STATEMENT_WORDS | CLAUSE_WORDS):
                alias = str(p.next().value)
            items.append(Item(expr, alias))
        if not p.accept_op(","):
            break
    source = None
    if p.accept("FROM"):
        source = p.name()
        if p.accept("AS") or (p.peek().kind == "word" and p.peek().up not in STATEMENT_WORDS | CLAUSE_WORDS):
            p.next()
        if p.accept("WITH"):  # table hints: WITH (NOLOCK)
            p.expect_op("(")
            while not p.accept_op(")"):
                p.next()
    where = _where(p)
    order: list[tuple[Expr, bool]] = []
    if p.accept("ORDER"):
        p.expect("BY")
        while True:
            key = parse_expr(p)
            descending = p.accept("DESC")
            if not descending:
                p.accept("ASC")
            order.append((key, descending))
            if not p.accept_op(","):
                break
    if p.accept("OPTION"):
        _skip_parens(p)

    def run(ctx: Ctx) -> None:
        run_select(ctx, items, source, where, order, top)

    return run


def _skip_parens(p: Parser) -> None:
    p.expect_op("(")
    depth = 1
    while depth:
        tok = p.next()
        if tok.kind == "eof":
            raise p.error()
        depth += {"(": 1, ")": -1}.get(tok.text, 0) if tok.kind == "op" else 0


def run_select(ctx: Ctx, items: list[Item], source: str | None, where: Expr | None,
               order: list[tuple[Expr, bool]], top: Expr | None) -> None:
    s = ctx.session
    table: Table | None = None
    if source is not None:
        table = system_view(ctx, source)
        if table is None:
            table = s.find_table(source)
            if not source.split(".")[-1].startswith("#"):
                s.implicit_begin(ctx.reply)
    rows: list[Row | None] = [None]
    if table is not None:
        rows = [_row_dict(table, r) for r in _matching(ctx, table, where)]
    elif where is not None and where(ctx, None) is not True:
        rows = []
    for key, descending in reversed(order):
        rows.sort(key=functools.partial(_row_key, ctx, key), reverse=descending)
    if any(i.expr is not None and i.expr.aggregate for i in items):
        count = len(rows)
        rows = [rows[0] if rows else None]
        items = [Item(_const(count), i.alias) if i.expr is not None and i.expr.aggregate else i
                 for i in items]
    if top is not None:
        rows = rows[: int(top(ctx, None))]  # type: ignore[arg-type]
    columns: list[tuple[str, tk.SqlType | None]] = []
    exprs: list[Expr] = []
    for item in items:
        if item.expr is None:
            if table is None:
                raise SqlError(263, 16, "Must specify table to select from.")
            for col_name, col_type in table.columns:
                columns.append((col_name, col_type))
                exprs.append(_column_getter(col_name.lower()))
            continue
        declared = item.expr.sql_type
        if item.expr.column is not None and table is not None:
            declared = table.columns[table.index(item.expr.column)][1]
        columns.append((item.alias or item.expr.column or "", declared))
        exprs.append(item.expr)
    data = [[e(ctx, r) for e in exprs] for r in rows]
    types = [t or _infer([row[i] for row in data]) for i, (_, t) in enumerate(columns)]
    ctx.reply.add(tk.colmetadata([(n, t) for (n, _), t in zip(columns, types, strict=True)]))
    for values in data:
        ctx.reply.add(tk.row(types, values))
    _count(ctx, len(data))


def _sort_key(value: Value) -> tuple[int, Value]:
    return (0, 0) if value is None else (1, _cmp_key(value))


def _infer(values: list[Value]) -> tk.SqlType:
    known = [v for v in values if v is not None]
    if not known:
        return tk.SqlType("int")
    if any(isinstance(v, str) for v in known):
        return tk.SqlType("nvarchar", max(len(tk.to_text(v)) for v in known))
    if any(isinstance(v, bytes) for v in known):
        return tk.SqlType("varbinary", max(len(v) for v in known if isinstance(v, bytes)))
    if any(isinstance(v, float) for v in known):
        return tk.SqlType("float")
    if all(isinstance(v, bool) for v in known):
        return tk.SqlType("bit")
    ints = [int(v) for v in known if isinstance(v, int)]
    return tk.SqlType("int" if all(-(2**31) <= v < 2**31 for v in ints) else "bigint")


def system_view(ctx: Ctx, source: str) -> Table | None:
    """sys.dm_exec_sessions, sys.dm_exec_connections and sys.databases, built on demand."""
    name = source.lower().split(".")[-1]
    if source.lower().split(".")[-2:-1] != ["sys"]:
        return None
    sessions = ctx.session.host.all_sessions()
    int_t, small, bit, text = tk.SqlType("int"), tk.SqlType("smallint"), tk.SqlType("bit"), tk.SqlType(
        "nvarchar", 128)
    if name == "dm_exec_sessions":
        cols = [("session_id", small), ("login_name", text), ("host_name", text), ("program_name", text),
                ("status", text), ("database_id", small), ("transaction_isolation_level", small),
                ("open_transaction_count", int_t), ("language", text), ("date_first", small),
                ("lock_timeout", int_t), ("text_size", int_t), ("is_user_process", bit)]
        rows = [[x.spid, x.user, x.hostname, x.app, "running" if x is ctx.session else "sleeping",
                 database_id(ctx, x.database), x.isolation, x.trancount, x.opts.language, x.opts.datefirst,
                 x.opts.lock_timeout, x.opts.textsize, True] for x in sessions]
    elif name == "dm_exec_connections":
        cols = [("session_id", int_t), ("client_tcp_port", int_t), ("client_net_address", text),
                ("net_transport", text), ("encrypt_option", text), ("auth_scheme", text),
                ("protocol_type", text), ("protocol_version", int_t)]
        rows = [[x.spid, x.host.client_port, "127.0.0.1", "TCP", "TRUE" if x.host.encrypted else "FALSE",
                 "SQL", "TSQL", tk.TDS74] for x in sessions]
    elif name == "databases":
        cols = [("name", text), ("database_id", int_t), ("state_desc", text)]
        rows = [[db, database_id(ctx, db), "ONLINE"] for db in ctx.session.catalog.databases]
    else:
        raise SqlError(208, 16, f"Invalid object name '{source}'.")
    return Table(name, cols, rows)  # type: ignore[arg-type]


# --- running --------------------------------------------------------------------------------


def parse_batch(sql: str) -> list[Stmt]:
    return Parser(sql).batch()


def run_statements(ctx: Ctx, stmts: list[Stmt]) -> None:
    for stmt in stmts:
        stmt(ctx)
