"""SQLAlchemy engines on a tether pool, against a real PostgreSQL: the plugin and the
helper, the psycopg dialect's types, server-side cursors, idle kills inside and outside
an engine transaction, and the ORM unit of work."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

sa = pytest.importorskip("sqlalchemy", reason="pip install 'tether[sqlalchemy]'")

from sqlalchemy.dialects.postgresql import ARRAY, JSONB  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker  # noqa: E402

import tether  # noqa: E402
import tether.sqlalchemy as tsa  # noqa: E402
from fix_pool import socket_fd, wait_for_goodbye  # noqa: E402
from tether.testing import EmbeddedPostgres  # noqa: E402


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "tsa_accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    balance: Mapped[int]
    tags: Mapped[list[str]] = mapped_column(ARRAY(sa.Text), default=list)
    doc: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


def sa_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
def engine(pg_dsn: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(sa_url(pg_dsn), plugins=["tether"], tether_max_size=3, tether_timeout=5.0)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def kill_backend(admin: EmbeddedPostgres, pid: int, conn: Any) -> None:
    admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
    wait_for_goodbye(conn)


def pid_of(conn: sa.Connection) -> int:
    return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def tether_conn(conn: sa.Connection) -> Any:
    """tether's proxy of the borrow behind a SQLAlchemy connection."""
    return conn.connection.dbapi_connection


def test_the_plugin_puts_tether_under_the_engine(engine: sa.Engine) -> None:
    assert isinstance(engine.pool, tsa.TetherPool)
    assert isinstance(engine.pool.tether, tether.Pool)
    with engine.connect() as conn:
        assert isinstance(tether_conn(conn), tether.Connection)
        assert isinstance(conn.connection.driver_connection, psycopg.Connection)  # TypeInfo.fetch's check
        first = pid_of(conn)
    with engine.connect() as conn:
        assert pid_of(conn) == first
    stats = engine.pool.tether.stats()
    assert stats.busy == 0 and stats.soft_connects == stats.soft_disconnects


def test_the_helper_takes_tether_settings_and_engine_settings(pg_dsn: str) -> None:
    seen: list[Any] = []
    engine = tsa.create_engine(sa_url(pg_dsn), max_size=2, configure=seen.append, echo=False)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        assert engine.pool.tether.config.max_size == 2
        assert seen and isinstance(seen[0], psycopg.Connection)
    finally:
        engine.dispose()
    assert engine.pool.tether.closed is False  # dispose made way for a new pool, made at first use


def test_a_pool_of_the_applications_own_is_not_closed(pg_dsn: str) -> None:
    with tether.Pool(pg_dsn, max_size=2) as pool:
        engine = tsa.create_engine(sa_url(pg_dsn), pool=pool)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
        engine.dispose()
        assert not pool.closed
        assert engine.pool.tether is pool


def test_arrays_json_and_orm(engine: sa.Engine) -> None:
    with Session(engine) as session:
        session.add(Account(id=1, balance=10, tags=["a", "b"], doc={"k": [1, 2]}))
        session.commit()
    with Session(engine) as session:
        account = session.get(Account, 1)
        assert account is not None
        assert (account.tags, account.doc) == (["a", "b"], {"k": [1, 2]})


def test_a_server_side_cursor_streams(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, max_row_buffer=10).exec_driver_sql(
            "SELECT generate_series(1, 1000)")
        assert sum(1 for _ in result) == 1000
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True).exec_driver_sql("SELECT generate_series(1, 3)")
        mine = conn.exec_driver_sql("SELECT count(*) FROM pg_cursors").scalar_one()
        assert mine >= 1  # a named (server-side) cursor is open in this session
        assert [row[0] for row in result] == [1, 2, 3]


def test_hstore_is_registered_on_the_driver_connection(pg_admin: EmbeddedPostgres, pg_dsn: str) -> None:
    try:
        pg_admin.execute("CREATE EXTENSION IF NOT EXISTS hstore")
    except psycopg.Error as exc:
        pytest.skip(f"the embedded PostgreSQL has no hstore extension ({type(exc).__name__}); "
                    "the dialect's TypeInfo.fetch ran on the driver's connection and found none")
    engine = sa.create_engine(sa_url(pg_dsn), plugins=["tether"])
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 'a=>1'::hstore").scalar_one() == {"a": "1"}
    finally:
        engine.dispose()


def test_an_idle_kill_outside_a_transaction_goes_unnoticed(engine: sa.Engine,
                                                           pg_admin: EmbeddedPostgres) -> None:
    with engine.connect() as conn:
        before = pid_of(conn)
        conn.commit()  # idle, no transaction open
        kill_backend(pg_admin, before, tether_conn(conn))
        after = pid_of(conn)
        conn.commit()
    assert after != before
    assert engine.pool.tether.stats().recovered == 1


def test_an_idle_kill_inside_a_transaction_is_a_disconnect(engine: sa.Engine,
                                                           pg_admin: EmbeddedPostgres) -> None:
    with engine.connect() as conn:
        conn.exec_driver_sql("INSERT INTO tsa_accounts (id, balance, tags, doc) VALUES (1, 1, '{}', '{}')")
        before = pid_of(conn)
        kill_backend(pg_admin, before, tether_conn(conn))
        with pytest.raises(sa.exc.DBAPIError) as raised:
            conn.exec_driver_sql("SELECT 1")
        assert raised.value.connection_invalidated
        assert isinstance(raised.value.orig, tether.SessionLost)
        assert conn.invalidated
        conn.rollback()
        assert pid_of(conn) != before  # the engine went on, as with pre-ping
    stats = engine.pool.tether.stats()
    assert (stats.busy, stats.sessions_lost) == (0, 1)
    with engine.connect() as conn:  # the insert was rolled back with the dead session
        assert conn.exec_driver_sql("SELECT count(*) FROM tsa_accounts").scalar_one() == 0


def test_a_dead_idle_connection_is_replaced_at_checkout_without_a_ping(engine: sa.Engine,
                                                                       pg_admin: EmbeddedPostgres) -> None:
    with engine.connect() as conn:
        before = pid_of(conn)
        fd = socket_fd(tether_conn(conn))
    pg_admin.terminate_backends()
    wait_for_goodbye(fd)
    with engine.connect() as conn:
        assert pid_of(conn) != before
    stats = engine.pool.tether.stats()
    assert (stats.pings, stats.discarded_dead) == (0, 1)


def test_invalidating_discards_the_tether_connection(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        before = pid_of(conn)
        conn.invalidate()
    with engine.connect() as conn:
        assert pid_of(conn) != before
    stats = engine.pool.tether.stats()
    assert stats.busy == 0 and stats.discarded_dead == 1


def test_connect_events_run_once_per_physical_connection(engine: sa.Engine) -> None:
    runs: list[Any] = []
    sa.event.listen(engine, "connect", lambda dbapi_conn, record: runs.append(record))
    engine.pool.tether.clear()  # new physical connections from here on
    for _ in range(5):
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    assert len(runs) == 1


def test_orm_unit_of_work(engine: sa.Engine, pg_admin: EmbeddedPostgres) -> None:
    factory = sessionmaker(engine)
    tsa.transaction(factory, lambda s: s.add(Account(id=7, balance=100)))
    runs: list[int] = []

    def move(session: Session) -> int:
        account = session.get(Account, 7)
        assert account is not None
        runs.append(account.balance)
        if len(runs) == 1:  # the first run loses its connection mid-transaction
            pid = session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            kill_backend(pg_admin, pid, tether_conn(session.connection()))
        account.balance -= 30
        return account.balance

    assert tsa.transaction(factory, move, retry=3) == 70
    assert runs == [100, 100]
    with Session(engine) as session:
        account = session.get(Account, 7)
        assert account is not None and account.balance == 70


def test_orm_unit_of_work_retries_a_serialization_failure(engine: sa.Engine) -> None:
    factory = sessionmaker(engine)
    runs: list[int] = []

    def work(session: Session) -> None:
        runs.append(1)
        if len(runs) == 1:
            session.execute(sa.text("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = "
                                    "'serialization_failure'; END $$"))
        session.add(Account(id=8, balance=1))

    tsa.transaction(factory, work, retry=tether.Retry.fixed(attempts=3, delay_s=0.01))
    assert len(runs) == 2


def test_orm_unit_of_work_does_not_retry_a_fatal_error(engine: sa.Engine) -> None:
    factory = sessionmaker(engine)
    runs: list[int] = []

    def work(session: Session) -> None:
        runs.append(1)
        session.execute(sa.text("SELECT no_such_column FROM tsa_accounts"))

    with pytest.raises(sa.exc.ProgrammingError):
        tsa.transaction(factory, work, retry=3)
    assert runs == [1]
