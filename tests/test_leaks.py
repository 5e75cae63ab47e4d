"""Leak detection: a borrow held past ``leak_detection_threshold`` is told once, with its
borrow site, and again when it comes back; a borrow dropped unclosed says where it began."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable

import pytest

import tether
from fix_wait import async_wait_until, wait_until
from tether import events


def told(caplog: pytest.LogCaptureFixture, kind: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == kind]


def test_a_long_borrow_is_told_once_with_its_site_then_its_return(
    make_pool: Callable[..., tether.Pool], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tether.pool")
    pool = make_pool(leak_detection_threshold=0.05, maintenance_interval=0.02)
    conn = pool.getconn()  # the borrow site: this line
    wait_until(lambda: told(caplog, "leak.suspected"), what="a leak.suspected warning")
    later = pool.getconn()  # its warning comes from a later sweep, which must not warn twice
    wait_until(lambda: len(told(caplog, "leak.suspected")) == 2, what="the second borrow's warning")
    warning = told(caplog, "leak.suspected")[0]
    assert warning.connection != told(caplog, "leak.suspected")[1].connection
    assert warning.levelno == logging.WARNING
    assert "test_a_long_borrow_is_told_once_with_its_site_then_its_return" in warning.borrowed_at
    assert "conn = pool.getconn()  # the borrow site: this line" in warning.borrowed_at
    assert "_pool.py" not in warning.borrowed_at  # tether's own frames are left out
    assert pool.stats().leaks_suspected == 2
    conn.close()
    wait_until(lambda: told(caplog, "leak.ended"), what="a leak.ended record")
    ended = told(caplog, "leak.ended")
    assert ended[0].levelno == logging.INFO and ended[0].connection == warning.connection
    later.close()
    wait_until(lambda: len(told(caplog, "leak.ended")) == 2, what="the second return")
    assert len(told(caplog, "leak.suspected")) == 2  # once per borrow
    assert pool.stats().leaks_suspected == 2


def test_short_borrows_are_not_suspected(
    make_pool: Callable[..., tether.Pool], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tether.pool")
    pool = make_pool(leak_detection_threshold=30.0, maintenance_interval=0.02)
    for _ in range(20):
        with pool.connection() as conn:
            conn.execute("SELECT 1")
    assert pool._leaks is not None
    wait_until(lambda: not pool._leaks._lent, what="the sweep forgetting the returned borrows")
    assert told(caplog, "leak.suspected") == [] and pool.stats().leaks_suspected == 0


def test_leak_detection_is_off_by_default(make_pool: Callable[..., tether.Pool]) -> None:
    pool = make_pool()
    assert pool.config.leak_detection_threshold is None and pool._leaks is None


def test_a_dropped_borrow_says_where_it_was_borrowed(
    make_pool: Callable[..., tether.Pool], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tether.pool")
    pool = make_pool(leak_detection_threshold=60.0, maintenance_interval=0.02)
    seen: list[events.Event] = []
    stop = pool.subscribe(seen.append)

    def forget() -> None:
        pool.getconn()  # dropped at once: garbage

    forget()
    gc.collect()
    wait_until(lambda: pool.stats().reclaimed == 1, what="the reclaim")
    stop()
    reclaimed = [e for e in seen if isinstance(e, events.ConnectionReclaimed)]
    assert len(reclaimed) == 1 and "in forget" in reclaimed[0].borrowed_at
    message = told(caplog, "connection.reclaimed")[0].getMessage()
    assert "pool.getconn()  # dropped at once: garbage" in message


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "5"])
def test_a_bad_threshold_is_refused(pg_dsn: str, bad: object) -> None:
    with pytest.raises((tether.ConfigError, TypeError, ValueError), match="leak_detection_threshold"):
        tether.Pool(pg_dsn, leak_detection_threshold=bad, open=False)  # type: ignore[arg-type]


def test_an_async_borrow_is_traced_to_its_coroutine(pg_dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tether.pool")

    async def borrower(pool: tether.AsyncPool) -> None:
        conn = await pool.getconn()  # the async borrow site
        await async_wait_until(lambda: told(caplog, "leak.suspected"), what="a leak.suspected warning")
        await conn.close()

    async def run() -> None:
        async with tether.AsyncPool(pg_dsn, name="async-leaks", min_size=1, max_size=1,
                                    leak_detection_threshold=0.05, maintenance_interval=0.02) as pool:
            await borrower(pool)
            await async_wait_until(lambda: told(caplog, "leak.ended"), what="a leak.ended record")

    asyncio.run(run())
    (warning,) = told(caplog, "leak.suspected")
    assert "in borrower" in warning.borrowed_at
    assert "conn = await pool.getconn()  # the async borrow site" in warning.borrowed_at
    assert warning.pool == "async-leaks"
