"""Tables: CREATE TABLE, INSERT, UPDATE, DELETE, SELECT, and the sys views SELECT can read."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from . import _tokens as tk
from ._builtins import database_id
from ._expr import Ctx, Expr, Row, Stmt, cmp_key, const, convert, parse_expr, parse_primary, parse_type
from ._insert_forms import parse_inserted_select, parse_output, parse_values, send_output
from ._lex import CLAUSE_WORDS, STATEMENT_WORDS, TokenStream
from ._packets import Value
from ._session import SqlError, Table, syntax_error


def parse_create_table(p: TokenStream) -> Stmt:
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


def _skip_definition(p: TokenStream) -> bool:
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


def parse_insert(p: TokenStream) -> Stmt:
    p.accept("INTO")
    name = p.name()
    columns: list[str] | None = None
    if p.accept_op("("):
        columns = [p.name()]
        while p.accept_op(","):
            columns.append(p.name())
        p.expect_op(")")
    output = parse_output(p)
    source = parse_inserted_select(p) if p.accept("SELECT") else parse_values(p)

    def run(ctx: Ctx) -> None:
        s = ctx.session
        table = s.find_table(name)
        identity = table.identity
        targets = [table.index(c) for c in columns] if columns is not None else [
            i for i in range(len(table.columns)) if i != identity]
        if identity is not None and identity in targets and s.identity_insert != table.name:
            raise SqlError(544, 16, f"Cannot insert explicit value for identity column in table "
                           f"'{table.name}' when IDENTITY_INSERT is set to OFF.")
        if not name.split(".")[-1].startswith("#"):
            s.implicit_begin(ctx.reply)
        added: list[list[Value]] = []
        for given in source(ctx):
            if len(given) != len(targets):
                raise SqlError(110, 15, "There are fewer columns in the INSERT statement than values "
                               "specified in the VALUES clause.")
            values: list[Value] = [None] * len(table.columns)
            for index, value in zip(targets, given, strict=True):
                values[index] = _store(table, index, value)
            if identity is not None and identity not in targets:
                values[identity] = ctx.identity = table.next_identity
                table.next_identity += 1
            elif identity is not None and isinstance(explicit := values[identity], int):
                # SET IDENTITY_INSERT ON: "If the value inserted is larger than the current
                # identity value for the table, SQL Server automatically uses the new inserted
                # value as the current identity value" (SET IDENTITY_INSERT's documentation)
                table.next_identity = max(table.next_identity, explicit + 1)
            added.append(values)
        table.rows.extend(added)
        s.journal(lambda: _remove_rows(table, added))
        if output is not None:
            send_output(ctx, table, output, added)
        _count(ctx, len(added), tk.CMD_INSERT)

    return run


def _store(table: Table, index: int, value: Value) -> Value:
    column, sql_type = table.columns[index]
    converted = convert(value, sql_type)
    if isinstance(converted, str) and sql_type.kind == "nvarchar" and 0 <= sql_type.size < len(converted):
        raise SqlError(2628, 16, f"String or binary data would be truncated in table '{table.name}', "
                       f"column '{column}'. Truncated value: '{converted[:sql_type.size]}'.")
    return converted


def _remove_rows(table: Table, rows: list[list[Value]]) -> None:
    ids = {id(r) for r in rows}
    table.rows[:] = [r for r in table.rows if id(r) not in ids]


def _count(ctx: Ctx, rows: int, curcmd: int) -> None:
    ctx.session.rowcount = rows
    nocount = "NOCOUNT" in ctx.session.opts.on
    ctx.reply.done(0 if nocount else tk.DONE_COUNT, rows, curcmd=curcmd)


def _where(p: TokenStream) -> Expr | None:
    return parse_expr(p) if p.accept("WHERE") else None


def _matching(ctx: Ctx, table: Table, where: Expr | None) -> list[list[Value]]:
    return [r for r in table.rows if where is None or where(ctx, _row_dict(table, r)) is True]


def parse_update(p: TokenStream) -> Stmt:
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
        _count(ctx, len(rows), tk.CMD_UPDATE)

    return run


def parse_delete(p: TokenStream) -> Stmt:
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
        _count(ctx, len(rows), tk.CMD_DELETE)

    return run


# --- SELECT ---------------------------------------------------------------------------------


@dataclass
class Item:
    expr: Expr | None  # None: '*'
    alias: str | None


def parse_select(p: TokenStream) -> Stmt:
    p.accept("ALL", "DISTINCT")
    top: Expr | None = None
    if p.accept("TOP"):
        top = parse_primary(p)
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
    joins: list[Join] = []
    if p.accept("FROM"):
        source = p.name()
        if source.split(".")[-1].lower() in TABLE_FUNCTIONS and p.at_op("("):
            _skip_parens(p)  # its arguments: the function's rows do not depend on them here
            source = "sys." + source.split(".")[-1].lower()
        _alias(p)
        if p.accept("WITH"):  # table hints: WITH (NOLOCK)
            p.expect_op("(")
            while not p.accept_op(")"):
                p.next()
        while p.accept("JOIN") or (p.accept("INNER") and p.expect("JOIN")):
            other = p.name()
            alias = _alias(p)
            p.expect("ON")
            joins.append(Join(other, alias, parse_expr(p)))
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
        run_select(ctx, items, source, where, order, top, joins)

    return run


@dataclass
class Join:
    """``[INNER] JOIN source [alias] ON condition`` (SQLAlchemy's dialect joins sys.objects
    to sys.schemas to tell whether a table exists)."""

    source: str
    alias: str | None
    on: Expr


def _alias(p: TokenStream) -> str | None:
    if p.accept("AS") or (p.peek().kind == "word" and p.peek().up not in STATEMENT_WORDS | CLAUSE_WORDS):
        return str(p.next().value)
    return None


def _qualified(names: tuple[str | None, ...], table: Table, values: list[Value]) -> Row:
    """A joined row: each column under its bare name (the first table's wins) and under
    each name of its table."""
    row: dict[str, Value] = {}
    for (column, _), value in zip(table.columns, values, strict=True):
        for name in names:
            if name:
                row[f"{name.lower()}.{column.lower()}"] = value
    return row


def _joined(ctx: Ctx, source: str, table: Table, joins: list[Join]) -> tuple[Table, list[Row]]:
    """The nested-loop join of ``table`` with each of ``joins``: the combined columns, and the
    rows whose ON conditions hold."""
    columns = list(table.columns)
    rows: list[Row] = [{**_row_dict(table, r), **_qualified((source.split(".")[-1],), table, r)}
                       for r in table.rows]
    for join in joins:
        other = system_view(ctx, join.source) or ctx.session.find_table(join.source)
        columns += other.columns
        names = (join.source.split(".")[-1], join.alias)
        combined = [{**_row_dict(other, values), **left, **_qualified(names, other, values)}
                    for left in rows for values in other.rows]
        rows = [r for r in combined if join.on(ctx, r) is True]
    return Table(table.name, columns), rows


def _skip_parens(p: TokenStream) -> None:
    p.expect_op("(")
    depth = 1
    while depth:
        tok = p.next()
        if tok.kind == "eof":
            raise p.error()
        depth += {"(": 1, ")": -1}.get(tok.text, 0) if tok.kind == "op" else 0


def run_select(ctx: Ctx, items: list[Item], source: str | None, where: Expr | None,
               order: list[tuple[Expr, bool]], top: Expr | None, joins: list[Join] | None = None) -> None:
    s = ctx.session
    s.note_read()
    table: Table | None = None
    if source is not None:
        table = system_view(ctx, source)
        if table is None:
            table = s.find_table(source)
            if not source.split(".")[-1].startswith("#"):
                s.implicit_begin(ctx.reply)
    rows: list[Row | None] = [None]
    if table is not None and source is not None and joins:
        table, joined = _joined(ctx, source, table, joins)
        rows = [r for r in joined if where is None or where(ctx, r) is True]
    elif table is not None:
        rows = [_row_dict(table, r) for r in _matching(ctx, table, where)]
    elif where is not None and where(ctx, None) is not True:
        rows = []
    for key, descending in reversed(order):
        rows.sort(key=functools.partial(_row_key, ctx, key), reverse=descending)
    if any(i.expr is not None and i.expr.aggregate for i in items):
        count = len(rows)
        rows = [rows[0] if rows else None]
        items = [Item(const(count), i.alias) if i.expr is not None and i.expr.aggregate else i
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
    _count(ctx, len(data), tk.CMD_SELECT)


def _column_getter(name: str) -> Expr:
    return Expr(lambda c, r: r[name] if r else None)


def _row_key(ctx: Ctx, key: Expr, row: Row | None) -> tuple[int, Value]:
    return _sort_key(key(ctx, row))


def _sort_key(value: Value) -> tuple[int, Value]:
    return (0, 0) if value is None else (1, cmp_key(value))


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


TABLE_FUNCTIONS = ("fn_listextendedproperty",)  # FROM fn(...): rows built as a sys view's
SYSTEM_VIEWS = ("dm_exec_sessions", "dm_exec_connections", "databases", "system_views", "objects", "schemas")


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
    elif name == "objects":
        # the user tables of the session's database, in schema dbo (SQLAlchemy's has_table())
        cols = [("name", text), ("object_id", int_t), ("schema_id", int_t), ("type", text),
                ("type_desc", text)]
        db = ctx.session.database.lower()
        dbo = ctx.session.personality.dbo_schema_id
        rows = [[t.name, abs(hash((db, key))) % 2**30, dbo, "U", "USER_TABLE"]
                for (owner, key), t in ctx.session.catalog.tables.items() if owner == db]
    elif name == "schemas":
        # the schemas every database has, with SQL Server's ids (sys.schemas' documentation)
        cols = [("name", text), ("schema_id", int_t), ("principal_id", int_t)]
        dbo = ctx.session.personality.dbo_schema_id
        rows = [["dbo", dbo, 1], ["guest", 2, 2], ["INFORMATION_SCHEMA", 3, 3], ["sys", 4, 4]]
    elif name == "fn_listextendedproperty":
        # no extended properties: an empty set, as from a server where none were added (Microsoft's
        # sys.fn_listextendedproperty page); SQLAlchemy's dialect calls it at connect to learn
        # whether comments are supported
        cols = [("objtype", text), ("objname", text), ("name", text), ("value", text)]
        rows = []
    elif name == "system_views":
        # The sys views this server has (SQLAlchemy looks for dm_exec_sessions here before it
        # reads the isolation level). Babelfish has sys.system_views too: not checked here.
        cols = [("name", text), ("object_id", int_t), ("schema_id", int_t), ("type", text)]
        rows = [[view, -(400 + i), 4, "V"] for i, view in enumerate(SYSTEM_VIEWS)]
    elif name == "databases":
        cols = [("name", text), ("database_id", int_t), ("state_desc", text)]
        rows = [[db, database_id(ctx, db), "ONLINE"] for db in ctx.session.catalog.databases]
    else:
        raise SqlError(208, 16, f"Invalid object name '{source}'.")
    return Table(name, cols, rows)  # type: ignore[arg-type]
