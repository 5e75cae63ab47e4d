"""What every dialect declares for the pool and the session, and what BaseDialect gives one
that declares nothing: no caller probes a dialect with getattr or hasattr."""

from __future__ import annotations

import dataclasses

import pytest

from tether.dialects import Dialect, get_dialect
from tether.dialects._base import BaseDialect
from tether.dialects.sqlserver import azure
from tether.vocab import PLAIN, Reading


@pytest.mark.parametrize(
    ("dialect", "commit_safety"),
    [(get_dialect("postgresql"), True), (get_dialect("sqlserver"), False), (azure, False),
     (get_dialect("mysql"), False)],
)
def test_capabilities_are_declared(dialect: Dialect, commit_safety: bool) -> None:
    assert dialect.replays is True
    capabilities = (dialect.begin_sql, dialect.commit_status_sql, dialect.terminate_sql)
    assert all(capabilities) if commit_safety else capabilities == (None, None, None)


class _Tiny(BaseDialect):
    name = "tiny"
    default_port = 1
    ping_sql = "SELECT 1"
    reset_sql = ()

    def read(self, sql: str) -> Reading:
        return Reading(effects=PLAIN, changes=("SET",) if sql.startswith("SET") else ())

    def idle_bytes_mean_dead(self, data: bytes) -> bool:
        return True

    def is_disconnect(self, exc: BaseException) -> bool:
        return False


def test_a_new_dialect_gets_the_defaults() -> None:
    tiny = _Tiny()
    assert (tiny.begin_sql, tiny.commit_status_sql, tiny.terminate_sql) == (None, None, None)
    assert tiny.replays is False  # transparent recovery is earned, not inherited
    assert tiny.session_effects("SET x") is PLAIN
    assert (tiny.session_changes("SET x"), tiny.session_changes("SELECT 1")) == (("SET",), ())


def test_a_reading_is_a_cached_frozen_value() -> None:
    pg = get_dialect("postgresql")
    reading = pg.read("SET search_path = a; CREATE TEMP TABLE t (a int)")
    assert reading.changes == ("SET of a session setting", "temporary object")
    assert [e.key for e in reading.effects] == ["setting:search_path", "temp:table:t"]
    assert pg.read("SET search_path = a; CREATE TEMP TABLE t (a int)") is reading
    with pytest.raises(dataclasses.FrozenInstanceError):
        reading.changes = ()  # type: ignore[misc]
    assert not hasattr(reading, "__dict__")
    assert pg.read("SELECT 1").effects is PLAIN
