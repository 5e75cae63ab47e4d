"""Pool hooks against a real PostgreSQL: ``configure``, ``check``, ``reset`` and ``kwargs``
(psycopg_pool's names and meaning), including ``configure`` on the connection idle
resiliency opens, and hooks that fail."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg.adapt import Loader
from psycopg.rows import dict_row
from psycopg.types import TypeInfo
from psycopg.types.json import set_json_loads

import tether
from fix_pool import wait_for_goodbye
from fix_twins import backend_pid
from fix_wait import wait_until
from tether.testing import EmbeddedPostgres

TOKYO = "SET TIME ZONE 'Asia/Tokyo'"
SETTINGS = "SELECT current_setting('TimeZone'), current_setting('application_name')"


def kill(admin: EmbeddedPostgres, pid: int, conn: Any) -> None:
    admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
    wait_for_goodbye(conn)


class Configure:
    """A configure hook: a JSON loader, a server setting, and the connections it saw."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def __call__(self, conn: Any) -> None:
        assert isinstance(conn, psycopg.Connection)  # the driver's own, for type registration
        set_json_loads(lambda data: {"loaded_by": "configure", **json.loads(data)}, conn)
        conn.execute(TOKYO)
        conn.commit()
        self.seen.append(conn)


def test_configure_runs_once_per_new_connection(make_pool: Callable[..., tether.Pool]) -> None:
    configure = Configure()
    pool = make_pool(min_size=2, max_size=2, configure=configure)
    with pool.connection() as conn:
        row = conn.execute("""SELECT '{"a": 1}'::json, current_setting('TimeZone')""").fetchone()
    assert row == ({"loaded_by": "configure", "a": 1}, "Asia/Tokyo")
    assert len(configure.seen) == 2
    for _ in range(3):
        with pool.connection() as conn:
            conn.execute("SELECT 1")
    stats = pool.stats()
    assert len(configure.seen) == 2  # borrows do not configure again
    assert (stats.resets, stats.hook_failures) == (0, 0)  # configure's SET is not the borrower's change


def test_configure_survives_an_idle_kill(make_pool: Callable[..., tether.Pool],
                                         pg_admin: EmbeddedPostgres) -> None:
    configure = Configure()
    pool = make_pool(min_size=1, max_size=1, configure=configure)
    with pool.connection() as conn:
        conn.autocommit = True  # idle, outside a transaction: the session can come back
        conn.execute("SET search_path TO pg_catalog, public")  # the borrower's: replayed
        before = backend_pid(conn)
        kill(pg_admin, before, conn)
        row = conn.execute("""SELECT '{"b": 2}'::json, current_setting('TimeZone'),
                              current_setting('search_path'), pg_backend_pid()""").fetchone()
    assert row is not None
    assert row[:3] == ({"loaded_by": "configure", "b": 2}, "Asia/Tokyo", "pg_catalog, public")
    assert row[3] != before
    assert len(configure.seen) == 2  # the first connection, and the one recovery opened
    assert configure.seen[1] is not configure.seen[0]
    assert pool.stats().recovered == 1


def test_configure_again_after_a_session_reset(make_pool: Callable[..., tether.Pool]) -> None:
    configure = Configure()
    pool = make_pool(min_size=1, max_size=1, configure=configure)
    with pool.connection() as conn:
        conn.execute("SET search_path TO pg_catalog")  # a change: DISCARD ALL on return
    with pool.connection() as conn:
        row = conn.execute("SELECT current_setting('TimeZone'), current_setting('search_path')").fetchone()
    assert row == ("Asia/Tokyo", '"$user", public')
    assert pool.stats().resets == 1
    assert len(configure.seen) == 2  # after login, after the reset


def test_configure_registers_a_type_with_typeinfo(make_pool: Callable[..., tether.Pool],
                                                  pg_admin: EmbeddedPostgres) -> None:
    """``TypeInfo.fetch`` (as ``register_hstore`` and ``register_vector`` use) needs a
    ``psycopg.Connection``: the hook gets one. pgvector's type, with a loader of our own."""
    try:
        pg_admin.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as exc:
        pytest.skip(f"the embedded PostgreSQL has no pgvector extension ({exc})")

    class VectorLoader(Loader):
        def load(self, data: Any) -> list[float]:
            return [float(x) for x in bytes(data).decode().strip("[]").split(",")]

    def configure(conn: psycopg.Connection[Any]) -> None:
        info = TypeInfo.fetch(conn, "vector")
        assert info is not None
        conn.adapters.register_loader(info.oid, VectorLoader)
        conn.rollback()  # TypeInfo.fetch read in a transaction: end it

    pool = make_pool(min_size=1, max_size=1, configure=configure)
    with pool.connection() as conn:
        conn.autocommit = True
        assert conn.execute("SELECT '[1,2,3]'::vector").fetchone() == ([1.0, 2.0, 3.0],)
        kill(pg_admin, backend_pid(conn), conn)
        assert conn.execute("SELECT '[4,5]'::vector").fetchone() == ([4.0, 5.0],)


def test_a_failing_configure_is_never_lent(make_pool: Callable[..., tether.Pool],
                                           caplog: pytest.LogCaptureFixture) -> None:
    def configure(conn: Any) -> None:
        raise ValueError(f"no thanks, {conn.info.password}")

    caplog.set_level(logging.WARNING, logger="tether.pool")
    # The embedded server trusts its clients: any password logs in, and the hook reads it.
    pool = make_pool(wait=False, min_size=0, timeout=2.0, connect_retry_count=0, configure=configure,
                     kwargs={"password": "sekrit"})
    with pytest.raises(tether.Error) as raised:
        pool.getconn()
    assert "no thanks" in str(raised.value)
    assert "sekrit" not in str(raised.value)
    stats = pool.stats()
    assert stats.hook_failures >= 1
    assert (stats.idle, stats.busy) == (0, 0)  # the configured-halfway connection was closed
    warnings = [r.getMessage() for r in caplog.records if "configure hook" in r.getMessage()]
    assert warnings and "test_a_failing_configure_is_never_lent.<locals>.configure" in warnings[0]
    assert "ValueError" in warnings[0]
    assert not any("sekrit" in r.getMessage() for r in caplog.records)
    assert "sekrit" not in repr(pool)


def test_a_configure_that_fails_once_is_retried(make_pool: Callable[..., tether.Pool]) -> None:
    calls: list[int] = []

    def configure(conn: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise psycopg.OperationalError("flaky")

    pool = make_pool(min_size=1, max_size=1, configure=configure, connect_retry_count=1)
    with pool.connection() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert len(calls) == 2
    assert pool.stats().hook_failures == 1


def test_configure_must_not_leave_a_transaction_open(make_pool: Callable[..., tether.Pool]) -> None:
    def configure(conn: Any) -> None:
        conn.execute(TOKYO)  # no commit: the transaction stays open

    pool = make_pool(wait=False, min_size=0, timeout=2.0, connect_retry_count=0, configure=configure)
    with pytest.raises(tether.Error) as raised:
        pool.getconn()
    assert "INTRANS" in str(raised.value) or "IN_TRANSACTION" in str(raised.value)
    assert pool.stats().hook_failures >= 1


def test_a_coroutine_configure_is_refused_by_the_threaded_pool(make_pool: Callable[..., tether.Pool]) -> None:
    async def configure(conn: Any) -> None:
        pass

    pool = make_pool(wait=False, min_size=0, timeout=2.0, connect_retry_count=0, configure=configure)
    with pytest.raises(tether.Error, match="plain function"):
        pool.getconn()


def test_a_raising_check_discards_and_the_borrower_gets_another(
    make_pool: Callable[..., tether.Pool],
) -> None:
    checked: list[int] = []
    refused: set[int] = set()

    def check(conn: Any) -> None:
        assert isinstance(conn, psycopg.Connection)
        pid = conn.info.backend_pid
        checked.append(pid)
        if not refused:
            refused.add(pid)
            raise psycopg.OperationalError("refused by check")

    pool = make_pool(min_size=1, max_size=2, check=check)
    with pool.connection() as conn:
        pid = backend_pid(conn)
    assert pid not in refused
    assert len(checked) == 2
    stats = pool.stats()
    assert stats.hook_failures == 1
    assert stats.discarded_dead == 1


def test_psycopg_pools_check_connection_works_as_check(make_pool: Callable[..., tether.Pool],
                                                       pg_admin: EmbeddedPostgres) -> None:
    psycopg_pool = pytest.importorskip("psycopg_pool", reason="pip install psycopg-pool")
    pool = make_pool(min_size=1, max_size=1, check=psycopg_pool.ConnectionPool.check_connection)
    with pool.connection() as conn:
        first = backend_pid(conn)
    with pool.connection() as conn:
        assert backend_pid(conn) == first
    assert pool.stats().hook_failures == 0


def test_reset_runs_on_every_return_after_tethers_own(make_pool: Callable[..., tether.Pool]) -> None:
    seen: list[tuple[Any, str]] = []

    def reset(conn: Any) -> None:
        assert isinstance(conn, psycopg.Connection)
        row = conn.execute("SELECT current_setting('search_path')").fetchone()
        conn.rollback()
        seen.append((conn, row[0] if row else ""))

    pool = make_pool(min_size=1, max_size=1, reset=reset)
    with pool.connection() as conn:
        conn.execute("SELECT 1")
    with pool.connection() as conn:
        conn.execute("SET search_path TO pg_catalog")
    tether_testing_wait(lambda: len(seen) == 2)
    assert seen[1][1] == '"$user", public'  # after tether's DISCARD ALL
    assert seen[0][0] is seen[1][0]
    assert pool.stats().hook_failures == 0


def test_close_waits_for_a_return_still_resetting(make_pool: Callable[..., tether.Pool]) -> None:
    # The threaded pool's close() waited for its maintenance loop only: a reset hook still
    # running on a worker thread was cut off (the docs' page on hooks showed it, 1 in 4).
    entered, done = threading.Event(), []

    def reset(conn: Any) -> None:
        entered.set()
        time.sleep(0.2)  # a slow hook: close() must wait for it, up to its timeout
        done.append(conn)

    pool = make_pool(min_size=1, max_size=1, reset=reset)
    with pool.connection() as conn:
        conn.execute("SELECT 1")
    assert entered.wait(10)
    pool.close()
    assert len(done) == 1


def test_a_raising_reset_discards_the_connection(make_pool: Callable[..., tether.Pool]) -> None:
    def reset(conn: Any) -> None:
        raise RuntimeError("cannot reset")

    pool = make_pool(min_size=1, max_size=1, reset=reset)
    with pool.connection() as conn:
        first = backend_pid(conn)
    tether_testing_wait(lambda: pool.stats().hook_failures == 1)
    with pool.connection() as conn:
        assert backend_pid(conn) != first


def test_kwargs_reach_the_driver_and_win_over_the_url(make_pool: Callable[..., tether.Pool],
                                                      pg_dsn: str) -> None:
    sep = "&" if "?" in pg_dsn else "?"
    pool = make_pool(pg_dsn + f"{sep}application_name=from-url",
                     kwargs={"application_name": "from-kwargs", "row_factory": dict_row})
    with pool.connection() as conn:
        row = conn.execute("SELECT current_setting('application_name') AS name").fetchone()
    assert row == {"name": "from-kwargs"}


def test_a_password_in_kwargs_is_never_shown(pg_dsn: str) -> None:
    pool = tether.Pool(pg_dsn, kwargs={"password": "sekrit", "application_name": "x"}, open=False)
    try:
        assert "sekrit" not in repr(pool)
        assert "sekrit" not in repr(pool._hooks)
        assert pool.spec.password is not None and pool.spec.password.reveal() == "sekrit"
    finally:
        pool.close()


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("configure", 42, "configure must be a callable"),
    ("check", "SELECT 1", "check must be a callable"),
    ("reset", "sometimes", "reset must be one of"),
    ("kwargs", ["a"], "kwargs must be a dict"),
    ("kwargs", {"autocommit": True}, "autocommit"),
])
def test_bad_hooks_are_refused_up_front(pg_dsn: str, setting: str, value: object, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        tether.Pool(pg_dsn, open=False, **{setting: value})


def test_tether_connect_takes_the_hooks(pg_dsn: str) -> None:
    configure = Configure()
    sep = "&" if "?" in pg_dsn else "?"
    with tether.connect(pg_dsn + f"{sep}application_name=hooks-connect", configure=configure) as conn:
        assert conn.execute("SELECT current_setting('TimeZone')").fetchone() == ("Asia/Tokyo",)
    assert configure.seen


def tether_testing_wait(predicate: Callable[[], bool]) -> None:
    wait_until(predicate, what="the background return")


def test_an_unpooled_connection_is_configured_too(pg_dsn: str) -> None:
    configure = Configure()
    sep = "&" if "?" in pg_dsn else "?"
    with tether.connect(pg_dsn + f"{sep}pooling=false", configure=configure,
                        kwargs={"application_name": "unpooled-kw"}) as conn:
        row = conn.execute(SETTINGS).fetchone()
    assert row == ("Asia/Tokyo", "unpooled-kw")
    assert len(configure.seen) == 1


def test_kwargs_and_configure_with_pymysql(mariadb: Any) -> None:
    seen: list[Any] = []

    def configure(conn: Any) -> None:
        import pymysql

        seen.append(isinstance(conn, pymysql.connections.Connection))  # the driver's own
        with conn.cursor() as cursor:
            cursor.execute("SET time_zone = '+09:00'")

    pool = tether.Pool(mariadb.url(), min_size=1, max_size=1, configure=configure,
                       kwargs={"init_command": "SET @from_kwargs = 7"})
    try:
        with pool.connection() as conn:
            cursor = conn.cursor()
            cursor.execute("SELECT @from_kwargs, @@session.time_zone")
            assert cursor.fetchone() == (7, "+09:00")
        assert seen == [True]
    finally:
        pool.close()
