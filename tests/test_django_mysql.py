"""``tether.django.mysql`` against the embedded MariaDB (PyMySQL through its MySQLdb shim).

As in test_django.py, each scenario runs in a child process (this file as a script) with
its own Django settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve()
SRC = HERE.parent.parent / "src"


def configure(url: str, password: str, **extra: Any) -> None:
    import django
    from django.conf import settings

    import tether

    spec = tether.parse(url)
    settings.configure(
        DATABASES={"default": {"ENGINE": "tether.django.mysql", "HOST": spec.host, "PORT": spec.port,
                               "NAME": "djt", "USER": spec.user, "PASSWORD": password,
                               "OPTIONS": {"tether": {"max_size": 3}}, **extra}},
        INSTALLED_APPS=[], USE_TZ=True)
    django.setup()


def session() -> tuple[int, str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT @@SESSION.sql_auto_is_null, @@SESSION.tx_isolation, CONNECTION_ID()")
        row = cursor.fetchone()
    return int(row[0]), str(row[1]), int(row[2])


def kill(url: str, password: str, thread_id: int) -> None:
    import pymysql

    import tether

    spec = tether.parse(url)
    admin = pymysql.connect(host=spec.host, port=spec.port, user=spec.user, password=password)
    try:
        admin.cursor().execute(f"KILL CONNECTION {int(thread_id)}")
    finally:
        admin.close()


def child(url: str, password: str) -> dict[str, Any]:
    """Django's session settings, atomic/on_commit, reuse, and idle kills between requests."""
    from django.db import close_old_connections, connection, transaction

    configure(url, password)
    from tether.django import pool_for_alias

    seen = []
    ran: list[int] = []
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS t (n int) ENGINE=InnoDB")
        cursor.execute("DELETE FROM t")
    for request in range(6):
        close_old_connections()
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO t VALUES (%s)", [request])
                cursor.execute("SET @changed = 1")  # a session change: reset on return
            transaction.on_commit(lambda request=request: ran.append(request))
        seen.append(session())
        close_old_connections()
        connection.close()  # CONN_MAX_AGE=0: back to the pool
        if request % 2:
            kill(url, password, seen[-1][2])  # the pooled session dies while idle
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM t")
        rows = cursor.fetchone()[0]
    connection.close()
    pool = pool_for_alias()
    assert pool is not None
    return {"seen": seen, "ran": ran, "rows": rows, "repr": repr(pool),
            "hook_failures": pool.stats().hook_failures}


@pytest.fixture(scope="module")
def mysql_db(mariadb: Any) -> Iterator[Any]:
    pytest.importorskip("django", reason="Django is missing: pip install 'tether[django]'")
    mariadb.execute("CREATE DATABASE IF NOT EXISTS djt")
    yield mariadb


def test_django_mysql_backend(mysql_db: Any) -> None:
    from fix_mysql import MYSQL_PASSWORD

    path = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run([sys.executable, str(HERE), mysql_db.url(password=False)], env=env,
                          input=MYSQL_PASSWORD, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ran"] == list(range(6)) and result["rows"] == 6  # each on_commit after its COMMIT
    # Django's session settings on every session, new or reset (the configure hook)
    assert {(auto_null, level) for auto_null, level, _ in result["seen"]} == {(0, "READ-COMMITTED")}
    # a session killed while idle in the pool was replaced, without an error, at the next request
    threads = [thread for _, _, thread in result["seen"]]
    assert threads[2] != threads[1] and threads[4] != threads[3], threads
    assert result["hook_failures"] == 0
    assert MYSQL_PASSWORD not in done.stdout + done.stderr


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], sys.stdin.read())))
