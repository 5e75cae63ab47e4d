"""What a session carries, statement by statement: what a reconnect can replay, what it cannot.

A dialect reads each statement into one or more ``Effect`` values (no I/O, cached); a
``SessionLog`` folds them, with the driver's transaction status before and after the
statement, into two things: the statements that rebuild the session on a new connection
(``SET``, ``PREPARE``, ``LISTEN`` ...) and the reasons it cannot be rebuilt (a temporary
table, a session lock, an open transaction that did more than set things).

Effects inside a transaction wait in ``pending`` until it ends: a ``SET`` that is rolled
back never happened. Some are not transactional (PostgreSQL's PREPARE, a session advisory
lock): ``at_once`` applies them straight away. An open transaction that so far ran only replayable statements
(``BEGIN; SET LOCAL ...``: no snapshot taken, nothing read or written) can itself be
replayed; anything else in it makes it unrecoverable while it is open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..vocab import Effect, Op, Replay, TxStatus

_IN_TX = (TxStatus.IN_TRANSACTION, TxStatus.IN_ERROR)
MAX_REPLAY = 256  # statements kept for replay; past this the session counts as unrecoverable


class SessionLog:
    """The replayable and the unrecoverable state of one session, kept as it runs."""

    __slots__ = ("_exact", "_lost", "_pending", "_replay", "_serial", "_tx_texts", "tx_open", "tx_pure")

    def __init__(self, exact_status: bool = True) -> None:
        # False for drivers that cannot see an SQL-level BEGIN TRAN in autocommit mode
        # (ODBC, DB-Library): then only the statements end a transaction the log saw begin.
        self._exact = exact_status
        self._replay: dict[str, Replay] = {}  # insertion order is replay order
        self._lost: dict[str, str] = {}
        self._serial = 0
        self.tx_open = False
        self.tx_pure = True
        self._pending: list[tuple[Effect, Any]] = []
        self._tx_texts: list[Replay] = []

    # -- recording -------------------------------------------------------------------------

    def record(
        self,
        effects: tuple[Effect, ...],
        params: Any,
        before: TxStatus,
        after: TxStatus,
        autocommit: Callable[[], bool | None],
    ) -> None:
        """Fold in a statement that succeeded: its effects, between two driver statuses."""
        if params is not None and len(effects) > 1:
            effects = _split_parameters(effects)
            params = None
        if self.tx_open and before not in _IN_TX and self._exact:
            self.end_unseen()  # the transaction ended where tether could not see it
        in_tx = before in _IN_TX or self.tx_open
        if in_tx and not self.tx_open:  # begun where tether could not see (psycopg's transaction())
            self._begin("")
            self.tx_pure = False
        failed = before is TxStatus.IN_ERROR
        if not in_tx:
            explicit = next((e.op for e in effects if e.op in (Op.BEGIN, Op.COMMIT, Op.ROLLBACK)), None)
            if explicit is None and after in _IN_TX:
                in_tx = True  # the driver began a transaction before the statement
            elif explicit in (Op.COMMIT, Op.ROLLBACK):
                implicit = autocommit()  # only here: "SET x; ROLLBACK" means two things
                if implicit is None:
                    self._lose("", "transaction boundary that could not be read")
                in_tx = implicit is False
            if in_tx:
                self._begin("")
        for effect in effects:
            op = effect.op
            if op is Op.BEGIN:
                if not in_tx:
                    self._begin(effect.text)
                    in_tx = True
            elif op is Op.COMMIT or op is Op.ROLLBACK:
                if in_tx:
                    self.end(commit=op is Op.COMMIT and not failed)
                    in_tx = failed = False
            elif not in_tx:
                self._apply(effect, params)
            else:
                self._in_transaction(effect, params)
        if in_tx and after not in _IN_TX and self._exact:
            self.end_unseen()
        elif not in_tx and after in _IN_TX:
            self._begin("")
            self.tx_pure = False  # a transaction tether did not see begin

    def plain(self, after: TxStatus) -> None:
        """The fast path: a statement with no session effect (most of them)."""
        if after in _IN_TX:
            if not self.tx_open:
                self._begin("")
            self.tx_pure = False
        elif self.tx_open:
            if self._exact:
                self.end_unseen()
            else:
                self.tx_pure = False  # still open as far as the log knows, and it did work

    def failed(self, after: TxStatus) -> None:
        """A statement failed: what it did is not known. The transaction it ran in (one
        the log saw open, or one the driver still reports) can no longer be replayed."""
        if after in _IN_TX or (after is TxStatus.BROKEN and self.tx_open):
            if not self.tx_open:
                self._begin("")
            self.tx_pure = False

    def end(self, *, commit: bool) -> None:
        """The open transaction ended (``conn.commit()``/``rollback()`` or SQL)."""
        if commit:
            for effect, params in self._pending:
                self._apply(effect, params)
        self._pending.clear()
        self._tx_texts.clear()
        self.tx_open = False
        self.tx_pure = True

    def end_unseen(self) -> None:
        """The transaction ended without tether seeing how: its session effects are unknown."""
        if any(effect.touches_session for effect, _ in self._pending):
            self._lose("", "session changes in a transaction that ended out of tether's sight")
        self.end(commit=False)

    def lose(self, key: str, reason: str) -> None:
        """Mark state no replay can rebuild (a server-side cursor the proxy opened)."""
        self._lose(key, reason)

    def find(self, key: str) -> None:
        self._lost.pop(key, None)

    # -- reading -----------------------------------------------------------------------------

    def unrecoverable(self, status: TxStatus) -> tuple[str, ...]:
        """Why the session cannot be rebuilt, given the driver's status at the break."""
        reasons = list(dict.fromkeys(self._lost.values()))
        if status is TxStatus.ACTIVE:
            reasons.append("a statement was running or its results were unread")
        elif status is TxStatus.IN_ERROR:
            reasons.append("failed transaction (it must be rolled back)")
        elif (status is TxStatus.IN_TRANSACTION or self.tx_open) and not (self.tx_open and self.tx_pure):
            reasons.append("open transaction")
        return tuple(reasons)

    def session_replay(self) -> list[Replay]:
        return list(self._replay.values())

    def transaction_replay(self, status: TxStatus) -> list[Replay]:
        """The open transaction's statements (an empty list when none is open)."""
        open_now = status is TxStatus.IN_TRANSACTION or (self.tx_open and not self._exact)
        return list(self._tx_texts) if open_now else []

    def describe(self) -> str:
        families: dict[str, int] = {}
        for key in self._replay:
            family = key.split(":", 1)[0]
            families[family] = families.get(family, 0) + 1
        return ", ".join(f"{n} {family}" for family, n in families.items()) or "nothing"

    # -- internals ---------------------------------------------------------------------------

    def _begin(self, text: str) -> None:
        self.tx_open = True
        self.tx_pure = True
        self._pending.clear()
        self._tx_texts[:] = [(text, None)] if text else []

    def _in_transaction(self, effect: Effect, params: Any) -> None:
        op = effect.op
        if effect.at_once:  # not transactional: a ROLLBACK does not undo it
            self._apply(effect, params)
            if op is Op.LOST:
                self.tx_pure = False
            return
        if op is Op.PLAIN or op is Op.LOST or op is Op.FOUND or op is Op.DISCARD:
            self.tx_pure = False
        elif op is Op.UNDO_TO:
            self.tx_pure = False
            if self._pending:  # which of them the savepoint undid is not tracked
                undone = Effect(Op.LOST, "", reason="session changes undone to a savepoint")
                self._pending.append((undone, None))
            return
        elif effect.text:  # REPLAY, FORGET, TX_LOCAL: replayable inside the transaction too
            self._tx_texts.append((effect.text, params))
        else:
            self.tx_pure = False  # nothing to replay it with
        if effect.touches_session:
            self._pending.append((effect, params))

    def _apply(self, effect: Effect, params: Any) -> None:
        op, key = effect.op, effect.key
        if op is Op.REPLAY:
            if key.endswith("#"):  # no name to supersede by: keep every one, in order
                self._serial += 1
                key = f"{key}{self._serial}"
            self._replay.pop(key, None)  # re-inserted last: the latest value wins on replay
            self._replay[key] = (effect.text, params)
            if len(self._replay) > MAX_REPLAY:
                self._lose("", f"more than {MAX_REPLAY} session statements to replay")
        elif op is Op.FORGET:
            _drop(self._replay, key)
        elif op is Op.LOST:
            self._lose(key, effect.reason)
        elif op is Op.FOUND:
            _drop(self._lost, key)
        elif op is Op.DISCARD:
            self._replay.clear()
            self._lost.clear()
        elif op is Op.UNDO_TO:
            pass  # outside a transaction ROLLBACK TO fails: nothing changed

    def _lose(self, key: str, reason: str) -> None:
        if not key or key.endswith("#"):
            self._serial += 1
            key = f"{key}{self._serial}"
        self._lost[key] = reason


def _split_parameters(effects: tuple[Effect, ...]) -> tuple[Effect, ...]:
    """A batch with parameters (``SET NOCOUNT ON; INSERT ... VALUES (?)``): which statement
    the parameters belong to is the driver's business, so a replayable statement is kept
    without them when it has no placeholder, and counts as lost when it has one."""
    out = []
    for effect in effects:
        if effect.op in (Op.REPLAY, Op.TX_LOCAL) and _has_placeholder(effect.text):
            reason = "session statement with parameters in a batch"
            effect = Effect(Op.LOST, reason=reason, at_once=effect.at_once)
        out.append(effect)
    return tuple(out)


def _has_placeholder(text: str) -> bool:
    # qmark (?), format and pyformat (%s, %(name)s), numeric ($1, :1) and named (:name) styles
    return "?" in text or "%" in text or "$" in text or ":" in text


def _drop(entries: dict[str, Any], key: str) -> None:
    if key.endswith(":") or not key:
        for name in [name for name in entries if name.startswith(key)]:
            del entries[name]
    else:
        entries.pop(key, None)
