"""What a statement does to a session: the words the dialects read SQL into (a ``Reading``
of each text), and the session's log (``tether.session``) folds into what a reconnect
replays or cannot.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Op(enum.Enum):
    PLAIN = "plain"  # no session effect; reads or writes data (not replayable in a transaction)
    TX_LOCAL = "tx-local"  # transaction-scoped and replayable: SET LOCAL, SET TRANSACTION, SHOW
    REPLAY = "replay"  # session state rebuilt by running the statement again; ``key`` names it
    FORGET = "forget"  # drops replayable state: ``key`` exactly, or a family ending in ":"
    LOST = "lost"  # state no replay can rebuild; ``key`` names what would drop it
    FOUND = "found"  # drops lost state (DROP TABLE, CLOSE, unlock): ``key`` or a family
    DISCARD = "discard"  # the session is as new (DISCARD ALL): nothing to replay, nothing lost
    BEGIN = "begin"
    COMMIT = "commit"
    ROLLBACK = "rollback"
    UNDO_TO = "undo-to"  # ROLLBACK TO SAVEPOINT: which pending effects survive is not tracked


@dataclass(frozen=True, slots=True)
class Effect:
    op: Op
    key: str = ""
    text: str = ""  # the statement, for REPLAY / TX_LOCAL / BEGIN
    reason: str = ""  # for LOST: what a user reads in SessionLost
    at_once: bool = False  # takes effect even inside a transaction that rolls back (PREPARE)

    @property
    def touches_session(self) -> bool:
        return self.op in _SESSION_OPS


_SESSION_OPS = frozenset({Op.REPLAY, Op.FORGET, Op.LOST, Op.FOUND, Op.DISCARD})
PLAIN = (Effect(Op.PLAIN),)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """One text read once, for both of the session's questions: what a recovered session
    replays or cannot (``effects``; ``PLAIN`` itself when nothing), and why the pool must
    reset the session on return (``changes``, one reason each; empty when nothing)."""

    effects: tuple[Effect, ...]
    changes: tuple[str, ...]

Replay = tuple[str, Any]  # a statement and its parameters (None for none)
