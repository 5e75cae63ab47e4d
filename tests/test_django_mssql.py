"""``tether.django.mssql`` (mssql-django's backend on a tether pool) against the TDS test
server, through each driver mssql-django can use: pyodbc with Microsoft's ODBC driver 18,
pyodbc with FreeTDS, and mssql-python.

As in test_django.py, each scenario runs in a child process (this file as a script) with
its own Django settings; the test server runs in this process. The child kills pooled
sessions itself, through a second alias on mssql-django's own backend (``KILL``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fix_system import need_msodbc
from fix_tds import DATABASE, PASSWORD, USER, freetds_odbc_library, msodbc_library
from tdsserver import TdsServer

HERE = Path(__file__).resolve()
SRC = HERE.parent.parent / "src"
VARIANTS = ("pyodbc-msodbc", "pyodbc-freetds", "mssql-python")
DATEFIRST = 3  # not SQL Server's default (7): seen only where the configure hook ran
ISOLATION = ("REPEATABLE READ", 3)  # OPTIONS["isolation_level"], and sys.dm_exec_sessions' number


def configure(port: int, variant: str, library: str, admin_library: str) -> None:
    import django
    from django.conf import settings

    options: dict[str, Any] = {
        "extra_params": "Encrypt=no;TrustServerCertificate=yes", "datefirst": DATEFIRST,
        "isolation_level": ISOLATION[0], "tether": {"max_size": 1, "timeout": 5.0},
    }
    if variant == "mssql-python":
        options["python_driver"] = "mssql_python"
    else:
        options["driver"] = library
    common = {"HOST": "127.0.0.1", "PORT": port, "NAME": DATABASE, "USER": USER, "PASSWORD": sys.stdin.read()}
    # the admin alias: mssql-django itself; Microsoft's driver takes SERVER=host,port
    admin = {**common, "ENGINE": "mssql", "HOST": f"127.0.0.1,{port}", "PORT": "",
             "OPTIONS": {"driver": admin_library, "host_is_server": True,
                         "extra_params": "Encrypt=no;TrustServerCertificate=yes"}}
    if "libtdsodbc" in admin_library:  # FreeTDS: SERVER and PORT
        admin.update(HOST="127.0.0.1", PORT=port)
    settings.configure(DATABASES={"default": {**common, "ENGINE": "tether.django.mssql", "OPTIONS": options},
                                  "admin": admin},
                       INSTALLED_APPS=[], USE_TZ=False)
    django.setup()


def session() -> tuple[int, int, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT @@DATEFIRST, transaction_isolation_level, @@SPID FROM sys.dm_exec_sessions "
                       "WHERE session_id = @@SPID")
        row = cursor.fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def kill(spid: int, fd: int) -> None:
    from django.db import connections

    from fix_pool import wait_for_goodbye

    with connections["admin"].cursor() as cursor:
        cursor.execute(f"KILL {int(spid)}")
    wait_for_goodbye(fd)


def child(port: int, variant: str, library: str, admin_library: str) -> dict[str, Any]:
    """mssql-django's session settings, atomic/on_commit/savepoints, reuse, and idle kills
    between requests."""
    from django.db import close_old_connections, connection, transaction

    from fix_pool import socket_fd
    from tether.django import pool_for_alias

    configure(port, variant, library, admin_library)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE t (n int)")
    seen, ran = [], []
    for request in range(6):
        close_old_connections()
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO t VALUES (%s)", [request])
            try:
                with transaction.atomic():  # a savepoint, rolled back
                    with connection.cursor() as cursor:
                        cursor.execute("INSERT INTO t VALUES (%s)", [100 + request])
                    raise LookupError
            except LookupError:
                pass
            transaction.on_commit(lambda request=request: ran.append(request))
        seen.append(session())
        fd = socket_fd(connection.connection)
        close_old_connections()
        connection.close()  # CONN_MAX_AGE=0: back to the pool
        if request % 2:
            kill(seen[-1][2], fd)  # the pooled session dies while idle
    with connection.cursor() as cursor:
        cursor.execute("SELECT n FROM t ORDER BY n")
        rows = [int(row[0]) for row in cursor.fetchall()]
    connection.close()
    pool = pool_for_alias()
    assert pool is not None
    stats = pool.stats()
    return {"seen": seen, "ran": ran, "rows": rows, "repr": repr(pool), "hook_failures": stats.hook_failures,
            "discarded_dead": stats.discarded_dead, "pings": stats.pings, "busy": stats.busy}


def libraries(variant: str) -> tuple[str, str]:
    """The ODBC library of ``variant``, and the one the admin alias uses; skips, naming what
    is missing."""
    pytest.importorskip("mssql", reason="mssql-django is missing: pip install mssql-django")
    pytest.importorskip("pyodbc", reason="pyodbc is missing: pip install pyodbc")
    if variant == "pyodbc-freetds":
        library = freetds_odbc_library()
        if library is None:
            pytest.skip("FreeTDS's ODBC driver is not installed: apt-get install tdsodbc")
        return library, library
    library = need_msodbc(msodbc_library())
    if variant == "mssql-python":
        pytest.importorskip("mssql_python", reason="mssql-python is missing: pip install mssql-python")
    return library, library


@pytest.mark.parametrize("variant", VARIANTS)
def test_django_mssql_backend(variant: str, tds_server: TdsServer) -> None:
    library, admin_library = libraries(variant)
    path = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run([sys.executable, str(HERE), str(tds_server.port), variant, library, admin_library],
                          env=env, input=PASSWORD, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ran"] == list(range(6))  # each on_commit after its COMMIT
    assert result["rows"] == list(range(6))  # each savepoint's insert rolled back, the rest committed
    # mssql-django's session settings on every session, new or reset (the configure hook)
    assert {(datefirst, level) for datefirst, level, _ in result["seen"]} == {(DATEFIRST, ISOLATION[1])}
    # the same session lent again; one killed while idle in the pool replaced, without an
    # error and without a ping, at the next request
    spids = [spid for _, _, spid in result["seen"]]
    assert spids[1] == spids[0] and spids[2] != spids[1] and spids[4] != spids[3], spids
    assert (result["hook_failures"], result["pings"], result["busy"]) == (0, 0, 0)
    assert result["discarded_dead"] == 3
    assert PASSWORD not in done.stdout + done.stderr


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    print(json.dumps(child(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])))
