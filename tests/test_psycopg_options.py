"""psycopg's own connection settings given in a tether connection string reach psycopg typed."""

from __future__ import annotations

import pytest

import tether


@pytest.mark.parametrize(("given", "expected"), [("0", 0), ("3", 3), ("none", None)])
def test_prepare_threshold_from_the_url(pg_dsn: str, given: str, expected: int | None) -> None:
    with tether.Pool(f"{pg_dsn}?prepare_threshold={given}", max_size=1) as pool, pool.connection() as conn:
        assert conn.execute("SELECT %s::int", (7,)).fetchone() == (7,)
        assert conn.raw.prepare_threshold == expected


def test_a_prepare_threshold_that_is_no_count_is_refused_where_it_is_written() -> None:
    with pytest.raises(tether.ConfigError, match="'prepare_threshold': must be a whole number") as info:
        tether.Pool("postgresql://app@db.example.com:5432/app?prepare_threshold=often", open=False)
    assert info.value.key == "prepare_threshold" and "often" in str(info.value)
