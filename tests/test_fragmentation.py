"""Fragmentation: ``tether.connect`` warns once when more pools of the process than the
limit reach one server, naming the connection-string keys that differ, never a value."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

import tether
from fix_ops import SECRET
from tether import events
from tether.pool import _fragmentation, set_fragmentation_limit
from tether.testing import EmbeddedPostgres

DATABASE = "fragmentation"  # of these tests alone: other tests' implicit pools reach "postgres"


def frag_dsn(admin: EmbeddedPostgres, password: str = SECRET) -> str:
    return f"postgresql://{admin.user}:{password}@{admin.host}:{admin.port}/{DATABASE}"


@pytest.fixture
def limit_3(pg_admin: EmbeddedPostgres) -> Iterator[None]:
    if not pg_admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)):
        pg_admin.execute(f"CREATE DATABASE {DATABASE}")
    before = _fragmentation.limit()
    _fragmentation._warned.clear()
    set_fragmentation_limit(3)
    yield
    set_fragmentation_limit(before)
    _fragmentation._warned.clear()
    for pool in tether.pools():  # the implicit pools these tests made
        spec = getattr(pool, "spec", None)
        if spec is not None and spec.database == DATABASE:
            pool.close()  # type: ignore[attr-defined]


def connect_as(pg_admin: EmbeddedPostgres, app: str, **extra: str) -> None:
    query = "&".join(f"{k}={v}" for k, v in {"application_name": app, **extra}.items())
    conn = tether.connect(f"{frag_dsn(pg_admin)}?{query}", min_size=0)
    conn.close()


def test_one_warning_past_the_limit_naming_the_keys_that_differ(
    limit_3: None, pg_admin: EmbeddedPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tether.pool")
    seen: list[events.Event] = []
    stop = events.subscribe(seen.append)
    try:
        for i in range(3):
            connect_as(pg_admin, f"frag-{i}")
        assert not [e for e in seen if isinstance(e, events.PoolsFragmented)]  # 3: not more than 3
        connect_as(pg_admin, "frag-3")
        connect_as(pg_admin, "frag-4")  # past the limit again: already told
        connect_as(pg_admin, "frag-0")  # the same identity: the same pool, nothing new
    finally:
        stop()
    told = [e for e in seen if isinstance(e, events.PoolsFragmented)]
    assert len(told) == 1
    assert told[0].pools == 4 and told[0].differing == ("application_name",)
    assert told[0].server == f"{pg_admin.host}:{pg_admin.port}/{DATABASE}"
    records = [r for r in caplog.records if getattr(r, "event", None) == "pool.fragmented"]
    assert len(records) == 1 and "differ only in application_name" in records[0].getMessage()
    assert SECRET not in records[0].getMessage() and SECRET not in repr(told)


def test_a_differing_password_is_named_not_shown(limit_3: None, pg_admin: EmbeddedPostgres) -> None:
    seen: list[events.Event] = []
    stop = events.subscribe(seen.append)
    try:
        for i in range(4):  # a password each (the test server trusts): a pool each
            dsn = frag_dsn(pg_admin, f"{SECRET}{i}") + "?application_name=frag-pw"
            tether.connect(dsn, min_size=0).close()
    finally:
        stop()
    (told,) = [e for e in seen if isinstance(e, events.PoolsFragmented)]
    assert told.differing == ("password",) and SECRET not in repr(told)


def test_the_limit_is_checked(pg_dsn: str) -> None:
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match="positive int"):
            set_fragmentation_limit(bad)  # type: ignore[arg-type]
