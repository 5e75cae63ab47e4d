"""SQLAlchemy's PyMySQL dialect on a tether pool, against a real MariaDB: Core, the ORM
(with the dialect's FOUND_ROWS client flag kept), a killed connection as a disconnect,
and the ORM unit of work (no commit-outcome resolution on MySQL: retries before COMMIT)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

sa = pytest.importorskip("sqlalchemy", reason="pip install 'tether[sqlalchemy]'")

from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker  # noqa: E402

import tether  # noqa: E402
import tether.sqlalchemy as tsa  # noqa: E402
from tether.testing import EmbeddedMariaDB  # noqa: E402


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "tsa_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(40))


@pytest.fixture
def engine(mariadb: EmbeddedMariaDB) -> Iterator[sa.Engine]:
    url = mariadb.url().replace("mysql://", "mysql+pymysql://", 1)
    engine = tsa.create_engine(url, max_size=2, timeout=5.0)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def connection_id(conn: sa.Connection) -> int:
    return int(conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar_one())


def test_core_and_orm(engine: sa.Engine) -> None:
    assert isinstance(engine.pool.tether, tether.Pool)
    with Session(engine) as session:
        session.add_all([Item(id=1, name="a"), Item(id=2, name="b")])
        session.commit()
    with engine.connect() as conn:
        first = connection_id(conn)
        assert conn.execute(sa.select(Item.name).order_by(Item.id)).scalars().all() == ["a", "b"]
        # FOUND_ROWS (the dialect's client flag, passed on by the plugin): a matched row counts
        result = conn.execute(sa.update(Item).where(Item.id == 1).values(name="a"))
        assert result.rowcount == 1
    with engine.connect() as conn:
        assert connection_id(conn) == first


def test_a_killed_connection_is_a_disconnect(engine: sa.Engine, mariadb: EmbeddedMariaDB) -> None:
    with engine.connect() as conn:
        conn.execute(sa.insert(Item).values(id=3, name="c"))
        victim = connection_id(conn)
        mariadb.execute(f"KILL {victim}")
        with pytest.raises(sa.exc.DBAPIError) as raised:
            conn.exec_driver_sql("SELECT 1")
        assert raised.value.connection_invalidated
        conn.rollback()
        assert connection_id(conn) != victim
    assert engine.pool.tether.stats().busy == 0


def test_orm_unit_of_work(engine: sa.Engine, mariadb: EmbeddedMariaDB) -> None:
    factory = sessionmaker(engine)
    runs: list[int] = []

    def add(session: Session) -> None:
        runs.append(1)
        session.add(Item(id=4, name="d"))
        session.flush()  # a transaction is open: a kill now loses it
        if len(runs) == 1:
            mariadb.execute(f"KILL {connection_id(session.connection())}")

    tsa.transaction(factory, add, retry=3)
    assert len(runs) == 2
    with Session(engine) as session:
        assert session.get(Item, 4) is not None


def test_tether_settings_in_the_url_are_refused(mariadb: EmbeddedMariaDB) -> None:
    url: Any = mariadb.url().replace("mysql://", "mysql+pymysql://", 1)
    with pytest.raises(TypeError, match="tether_no_such"):
        sa.create_engine(url, plugins=["tether"], tether_no_such=1)
