"""Expressions: the execution context, values and their comparison/conversion, and the
expression parser (precedence climbing over OR/AND/NOT/comparisons/+-/*%, then primaries)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from . import _tokens as tk
from ._builtins import call_function, global_variable
from ._lex import CLAUSE_WORDS, STATEMENT_WORDS, TokenStream
from ._packets import Value
from ._session import Reply, Session, SqlError, syntax_error


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


def const(value: Value) -> Expr:
    return Expr(lambda ctx, row: value)


def cmp_key(value: Value) -> Value:
    # The default collation is case-insensitive and ignores trailing spaces.
    return value.rstrip().lower() if isinstance(value, str) else value


def _coerce_pair(a: Value, b: Value) -> tuple[Value, Value]:
    if isinstance(a, str) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return _to_number(a), b
    if isinstance(b, str) and isinstance(a, (int, float)) and not isinstance(a, bool):
        return a, _to_number(b)
    return cmp_key(a), cmp_key(b)


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



Stmt = Callable[[Ctx], None]


# --- expressions ------------------------------------------------------------------------


def parse_expr(p: TokenStream) -> Expr:
    return _parse_or(p)


def _parse_or(p: TokenStream) -> Expr:
    left = _parse_and(p)
    while p.accept("OR"):
        right = _parse_and(p)
        left = _binary(_or, left, right)
    return left


def _binary(fn: Callable[[Value, Value], Value], left: Expr, right: Expr) -> Expr:
    return Expr(lambda c, r: fn(left(c, r), right(c, r)))


def _or(a: Value, b: Value) -> Value:
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def _parse_and(p: TokenStream) -> Expr:
    left = _parse_not(p)
    while p.accept("AND"):
        right = _parse_not(p)
        left = _binary(_and, left, right)
    return left


def _and(a: Value, b: Value) -> Value:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _parse_not(p: TokenStream) -> Expr:
    if p.accept("NOT"):
        inner = _parse_not(p)
        return Expr(lambda c, r: None if (v := inner(c, r)) is None else not v)
    if p.accept("EXISTS"):
        raise p.error()
    return _parse_comparison(p)


def _parse_comparison(p: TokenStream) -> Expr:
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


def _parse_additive(p: TokenStream) -> Expr:
    left = _parse_term(p)
    while p.at_op("+", "-"):
        op = p.next().text
        right = _parse_term(p)
        left = _binary(functools.partial(_arith, op), left, right)
    return left


def _parse_term(p: TokenStream) -> Expr:
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


def _parse_unary(p: TokenStream) -> Expr:
    if p.accept_op("-"):
        inner = _parse_unary(p)
        return Expr(lambda c, r: None if (v := inner(c, r)) is None else -v)  # type: ignore[operator]
    if p.accept_op("+"):
        return _parse_unary(p)
    return parse_primary(p)


def parse_primary(p: TokenStream) -> Expr:
    tok = p.peek()
    if tok.kind in ("num", "str", "bin"):
        p.next()
        return const(tok.value)
    if tok.up == "NULL":
        p.next()
        return const(None)
    if tok.kind == "gvar":
        p.next()
        name = tok.text[2:].upper()
        return Expr(lambda c, r: global_variable(name, c))
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
    if tok.up == "CASE":
        p.next()
        return _parse_case(p)
    if tok.up in ("CURRENT_TIMESTAMP", "CURRENT_USER", "SESSION_USER", "SYSTEM_USER"):
        p.next()
        fname = {"CURRENT_TIMESTAMP": "GETDATE", "SYSTEM_USER": "SUSER_SNAME"}.get(tok.up, "USER_NAME")
        return Expr(lambda c, r: call_function(fname, [], c))
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
        # SYSDATETIME() is datetime2(7) (mssql-django checks that the driver reads it as one)
        typed = tk.SqlType("datetime2") if fname == "SYSDATETIME" else None
        return Expr(lambda c, r: call_function(fname, [a(c, r) for a in args], c), sql_type=typed)
    if tok.kind in ("word", "qword") and tok.up not in STATEMENT_WORDS | CLAUSE_WORDS:
        parts = p.name().split(".")
        column = parts[-1]
        # sys.objects.name: in a join, the row has the column under its table's name too
        qualified = f"{parts[-2]}.{column}".lower() if len(parts) > 1 else None

        def column_value(c: Ctx, r: Row | None) -> Value:
            if r is not None and qualified is not None and qualified in r:
                return r[qualified]
            if r is None or column.lower() not in r:
                raise SqlError(207, 16, f"Invalid column name '{column}'.")
            return r[column.lower()]

        return Expr(column_value, column=column)
    raise p.error()


def _parse_case(p: TokenStream) -> Expr:
    """``CASE [input] WHEN ... THEN ... [ELSE ...] END``, simple or searched; no ELSE is NULL
    (SQLAlchemy's dialect reads sys.dm_exec_sessions' isolation level through one)."""
    subject = None if p.at("WHEN") else parse_expr(p)
    arms: list[tuple[Expr, Expr]] = []
    while p.accept("WHEN"):
        test = parse_expr(p)
        p.expect("THEN")
        arms.append((test, parse_expr(p)))
    if not arms:
        raise p.error()
    otherwise = parse_expr(p) if p.accept("ELSE") else const(None)
    p.expect("END")

    def case(c: Ctx, r: Row | None) -> Value:
        value = subject(c, r) if subject is not None else None
        for test, result in arms:
            hit = test(c, r) if subject is None else compare("=", value, test(c, r))
            if hit is True:
                return result(c, r)
        return otherwise(c, r)

    return Expr(case)


def _parse_cast(p: TokenStream) -> Expr:
    fname = p.next().up
    p.expect_op("(")
    if fname.endswith("CONVERT"):
        sql_type = parse_type(p, cast=True)
        p.expect_op(",")
        inner = parse_expr(p)
        if p.accept_op(","):
            parse_expr(p)  # style
    else:
        inner = parse_expr(p)
        p.expect("AS")
        sql_type = parse_type(p, cast=True)
    p.expect_op(")")
    return Expr(lambda c, r: _fit(convert(inner(c, r), sql_type), sql_type), sql_type=sql_type)


def _fit(value: Value, sql_type: tk.SqlType) -> Value:
    """CAST/CONVERT to a shorter string truncates, without an error (unlike an INSERT)."""
    if isinstance(value, str) and sql_type.kind == "nvarchar" and 0 < sql_type.size < len(value):
        return value[: sql_type.size]
    return value


TYPE_KINDS = {
    "INT": "int", "INTEGER": "int", "BIGINT": "bigint", "SMALLINT": "smallint", "TINYINT": "tinyint",
    "BIT": "bit", "FLOAT": "float", "REAL": "float", "DECIMAL": "float", "NUMERIC": "float",
    "MONEY": "float", "SMALLMONEY": "float", "VARBINARY": "varbinary", "BINARY": "varbinary",
    "IMAGE": "varbinary", "ROWVERSION": "varbinary", "TIMESTAMP": "varbinary",
}


def parse_type(p: TokenStream, *, cast: bool = False) -> tk.SqlType:
    """A type name. A character type without a length is 1 long in a declaration, 30 in
    CAST/CONVERT (learn.microsoft.com/sql/t-sql/data-types/char-and-varchar-transact-sql:
    "When n isn't specified when using the CAST and CONVERT functions, the default length
    is 30"); SQLAlchemy's pyodbc dialect reads the version as CAST(... AS VARCHAR)."""
    tok = p.next()
    if tok.kind not in ("word", "qword"):
        raise syntax_error(tok.text)
    name = str(tok.value).upper()
    size = tk.MAX if name in ("TEXT", "NTEXT", "XML", "SQL_VARIANT", "IMAGE") else 128
    sized = False
    if p.accept_op("("):
        sized = True
        size_tok = p.next()
        if size_tok.up == "MAX":
            size = tk.MAX
        elif size_tok.kind == "num":
            size = int(size_tok.value)  # type: ignore[arg-type]
        else:
            raise syntax_error(size_tok.text)
        if p.accept_op(","):
            p.next()
        p.expect_op(")")
    kind = TYPE_KINDS.get(name, "nvarchar")
    if name in ("CHAR", "NCHAR", "VARCHAR", "NVARCHAR") and not sized:
        size = 30 if cast else 1
    return tk.SqlType(kind, size if kind in ("nvarchar", "varbinary") else 0)


def parse_delay(text: str) -> float:
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,3}))?)?\s*", text)
    if m is None:
        raise SqlError(148, 15, "Incorrect time syntax in time string used with WAITFOR.")
    hours, minutes, seconds, millis = m.groups()
    fraction = int((millis or "0").ljust(3, "0")) / 1000
    return int(hours) * 3600 + int(minutes) * 60 + int(seconds or 0) + fraction
