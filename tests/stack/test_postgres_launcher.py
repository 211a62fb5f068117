"""The PostgreSQL launcher: loopback only, passwords, the application's role, never left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from iacs.stack.postgres import start_postgres
from iacs.stack.process import ServerStartError, port_open


def test_postgres_starts_with_a_database_owned_by_a_plain_role_and_stops(tmp_path: Path):
    with start_postgres(tmp_path / "pg", database="kc", username="kc_user") as instance:
        assert instance.psql("SELECT current_user, current_database()") == "kc_user|kc"
        assert instance.psql("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") == "f"
        instance.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
        assert instance.psql("SELECT count(*) FROM t") == "1"
        assert instance.jdbc_url == f"jdbc:postgresql://127.0.0.1:{instance.port}/kc"
        data_dir, port = instance.data_dir, instance.port
    assert not instance.running
    assert not port_open("127.0.0.1", port)
    if instance.owned_data_dir:  # made outside run_dir (we are root): removed with the server
        assert not data_dir.exists()


def test_sec_postgres_refuses_a_login_without_the_password(postgres_server):
    """Password logins only (SCRAM), also from loopback: a wrong password is refused."""
    from iacs.stack.postgres import _psql

    with pytest.raises(RuntimeError, match="password authentication failed"):
        _psql(
            postgres_server.bindir,
            postgres_server.port,
            postgres_server.username,
            "wrong-" + postgres_server.password,
            postgres_server.database,
            "SELECT 1",
        )


def test_a_port_in_use_fails_the_start_and_leaves_nothing(tmp_path: Path, postgres_server):
    with pytest.raises(ServerStartError):
        start_postgres(tmp_path / "second", port=postgres_server.port, timeout=15)
    assert postgres_server.psql("SELECT 1") == "1"


def test_bad_names_are_refused_before_anything_starts(tmp_path: Path):
    with pytest.raises(ValueError, match="unsupported PostgreSQL name"):
        start_postgres(tmp_path / "pg", database="kc; DROP")
    assert not (tmp_path / "pg").exists()
