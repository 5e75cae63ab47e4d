"""The words every room of tether shares, so none imports another's: a connection's
transaction status (drivers report it), what a statement does to a session (dialects
read it, the session log folds it), and the scanner that reads SQL text without being
fooled by its comments and literals.
"""

from __future__ import annotations

from ._effects import PLAIN, Effect, Op, Reading, Replay
from ._scan import QUOTED, Unscannable, statement_texts, statements, tokens
from ._status import TxStatus

__all__ = [
    "PLAIN",
    "QUOTED",
    "Effect",
    "Op",
    "Reading",
    "Replay",
    "TxStatus",
    "Unscannable",
    "statement_texts",
    "statements",
    "tokens",
]
