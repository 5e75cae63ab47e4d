"""The words every room of tether shares, so that none imports another's to speak:

- ``TxStatus``: a connection's transaction status (drivers report it; pool and session act);
- ``Effect``/``Op``/``Reading``: what a statement does to a session (dialects read it, the
  session log folds it);
- ``Fault``/``Classification``: what kind of failure an error is (dialects classify, the
  retry engine and the pool decide);
- the SQL scanner, which reads SQL text without being fooled by comments and literals;
- ``_drivers``: the table of the driver packages tether knows (the connection-string
  parser, the driver loader and the classifier read it).

It imports nothing of tether's but its errors.
"""

from __future__ import annotations

from ._effects import PLAIN, Effect, Op, Reading, Replay
from ._faults import Classification, Fault
from ._scan import QUOTED, Unscannable, statement_texts, statements, tokens
from ._status import TxStatus

__all__ = [
    "PLAIN",
    "QUOTED",
    "Classification",
    "Effect",
    "Fault",
    "Op",
    "Reading",
    "Replay",
    "TxStatus",
    "Unscannable",
    "statement_texts",
    "statements",
    "tokens",
]
