"""EmbeddedPgBouncer: a real PgBouncer in front of the embedded PostgreSQL, in transaction and
session mode; its console; PostgreSQL and the bouncer restarting under connected clients.

Backends are named by ``pg_backend_pid()``: behind PgBouncer, ``conn.info.backend_pid`` is
the bouncer's own cancel key, not a server process.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import pytest

import tether.testing._pgbouncer as pgbouncer_module
from fix_pgbouncer import need_pgbouncer, passes_query, restore
from fix_wait import wait_until
from tether.testing import EmbeddedPgBouncer, EmbeddedPostgres, free_port, pgbouncer_program

psycopg = pytest.importorskip("psycopg")
errors = psycopg.errors

_SHOW = "SELECT pg_backend_pid(), current_setting('statement_timeout'), current_setting('application_name')"


def _connect(bouncer: EmbeddedPgBouncer, **kwargs: Any) -> Any:
    # No server-side prepared statements: PgBouncer 1.18 cannot follow one from a server
    # connection to the next in transaction mode.
    return psycopg.connect(bouncer.dsn, prepare_threshold=None, connect_timeout=5, **kwargs)


def _pid(conn: Any) -> int:
    pid: int = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    return pid


def _pool(bouncer: EmbeddedPgBouncer) -> Any:
    """The ``SHOW POOLS`` row of the database the clients use."""
    return next(row for row in bouncer.admin("SHOW POOLS") if row.database == bouncer.database)


def _server_states(bouncer: EmbeddedPgBouncer) -> dict[int, str]:
    """Backend PID -> state (active, idle, used...) of the bouncer's server connections."""
    return {row.remote_pid: row.state for row in bouncer.admin("SHOW SERVERS")}


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_a_query_reaches_postgres_through_the_bouncer(
    mode: str, request: pytest.FixtureRequest, pg_server: EmbeddedPostgres
) -> None:
    bouncer: EmbeddedPgBouncer = request.getfixturevalue(f"pgbouncer_{mode}")
    assert bouncer.dsn == f"postgresql://postgres@127.0.0.1:{bouncer.port}/postgres"
    assert repr(bouncer) == (
        f"<EmbeddedPgBouncer 127.0.0.1:{bouncer.port} -> 127.0.0.1:{pg_server.port}/postgres"
        f" [running pid={bouncer.pid}, {mode}, trust]>"
    )
    with _connect(bouncer) as conn:
        row = conn.execute("SELECT inet_server_port(), current_user").fetchone()
    assert row == (pg_server.port, "postgres")  # the bouncer's server connection, to PostgreSQL
    assert _pool(bouncer).pool_mode == mode


def test_transaction_mode_moves_a_client_between_backends(pgbouncer_admin: EmbeddedPgBouncer) -> None:
    with _connect(pgbouncer_admin, autocommit=True) as a, _connect(pgbouncer_admin) as b:
        first = _pid(a)  # a's transaction ends: its server goes back to the pool
        assert _pid(b) == first  # b's transaction, left open, takes it (the last released goes first)
        second = _pid(a)
        assert second != first
        states = _server_states(pgbouncer_admin)
        assert (states[first], states[second]) == ("active", "idle")


def test_transaction_mode_a_set_stays_with_the_server_not_the_client(
    pgbouncer_admin: EmbeddedPgBouncer,
) -> None:
    with _connect(pgbouncer_admin, autocommit=True) as a, _connect(pgbouncer_admin) as b:
        a.execute("SET statement_timeout = '4321ms'")  # each its own transaction, on one server
        a.execute("SET application_name = 'tether-a'")
        b_pid, b_timeout, _ = b.execute(_SHOW).fetchone()  # b's open transaction takes that server
        a_pid, a_timeout, a_name = a.execute(_SHOW).fetchone()
    assert b_timeout == "4321ms"  # a's SET reached another client
    assert (a_pid != b_pid, a_timeout) == (True, "0")  # and a, on another server, lost it
    assert a_name == "tether-a"  # but PgBouncer tracks application_name and sets it again


def test_session_mode_keeps_a_client_on_one_backend_and_resets_it_after(
    pgbouncer_session_admin: EmbeddedPgBouncer,
) -> None:
    bouncer = pgbouncer_session_admin
    with _connect(bouncer, autocommit=True) as a:
        a.execute("SET statement_timeout = '4321ms'")
        pid = _pid(a)
        with _connect(bouncer, autocommit=True) as other:
            other_pid = _pid(other)
            assert other.execute(_SHOW).fetchone()[:2] == (other_pid, "0")
            assert other_pid != pid
        assert a.execute(_SHOW).fetchone()[:2] == (pid, "4321ms")
    # a left: its server ran DISCARD ALL (server_reset_query) and went back to the pool.
    wait_until(
        lambda: _server_states(bouncer).get(pid) == _server_states(bouncer).get(other_pid) == "idle",
        what=f"backends {pid} and {other_pid} idle again",
    )
    # Two clients take both idle servers (which one each gets is PgBouncer's choice): a's
    # server is among them, reset.
    with _connect(bouncer, autocommit=True) as c, _connect(bouncer, autocommit=True) as d:
        seen = {c.execute(_SHOW).fetchone()[:2], d.execute(_SHOW).fetchone()[:2]}
    assert seen == {(pid, "0"), (other_pid, "0")}


@pytest.mark.parametrize("admin", ["pgbouncer_admin", "pgbouncer_session_admin"])
def test_kill_drops_clients_and_servers_until_resume(
    admin: str, request: pytest.FixtureRequest, pg_server: EmbeddedPostgres
) -> None:
    bouncer: EmbeddedPgBouncer = request.getfixturevalue(admin)
    with _connect(bouncer) as conn:
        pid = _pid(conn)
        assert bouncer.admin("KILL postgres") == []
        with pytest.raises(errors.ProtocolViolation, match="database removed") as info:
            conn.execute("SELECT 1")
        assert (info.value.sqlstate, conn.closed) == ("08P01", True)
    assert [row for row in bouncer.admin("SHOW SERVERS") if row.database == "postgres"] == []
    wait_until(lambda: pid not in pg_server.backend_pids(), what=f"backend {pid} gone")
    with ThreadPoolExecutor(1) as run:
        late = run.submit(passes_query, bouncer)
        assert not wait([late], timeout=0.3).done  # a new client waits for RESUME
        bouncer.admin("RESUME postgres")
        assert late.result(timeout=5)


def test_reconnect_in_transaction_mode_renews_the_server_between_transactions(
    pgbouncer_admin: EmbeddedPgBouncer, pg_server: EmbeddedPostgres
) -> None:
    with _connect(pgbouncer_admin, autocommit=True) as conn:
        old = _pid(conn)
        pgbouncer_admin.admin("RECONNECT postgres")
        assert _pid(conn) != old  # no error: the client just has a new server
    wait_until(lambda: old not in pg_server.backend_pids(), what=f"backend {old} closed")


def test_reconnect_in_session_mode_waits_for_the_client_to_leave(
    pgbouncer_session_admin: EmbeddedPgBouncer, pg_server: EmbeddedPostgres
) -> None:
    with _connect(pgbouncer_session_admin, autocommit=True) as conn:
        old = _pid(conn)
        pgbouncer_session_admin.admin("RECONNECT postgres")
        assert _pid(conn) == old
        assert old in pg_server.backend_pids()
    wait_until(lambda: old not in pg_server.backend_pids(), what=f"backend {old} closed")


def test_pause_waits_for_open_transactions_and_queues_queries_until_resume(
    pgbouncer_admin: EmbeddedPgBouncer,
) -> None:
    bouncer = pgbouncer_admin
    with ThreadPoolExecutor(2) as run, _connect(bouncer) as busy, _connect(bouncer, autocommit=True) as idle:
        busy.execute("SELECT 1")  # a transaction holds a server
        pausing = run.submit(bouncer.admin, "PAUSE")
        assert not wait([pausing], timeout=0.3).done  # PAUSE returns once the servers are released
        busy.commit()
        assert pausing.result(timeout=5) == []
        query = run.submit(lambda: idle.execute("SELECT 42").fetchone())
        wait_until(lambda: _pool(bouncer).cl_waiting == 1, what="the query queued in the pause")
        assert not query.done()
        bouncer.admin("RESUME")
        assert query.result(timeout=5) == (42,)


@pytest.mark.parametrize(("admin", "idle_client_survives"), [
    ("pgbouncer_admin", True),  # an idle client holds no server in transaction mode
    ("pgbouncer_session_admin", False),
])
def test_postgres_restarting_behind_the_bouncer(
    admin: str, idle_client_survives: bool, request: pytest.FixtureRequest, pg_server: EmbeddedPostgres
) -> None:
    bouncer: EmbeddedPgBouncer = request.getfixturevalue(admin)
    with _connect(bouncer, autocommit=True) as idle, _connect(bouncer) as in_transaction:
        before = _pid(idle)
        _pid(in_transaction)
        pg_server.restart()
        with pytest.raises(errors.AdminShutdown, match="terminating connection due to administrator command"):
            in_transaction.execute("SELECT 1")  # PostgreSQL's goodbye, passed on by PgBouncer
        assert in_transaction.closed
        if idle_client_survives:
            assert _pid(idle) != before
        else:
            with pytest.raises(errors.AdminShutdown):
                idle.execute("SELECT 1")


def test_while_postgres_is_down_queries_wait_then_fail_then_fail_at_once(
    pg_admin: EmbeddedPostgres,
) -> None:
    need_pgbouncer()
    with EmbeddedPgBouncer(pg_admin.host, pg_admin.port, settings={"query_wait_timeout": "1"}) as bouncer:
        with _connect(bouncer, autocommit=True) as conn:
            _pid(conn)
            pg_admin.stop()
            began = time.monotonic()
            with pytest.raises(errors.ProtocolViolation, match="query_wait_timeout"):
                conn.execute("SELECT 1")  # queued while PgBouncer retried the login upstream
            assert time.monotonic() - began >= 1.0
            assert conn.closed
        with _connect(bouncer, autocommit=True) as late:  # PgBouncer answers the login itself
            began = time.monotonic()
            with pytest.raises(errors.ProtocolViolation, match=r"server login has been failing.*login_retry"):
                late.execute("SELECT 1")
            assert time.monotonic() - began < 1.0  # at once, not queued
        pg_admin.start()
        wait_until(lambda: passes_query(bouncer), timeout=10, what="the bouncer logging in again")


def test_restarting_the_bouncer_drops_its_clients(pgbouncer_admin: EmbeddedPgBouncer) -> None:
    port, pid = pgbouncer_admin.port, pgbouncer_admin.pid
    with _connect(pgbouncer_admin, autocommit=True) as conn:
        _pid(conn)
        pgbouncer_admin.restart()
        with pytest.raises(psycopg.OperationalError, match="server closed the connection unexpectedly"):
            conn.execute("SELECT 1")
    assert (pgbouncer_admin.port, pgbouncer_admin.running) == (port, True)
    assert pgbouncer_admin.pid != pid
    assert passes_query(pgbouncer_admin)


def test_password_is_asked_of_clients_and_given_upstream_but_never_shown() -> None:
    need_pgbouncer()
    with EmbeddedPostgres(password="s3cr/et") as pg, \
            EmbeddedPgBouncer(pg.host, pg.port, password="s3cr/et", pool_mode="session") as bouncer:
        assert bouncer.dsn == f"postgresql://postgres:s3cr%2Fet@127.0.0.1:{bouncer.port}/postgres"
        assert bouncer.url(password=False) == f"postgresql://postgres@127.0.0.1:{bouncer.port}/postgres"
        assert "s3cr" not in repr(bouncer)
        assert repr(bouncer).endswith(f"[running pid={bouncer.pid}, session, scram-sha-256]>")
        with psycopg.connect(bouncer.dsn) as conn:  # SCRAM to the bouncer, SCRAM upstream
            assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
        with pytest.raises(psycopg.OperationalError, match="SASL authentication failed"):
            psycopg.connect(bouncer.dsn.replace("s3cr", "nope")).close()
        assert bouncer.admin("SHOW VERSION")[0].version.startswith("PgBouncer ")


def test_restore_undoes_a_pause_a_kill_a_leaked_set_and_a_stopped_server(
    pgbouncer_admin: EmbeddedPgBouncer, pg_server: EmbeddedPostgres
) -> None:
    with _connect(pgbouncer_admin, autocommit=True) as conn:
        conn.execute("SET statement_timeout = '4321ms'")  # left on a server in the pool
    restore(pgbouncer_admin, pg_server)
    with _connect(pgbouncer_admin) as conn:  # would get that server, were it still there
        assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)
    pgbouncer_admin.admin("KILL postgres")
    pgbouncer_admin.admin("PAUSE")  # after KILL: once paused, the console refuses KILL
    pg_server.stop()
    restore(pgbouncer_admin, pg_server)
    assert passes_query(pgbouncer_admin)


def test_runs_as_an_unprivileged_user_under_root(pgbouncer_transaction: EmbeddedPgBouncer) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root makes PgBouncer run as another user")
    uid = Path(f"/proc/{pgbouncer_transaction.pid}").stat().st_uid
    assert pwd.getpwuid(uid).pw_name in ("nobody", "tether-pg")


def test_missing_pgbouncer_is_named_and_its_tests_skip(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(pgbouncer_module, "_SEARCH_PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="apt-get install pgbouncer"):
        pgbouncer_program()
    with pytest.raises(pytest.skip.Exception, match=r"no PgBouncer: .*apt-get install pgbouncer"):
        need_pgbouncer()
    bouncer = EmbeddedPgBouncer("127.0.0.1", 5432)
    with pytest.raises(FileNotFoundError), bouncer:
        pass
    assert not bouncer.running


def test_context_manager_starts_stops_and_cleans_up() -> None:
    need_pgbouncer()
    with EmbeddedPgBouncer("127.0.0.1", free_port()) as bouncer:  # no server upstream: it starts anyway
        pid, tmp = bouncer.pid, bouncer.config_path.parent
        assert pid is not None and bouncer.running
        assert sorted(p.name for p in tmp.iterdir()) == [
            "pgbouncer.ini", "pgbouncer.log", "pgbouncer.pid", "userlist.txt"
        ]
        bouncer.stop()
        bouncer.stop()  # idempotent
        assert (bouncer.pid, bouncer.running) == (None, False)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(bouncer.dsn, connect_timeout=2).close()
        bouncer.start()
        assert bouncer.admin("SHOW VERSION")
        pid = bouncer.pid
    assert not tmp.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # type: ignore[arg-type]


def test_bouncers_left_running_are_stopped_at_exit() -> None:
    need_pgbouncer()
    script = (
        "from tether.testing import EmbeddedPgBouncer\n"
        "b = EmbeddedPgBouncer('127.0.0.1', 5432)\n"
        "b.start()\n"
        "print(b.pid, b.config_path.parent)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, env=env)
    assert out.returncode == 0, out.stderr
    pid, tmp = out.stdout.split()
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid), 0)
    assert not Path(tmp).exists()


def test_failed_start_reports_the_log_tail() -> None:
    need_pgbouncer()
    bouncer = EmbeddedPgBouncer("127.0.0.1", 5432, settings={"no_such_setting": "1"})
    try:
        with pytest.raises(RuntimeError, match="exited with code 1") as info:
            bouncer.start()
        assert "unknown parameter: pgbouncer/no_such_setting" in str(info.value)
        assert not bouncer.running
    finally:
        bouncer.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": 0}, "port must be"),
        ({"pool_mode": "statementish"}, "pool_mode must be"),
        ({"default_pool_size": 0}, "default_pool_size and max_client_conn"),
        ({"password": ""}, "password must be non-empty"),
        ({"database": "my db"}, "database must be"),
        ({"settings": {"listen_port": "6432"}}, r"settings may not set \['listen_port'\]"),
    ],
)
def test_invalid_arguments_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EmbeddedPgBouncer("127.0.0.1", 5432, **kwargs)  # type: ignore[arg-type]
