"""T-SQL tokens, and the token stream the statement and expression parsers read from."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._packets import Value
from ._session import SqlError, syntax_error


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


# Words that start a statement (a name cannot end at them) and clause words (nor at these).
STATEMENT_WORDS = frozenset({
    "SELECT", "INSERT", "UPDATE", "DELETE", "SET", "USE", "BEGIN", "COMMIT", "ROLLBACK", "SAVE", "IF",
    "ELSE", "END", "CREATE", "DROP", "EXEC", "EXECUTE", "WAITFOR", "KILL", "PRINT", "RAISERROR", "THROW",
    "DECLARE", "TRUNCATE", "WHILE", "RETURN", "GO", "WITH",
})
CLAUSE_WORDS = frozenset({"FROM", "WHERE", "ORDER", "GROUP", "HAVING", "UNION", "INTO", "AS", "ON", "OFF",
                          "AND", "OR", "NOT", "IS", "NULL", "VALUES", "OPTION", "WHEN", "THEN", "OUTPUT",
                          "JOIN", "INNER"})



class TokenStream:
    """A batch's tokens with the look-ahead helpers the parsers share."""

    def __init__(self, toks: list[Tok]) -> None:
        self.toks = toks
        self.pos = 0

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
