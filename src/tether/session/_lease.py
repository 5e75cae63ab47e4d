"""A physical connection as the session sees it, and what the current borrow did to it.

One ``Lease`` lives as long as its connection. Each borrow begins when a proxy is made
for it, which gives the borrow a number (``epoch``) and a clean slate; the proxy keeps
the epoch it was made for, so a proxy or cursor kept past its borrow sees a newer epoch
and refuses to act: never someone else's session. The borrow ends when the proxy gives
the connection back. The owner (a pool) reads ``changes``, ``saved`` and ``lost`` to
decide how to take it back; it sets ``raw``/``probe`` when it adopts a rebuilt session,
``token`` (its own record), and ``unit`` while ``pool.transaction``'s function runs. In a
forked child, ``tether._fork`` sets ``lost`` (and forgets ``token``). Only the session's
modules change the rest.

Before each statement the session notes what it leaves behind (``note``/``read``): a
session change means the owner resets the session on return; with idle resiliency on,
the session log also keeps what a reconnect must replay. No I/O here: the proxies and
``_recovery`` do that.
"""

from __future__ import annotations

import itertools
import math
import threading
from typing import TYPE_CHECKING, Any

from ..errors import ConnectionReturned, bind
from ..net import Liveness
from ..vocab import PLAIN, Effect, Op, TxStatus

if TYPE_CHECKING:
    from ..dialects import Dialect
    from ..net import SocketProbe
    from ._log import SessionLog

_UNREADABLE = (Effect(Op.LOST, reason="statement that could not be read"),)
_numbers = itertools.count(1)


class Lease:
    """One physical connection, lent to one borrow at a time."""

    __slots__ = ("__weakref__", "cancelling", "changes", "command_timeout", "deadline", "default_timeout",
                 "dialect", "driver", "epoch", "expired", "far", "grace", "log", "lost", "mark", "marker",
                 "number", "owner", "probe", "quiet", "raw", "running", "saved", "statement", "token", "unit",
                 "watch_at")

    def __init__(self, raw: Any, probe: SocketProbe | None, *, owner: Any, dialect: Dialect, driver: Any,
                 command_timeout: float = 0.0):
        self.raw = raw  # the driver's connection; replaced when idle resiliency rebuilds it
        self.probe = probe  # its socket, for the zero-round-trip check (None where hidden)
        self.owner = owner  # where the connection goes back (an ``Owner``, see ``_proxy_async``)
        self.token: Any = None  # the owner's own record of this connection; never read here
        self.dialect = dialect
        self.driver = driver
        self.number = next(_numbers)
        self.epoch = 0  # the current borrow's number: odd while lent, even once it ended
        self.changes: tuple[str, ...] = ()  # what the session carries beyond the borrow
        self.saved: dict[str, Any] | None = None  # client-side settings to put back
        self.log: SessionLog | None = None  # replayable state, when idle resiliency is on
        self.lost: Exception | None = None  # the SessionLost every later call raises
        self.unit = False  # inside pool.transaction's function: commit/rollback refused
        # The open transaction wrote nothing, by the server's word (``Opening.quiet``) and no
        # statement since: the owner may send its COMMIT off the caller's path.
        self.quiet = False
        self.far = False  # until a round trip says otherwise (the session's ``FAR_S``)
        # pool.transaction's statement that identifies the transaction (commit safety), sent
        # with the BEGIN where the driver can (``mark``); its row once sent (``marker``).
        self.mark: str | None = None
        self.marker: tuple[Any, ...] | None = None
        # Command timeouts (``_watchdog``): seconds, 0 for none; each borrow starts with
        # the owner's default and may change it.
        self.default_timeout = self.command_timeout = command_timeout
        self.statement = 0  # the number of the last statement armed
        self.deadline = 0.0  # when the running statement times out; 0.0 when none runs
        self.running: Any = None  # its driver cursor, for drivers that cancel through one
        self.expired: tuple[int, str] | None = None  # (statement, what the watchdog did)
        self.watch_at = math.inf  # when the watchdog looks at this lease next
        self.grace: float | None = None  # a cancel's time before the sever (None: GRACE_S)
        self.cancelling: threading.Event | None = None  # set when a cancel in flight is done

    # -- a borrow's life (begun and ended by the proxy, inlined there: the hot path) ----------

    def lent(self, epoch: int) -> bool:
        """Whether borrow ``epoch`` is the current one."""
        return self.epoch == epoch and bool(epoch & 1)

    # -- what statements leave behind ---------------------------------------------------------

    def note(self, sql: Any) -> None:
        """Record what ``sql`` leaves in the session, before it is sent."""
        if type(sql) is str:  # the common case: one cached lookup
            found = self.dialect.read(sql).changes
        else:
            text = _text_of(sql, self.raw)
            unreadable = ("statement that could not be read",)
            found = unreadable if text is None else self.dialect.read(text).changes
        if found and not set(found) <= set(self.changes):
            self.changes = tuple(dict.fromkeys((*self.changes, *found)))

    def effects_of(self, sql: Any) -> tuple[Effect, ...]:
        """The session effects of ``sql``; PLAIN (the same object) when it has none."""
        if type(sql) is str:
            return self.dialect.read(sql).effects
        text = _text_of(sql, self.raw)
        return self.dialect.read(text).effects if text is not None else _UNREADABLE

    def read(self, sql: Any) -> tuple[Effect, ...]:
        """``note(sql)`` and ``effects_of(sql)`` in one cached lookup (the statement path)."""
        if type(sql) is not str:
            self.note(sql)
            return self.effects_of(sql)
        reading = self.dialect.read(sql)
        found = reading.changes
        if found and not set(found) <= set(self.changes):
            self.changes = tuple(dict.fromkeys((*self.changes, *found)))
        return reading.effects

    def recorded(
        self, effects: tuple[Effect, ...], params: Any, before: TxStatus | None, after: TxStatus
    ) -> None:
        """Fold a statement that succeeded into the session log."""
        log = self.log
        if log is None:
            return
        if effects is PLAIN:
            log.plain(after)
        else:
            assert before is not None
            log.record(effects, params, before, after, self._autocommit)

    def remember(self, name: str, old: Any) -> None:
        """Keep the first value of a client-side setting the borrower changes."""
        saved = self.saved
        if saved is None:
            saved = self.saved = {}
        if name not in saved:
            saved[name] = old

    # -- idle breaks ------------------------------------------------------------------------------

    def idle_break(self) -> bool:
        """Whether the socket says the session broke while it sat idle (zero round trips).

        Called only when the probe polled readable: EOF, a reset, or the server's goodbye
        mean broken; anything else (a NOTIFY) leaves the driver to read it."""
        probe = self.probe
        if probe is None:
            return False
        liveness = probe.check()
        if liveness is Liveness.DATA:
            return self.dialect.idle_bytes_mean_dead(probe.peek()[1])
        return liveness is Liveness.CLOSED

    # -- words for people -------------------------------------------------------------------------

    def describe(self, epoch: int) -> str:
        owner = self.owner
        if owner.name is None:
            return f"{'open' if self.lent(epoch) else 'closed'} unpooled to {owner.target}"
        where = f"#{self.number}" if self.lent(epoch) else "returned"
        return f"{where} from pool {owner.name!r} to {owner.target}"

    def returned_error(self) -> Exception:
        error = bind(ConnectionReturned, self.driver.module.InterfaceError)
        name = self.owner.name
        if name is None:
            return error("this connection is closed (Pooling=false)")
        return error(f"this connection was returned to pool {name!r}; borrow another with pool.connection()",
                     pool=name)

    def _autocommit(self) -> bool | None:
        value: bool | None = self.driver.autocommit(self.raw)
        return value

    def __repr__(self) -> str:
        return f"<lease #{self.number} epoch {self.epoch}>"


def _text_of(sql: Any, raw: Any) -> str | None:
    if isinstance(sql, str):
        return sql
    if isinstance(sql, (bytes, bytearray)):
        return bytes(sql).decode("utf-8", "replace")
    as_string = getattr(sql, "as_string", None)  # psycopg.sql.Composable
    if as_string is not None and raw is not None:
        try:
            text: str = as_string(raw)
            return text
        except Exception:
            return None
    return None
