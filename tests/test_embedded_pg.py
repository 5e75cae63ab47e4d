"""EmbeddedPostgres: a real server on 127.0.0.1, started, restarted, administered."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tether.testing import EmbeddedPostgres

psycopg = pytest.importorskip("psycopg")


def _server_address(dsn: str) -> tuple[str, int]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT host(inet_server_addr()), inet_server_port()").fetchone()
    assert row is not None
    return row[0], row[1]


def test_query_over_tcp_on_loopback(pg_server: EmbeddedPostgres, pg_dsn: str) -> None:
    assert pg_dsn == f"postgresql://postgres@127.0.0.1:{pg_server.port}/postgres"
    assert _server_address(pg_dsn) == ("127.0.0.1", pg_server.port)


def test_repr_shows_address_and_state(pg_server: EmbeddedPostgres, pg_dsn: str) -> None:
    assert repr(pg_server) == (
        f"<EmbeddedPostgres 127.0.0.1:{pg_server.port} [running pid={pg_server.pid}, trust]>"
    )


def test_terminate_backends_kills_a_held_connection(pg_admin: EmbeddedPostgres) -> None:
    with psycopg.connect(pg_admin.dsn, autocommit=True) as held:
        held.execute("SELECT 1")
        assert held.info.backend_pid in pg_admin.backend_pids()
        assert pg_admin.terminate_backends() >= 1
        assert held.info.backend_pid not in pg_admin.backend_pids()
        with pytest.raises(psycopg.OperationalError):
            held.execute("SELECT 1")


def test_restart_keeps_the_port_and_accepts_new_connections(pg_admin: EmbeddedPostgres) -> None:
    port, pid = pg_admin.port, pg_admin.pid
    with psycopg.connect(pg_admin.dsn, autocommit=True) as held:
        pg_admin.restart()
        with pytest.raises(psycopg.OperationalError):
            held.execute("SELECT 1")
    assert (pg_admin.port, pg_admin.running) == (port, True)
    assert pg_admin.pid != pid
    assert _server_address(pg_admin.dsn) == ("127.0.0.1", port)


def test_stopped_server_refuses_connections(pg_admin: EmbeddedPostgres) -> None:
    pg_admin.stop()
    pg_admin.stop()  # idempotent
    assert (pg_admin.pid, pg_admin.running) == (None, False)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg_admin.dsn, connect_timeout=2).close()


def test_context_manager_starts_stops_and_cleans_up() -> None:
    with EmbeddedPostgres() as pg:
        pid, data_dir = pg.pid, pg.data_dir
        assert pid is not None and pg.running
        assert _server_address(pg.dsn)[1] == pg.port
        assert "ready to accept connections" in pg.log_path.read_text()
    assert (pg.pid, pg.running) == (None, False)
    assert not data_dir.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_password_mode_rejects_a_wrong_password() -> None:
    with EmbeddedPostgres(password="s3cr/et") as pg:
        assert pg.url(password=False) == f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
        assert pg.dsn == f"postgresql://postgres:s3cr%2Fet@127.0.0.1:{pg.port}/postgres"
        assert "s3cr" not in repr(pg)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(pg.dsn.replace("s3cr%2Fet", "wrong")).close()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(pg.url(password=False)).close()
        assert _server_address(pg.dsn) == ("127.0.0.1", pg.port)
        assert pg.backend_pids() == []  # administration still works over the unix socket


def test_two_instances_run_at_once(pg_server: EmbeddedPostgres, pg_dsn: str) -> None:
    with EmbeddedPostgres(max_connections=20) as other:
        assert other.port != pg_server.port
        assert other.socket_dir != pg_server.socket_dir
        with psycopg.connect(pg_dsn) as a, psycopg.connect(other.dsn) as b:
            a.execute("CREATE TEMP TABLE only_here (x int)")
            assert b.execute("SHOW max_connections").fetchone() == ("20",)
            assert a.execute("SHOW max_connections").fetchone() == ("200",)
            assert b.execute("SELECT to_regclass('only_here')").fetchone() == (None,)


def test_given_data_dir_persists_across_instances(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    with EmbeddedPostgres(data_dir=data_dir) as pg, psycopg.connect(pg.dsn) as conn:
        conn.execute("CREATE TABLE kept AS SELECT 42 AS x")
        conn.commit()
    assert (data_dir / "PG_VERSION").exists()  # not removed: the caller owns it
    with EmbeddedPostgres(data_dir=data_dir) as pg, psycopg.connect(pg.dsn) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(42,)]
    slow = EmbeddedPostgres(data_dir=data_dir, start_timeout=0.001)
    try:
        with pytest.raises(RuntimeError, match="not accepting connections"):
            slow.start()
        assert (slow.running, slow.pid) == (False, None)
    finally:
        slow.close()


def test_servers_left_running_are_stopped_at_exit() -> None:
    script = (
        "from tether.testing import EmbeddedPostgres\n"
        "pg = EmbeddedPostgres()\n"
        "pg.start()\n"
        "print(pg.pid, pg.data_dir)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, env=env
    )
    assert out.returncode == 0, out.stderr
    pid, data_dir = out.stdout.split()
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid), 0)
    assert not Path(data_dir).exists()


def test_failed_start_reports_the_log_tail() -> None:
    pg = EmbeddedPostgres(settings={"shared_buffers": "lots"})
    try:
        with pytest.raises(RuntimeError, match="exited with code") as info:
            pg.start()
        assert "shared_buffers" in str(info.value)
        assert not pg.running
    finally:
        pg.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": 0}, "port must be"),
        ({"max_connections": 0}, "max_connections must be"),
        ({"password": ""}, "password must be non-empty"),
        ({"settings": {"port": "5432"}}, r"settings may not set \['port'\]"),
    ],
)
def test_invalid_arguments_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EmbeddedPostgres(**kwargs)  # type: ignore[arg-type]
