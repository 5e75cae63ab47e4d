"""Help text for the command-line tools, from docstrings (a leaf: every CLI imports it)."""

from __future__ import annotations

import re

_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)


def plain_help(text: str) -> str:
    """A docstring as help text: reST's ``literal`` markup dropped, the blank lines trimmed."""
    return _LITERAL.sub(r"\1", text).strip()
