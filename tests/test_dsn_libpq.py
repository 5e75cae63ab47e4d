"""libpq's keyword/value strings (``host=db port=5432 dbname=shop``) as connection strings.

psycopg's own ``make_conninfo`` writes the strings these tests parse, so the quoting rules
are checked against what a real client produces, and a pool opened from one reaches the
embedded PostgreSQL.
"""

from __future__ import annotations

import re

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

import tether
from tether.dsn import Secret, parse
from tether.errors import ConfigError

PASSWORD = "s3 cr'et\\x"


def test_the_same_spec_as_the_url() -> None:
    text = make_conninfo(host="db.example.com", port=6543, dbname="shop", user="app", password=PASSWORD,
                         sslmode="require", connect_timeout=7)  # fmt: skip
    assert conninfo_to_dict(text)["password"] == PASSWORD  # psycopg reads it back as written
    url = ("postgresql://app:s3%20cr'et%5Cx@db.example.com:6543/shop"
           "?sslmode=require&connect_timeout=7")  # fmt: skip
    assert parse(text) == parse(url)
    assert parse(text).password == Secret(PASSWORD)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("host=db", {"host": "db"}),
        ("  host = db   dbname = 'my shop' ", {"host": "db", "database": "my shop"}),
        ("host=db dbname=my\\ shop", {"host": "db", "database": "my shop"}),
        ("host=db application_name=''", {"host": "db", "application_name": None}),
        ("host=db\tport=6000\nuser=app", {"host": "db", "port": 6000, "user": "app"}),
        ("dbname=shop", {"host": None, "database": "shop"}),  # libpq's default host: the socket
    ],
)
def test_libpq_quoting(text: str, expected: dict[str, object]) -> None:
    spec = parse(text)
    for name, value in expected.items():
        assert getattr(spec, name) == value, name


def test_tether_settings_and_driver_options_ride_along() -> None:
    spec = parse("host=db max_size=4 command_timeout=2.5 options='-c search_path=app' prepare_threshold=none")
    assert (spec.max_pool_size, spec.command_timeout) == (4, 2.5)
    assert dict(spec.options) == {"options": "-c search_path=app", "prepare_threshold": "none"}


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("host=db sslmdoe=require", "not a libpq keyword nor a tether setting. Did you mean 'sslmode'?"),
        ("host=db port=5432x", "port must be a number"),
        ("host=db dbname", "expected '=' after the keyword"),
        ("host=a,b", "several hosts are not supported yet"),
        ("host=db max_size=0", "'max_size': must be at least 1"),
    ],
)
def test_mistakes_are_named(text: str, said: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(said)):
        parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "host=db password='Sec ret-42",  # unterminated
        "host=db password=Sec-ret-42 prot=5",  # after the password: the key is not quoted
        "host=db password=Sec ret-42",  # 'ret-42' is not a pair
        "host=db sslmode='require password=Sec-ret-42",  # a quote left open takes it in
    ],
)
def test_no_error_shows_the_password(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    for piece in ("Sec", "ret-42"):
        assert piece not in str(caught.value) and piece not in repr(caught.value)


def test_ado_strings_are_still_ado() -> None:
    assert parse("Server=tcp:db,1433;Database=shop;User ID=app").dialect == "sqlserver"
    with pytest.raises(ConfigError, match="Keyword not supported: 'host'"):
        parse("Host=db;Database=shop")  # Npgsql's shape: ';' separates, so not libpq's


def test_a_pool_opens_from_psycopgs_own_string(pg_dsn: str) -> None:
    fields = conninfo_to_dict(pg_dsn)
    text = make_conninfo(**{k: v for k, v in fields.items() if v is not None}, application_name="libpq str")
    with tether.Pool(text, min_size=1, max_size=1) as pool, pool.connection() as conn:
        row = conn.execute("SELECT current_setting('application_name')").fetchone()
        assert row == ("libpq str",)
