"""The borrows whose round trips ``test_rtt_sqlserver``, ``test_rtt_mysql`` and ``bench/rtt_bench.py``
count: each once through ``tether.Pool`` and once on the raw driver alone (the floor).

A scenario runs on a connection-like object (tether's proxy or the driver's own connection)
and is counted by a ``TurnCounter``: ``Count.caller`` is what the caller waited for (the turns
before the block returned), ``Count.background`` what the pool sent afterwards, on its
workers (the reset). ``requests`` drops the login's messages (a pool may open a connection
in the background).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tether
from fix_turns import TurnCounter

Turns = list[list[str]]
Body = Callable[[Any], None]
TABLE = "rtt_rows"


@dataclass(frozen=True)
class Count:
    caller: Turns
    background: Turns


def count(counter: TurnCounter, run: Callable[[], None], keep: Callable[[Turns], Turns]) -> Count:
    """The turns of ``run()`` (``keep`` filters each list), and those the pool sent after it."""
    counter.settle()
    counter.since()
    run()
    caller = keep(counter.turns())
    counter.settle()
    return Count(caller, keep(counter.turns())[len(caller) :])


# -- what a borrower does ------------------------------------------------------------------


def select(conn: Any) -> None:
    cur = conn.cursor()
    cur.execute("SELECT 1")
    row = cur.fetchone()
    assert row is not None and row[0] == 1, row


def write(value: int) -> Body:
    def body(conn: Any) -> None:
        conn.cursor().execute(f"INSERT INTO {TABLE} (x) VALUES ({int(value)})")

    return body


def set_nocount(conn: Any) -> None:
    """A session change the pool must undo (SQL Server)."""
    conn.cursor().execute("SET NOCOUNT ON")
    select(conn)


def select_then_rollback(conn: Any) -> None:
    select(conn)
    conn.rollback()


# -- through the pool, and alone ------------------------------------------------------------


def pooled(pool: tether.Pool, body: Body) -> Callable[[], None]:
    """A with-block: its end commits, as by default."""

    def run() -> None:
        with pool.connection() as conn:
            body(conn)

    return run


def unit(pool: tether.Pool, body: Body) -> Callable[[], None]:
    """``pool.transaction(body)``."""
    return lambda: pool.transaction(body)


def alone(raw: Any, body: Body, *, autocommit: bool, commit: bool = True) -> Callable[[], None]:
    """The driver alone: the body, then the COMMIT a transaction-mode application sends
    (``commit=False``: the body ended its transaction itself)."""

    def run() -> None:
        body(raw)
        if commit and not autocommit:
            raw.commit()

    return run


def alone_unit(raw: Any, body: Body, *, autocommit: bool) -> Callable[[], None]:
    """The driver alone doing what ``pool.transaction`` does: in autocommit mode, turn it
    off (the driver's BEGIN), run, commit, and turn it back on."""

    def run() -> None:
        if autocommit:
            _set_autocommit(raw, False)
        body(raw)
        raw.commit()
        if autocommit:
            _set_autocommit(raw, True)

    return run


def _set_autocommit(raw: Any, on: bool) -> None:
    if callable(raw.autocommit):  # pymssql, PyMySQL: a method
        raw.autocommit(on)
    else:
        raw.autocommit = on


# -- a pool and the driver alone, through one counting proxy --------------------------------


class Bench:
    """A pool of one connection and a raw connection, both through ``counter``'s proxy;
    ``keep`` filters the turns (the login's messages out)."""

    def __init__(self, counter: TurnCounter, pool: tether.Pool, raw: Any, *, autocommit: bool,
                 keep: Callable[[Turns], Turns]):
        self.counter, self.pool, self.raw, self.autocommit, self.keep = counter, pool, raw, autocommit, keep

    def pooled(self, body: Body) -> Count:
        return count(self.counter, pooled(self.pool, body), self.keep)

    def unit(self, body: Body) -> Count:
        return count(self.counter, unit(self.pool, body), self.keep)

    def alone(self, body: Body, *, commit: bool = True) -> Count:
        run = alone(self.raw, body, autocommit=self.autocommit, commit=commit)
        return count(self.counter, run, self.keep)

    def alone_unit(self, body: Body) -> Count:
        return count(self.counter, alone_unit(self.raw, body, autocommit=self.autocommit), self.keep)

    def rows(self) -> int:
        with self.pool.connection() as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT COUNT(*) FROM {TABLE}")
            return int(cur.fetchone()[0])

    def close(self) -> None:
        self.pool.close()
        self.raw.close()
