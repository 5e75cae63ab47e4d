"""INSERT's other forms, as an ORM sends them: ``OUTPUT inserted.<column>`` (SQLAlchemy's
RETURNING and server-generated keys) and the rows of ``VALUES`` or of SQLAlchemy's
"insertmanyvalues" ``SELECT ... FROM (VALUES ...) AS alias(...) ORDER BY``."""

from __future__ import annotations

import functools
from collections.abc import Callable

from . import _tokens as tk
from ._expr import Ctx, Expr, Row, cmp_key, parse_expr
from ._lex import TokenStream
from ._packets import Value
from ._session import Table, syntax_error

Rows = Callable[[Ctx], list[list[Value]]]


def _parse_row(p: TokenStream) -> list[Expr]:
    p.expect_op("(")
    row = [parse_expr(p)]
    while p.accept_op(","):
        row.append(parse_expr(p))
    p.expect_op(")")
    return row


def parse_values(p: TokenStream) -> Rows:
    p.expect("VALUES")
    rows = [_parse_row(p)]
    while p.accept_op(","):
        rows.append(_parse_row(p))
    return lambda ctx: [[e(ctx, None) for e in row] for row in rows]


def parse_inserted_select(p: TokenStream) -> Rows:
    """``INSERT ... SELECT p0, p1 FROM (VALUES (...), ...) AS alias(p0, p1, n) ORDER BY n``:
    the one INSERT ... SELECT form the test server knows, SQLAlchemy's "insertmanyvalues"
    batch. SQL Server assigns IDENTITY values in the ORDER BY's order
    (learn.microsoft.com/sql/t-sql/statements/insert-transact-sql: "INSERT queries that use
    SELECT with ORDER BY to populate rows guarantees how identity values are computed")."""
    picked = [parse_expr(p)]
    while p.accept_op(","):
        picked.append(parse_expr(p))
    p.expect("FROM")
    p.expect_op("(")
    values = parse_values(p)
    p.expect_op(")")
    p.accept("AS")
    p.name()
    p.expect_op("(")
    names = [p.name().lower()]
    while p.accept_op(","):
        names.append(p.name().lower())
    p.expect_op(")")
    order: list[Expr] = []
    if p.accept("ORDER"):
        p.expect("BY")
        order.append(parse_expr(p))
        while p.accept_op(","):
            order.append(parse_expr(p))

    def rows(ctx: Ctx) -> list[list[Value]]:
        found: list[Row | None] = [dict(zip(names, row, strict=True)) for row in values(ctx)]
        for key in reversed(order):
            found.sort(key=functools.partial(_order_key, ctx, key))
        return [[e(ctx, r) for e in picked] for r in found]

    return rows


def parse_output(p: TokenStream) -> list[tuple[str | None, str]] | None:
    """``OUTPUT inserted.col [AS alias], ...`` (``inserted.*``: None), as SQLAlchemy's
    dialect sends for RETURNING and server-generated keys: the inserted rows come back as a
    result set (learn.microsoft.com/sql/t-sql/queries/output-clause-transact-sql)."""
    if not p.accept("OUTPUT"):
        return None
    items: list[tuple[str | None, str]] = []
    while True:
        name = p.name()
        prefix, _, column = name.rpartition(".")
        if prefix.lower() != "inserted":
            raise syntax_error(name)
        if not column and p.accept_op("*"):
            items.append((None, "*"))
        else:
            alias = str(p.next().value) if p.accept("AS") else column
            items.append((column, alias))
        if not p.accept_op(","):
            return items


def send_output(ctx: Ctx, table: Table, output: list[tuple[str | None, str]],
                 rows: list[list[Value]]) -> None:
    picked: list[tuple[int, str]] = []
    for column, alias in output:
        if column is None:
            picked += [(i, name) for i, (name, _) in enumerate(table.columns)]
        else:
            picked.append((table.index(column), alias))
    types = [table.columns[i][1] for i, _ in picked]
    ctx.reply.add(tk.colmetadata([(alias, t) for (_, alias), t in zip(picked, types, strict=True)]))
    for values in rows:
        ctx.reply.add(tk.row(types, [values[i] for i, _ in picked]))


def _order_key(ctx: Ctx, key: Expr, row: Row | None) -> tuple[int, Value]:
    value = key(ctx, row)
    return (0, 0) if value is None else (1, cmp_key(value))
