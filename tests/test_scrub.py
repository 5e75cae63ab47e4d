"""A driver's message about a failed open passes through ``scrub`` before it reaches an
exception: the password is hidden where it stands on its own, never by mangling words."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tether.dsn import ConnectionSpec, parse
from tether.pool._core import scrub


def spec_with(password: str) -> ConnectionSpec:
    return parse(f"postgresql://app:{quote(password, safe='')}@db.example.com:5432/app")


@pytest.mark.parametrize(
    ("password", "message", "expected"),
    [
        ("p", "could not connect to port 1 on loopback", "could not connect to port 1 on loopback"),
        ("postgres", 'role "app" has no password; host=db port=5432 password=postgres',
         'role "app" has no password; host=db port=5432 password=***'),
        ("s3cret", "DSN postgresql://app:s3cret@db:5432/app", "DSN postgresql://app:***@db:5432/app"),
        ("s3cret", "Server=db;UID=app;PWD={s3cret};", "Server=db;UID=app;PWD={***};"),
        ("a}b", "Server=db;PWD={a}}b};", "Server=db;PWD={***};"),
        ("p@ss/w", "postgresql://app:p%40ss%2Fw@db/app", "postgresql://app:***@db/app"),
        ("p@ss/w", "password='p@ss/w' user=app", "password='***' user=app"),
        ("hunter2", "hunter22 is not hunter2", "hunter22 is not ***"),
    ],
)
def test_the_password_is_hidden_where_it_stands_alone(password: str, message: str, expected: str) -> None:
    assert scrub(message, spec_with(password)) == expected


def test_no_password_leaves_the_message_alone() -> None:
    assert scrub("password=x", parse("postgresql://app@db.example.com:5432/app")) == "password=x"
