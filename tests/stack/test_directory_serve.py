"""``iacs directory serve``: the production entrypoint of the directory, run as the CLI itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ldap3
import pytest

from iacs.stack.process import free_port
from tests.stack.test_slapd_launcher import slapd_processes_using

pytestmark = pytest.mark.servers

BASE_DN = "dc=iacs,dc=example"
SECRETS = {
    "IACS_LDAP__ROOT_PASSWORD": "serve-root-secret-0123",
    "IACS_LDAP__PORTAL_BIND_PASSWORD": "serve-portal-secret-0123",
    "IACS_LDAP__SYNC_BIND_PASSWORD": "serve-sync-secret-0123",
    "IACS_LDAP__KEYCLOAK_BIND_PASSWORD": "serve-keycloak-secret-0123",
}


def serve(data_dir: Path, port: int, env: dict[str, str]) -> subprocess.Popen[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("IACS_")}
    command = ["directory", "serve", "--data-dir", str(data_dir), "--port", str(port)]
    return subprocess.Popen(
        [sys.executable, "-m", "iacs.cli", *command, "--host", "127.0.0.1"],
        env={**clean, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def bind(port: int, dn: str, password: str) -> bool:
    server = ldap3.Server(f"ldap://127.0.0.1:{port}", get_info=ldap3.NONE, connect_timeout=1)
    connection = ldap3.Connection(server, dn, password, receive_timeout=2, raise_exceptions=False)
    try:
        return bool(connection.bind())
    finally:
        connection.unbind()


def wait_for_bind(process: subprocess.Popen[str], port: int, dn: str, password: str) -> None:
    for _ in range(300):
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if bind(port, dn, password):
                return
        except ldap3.core.exceptions.LDAPException:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError("iacs directory serve did not answer a bind")


def test_directory_serve_bootstraps_serves_the_settings_passwords_and_stops_on_sigterm(tmp_path):
    port = free_port()
    process = serve(tmp_path, port, SECRETS)
    try:
        sync_dn = f"cn=sync,ou=services,{BASE_DN}"
        wait_for_bind(process, port, sync_dn, SECRETS["IACS_LDAP__SYNC_BIND_PASSWORD"])
        assert bind(port, f"cn=admin,{BASE_DN}", SECRETS["IACS_LDAP__ROOT_PASSWORD"])
        assert not bind(port, sync_dn, "sync-dev-secret")  # the development default is not set
        assert slapd_processes_using(tmp_path / "slapd.conf")
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert slapd_processes_using(tmp_path / "slapd.conf") == []

    # A second start keeps the bootstrapped data and takes rotated passwords.
    rotated = {**SECRETS, "IACS_LDAP__PORTAL_BIND_PASSWORD": "serve-portal-rotated-0123"}
    process = serve(tmp_path, port, rotated)
    try:
        portal_dn = f"cn=portal,ou=services,{BASE_DN}"
        wait_for_bind(process, port, portal_dn, rotated["IACS_LDAP__PORTAL_BIND_PASSWORD"])
        assert not bind(port, portal_dn, SECRETS["IACS_LDAP__PORTAL_BIND_PASSWORD"])
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert slapd_processes_using(tmp_path / "slapd.conf") == []


def test_directory_serve_without_a_root_password_refuses_to_start(tmp_path):
    env = {key: value for key, value in SECRETS.items() if key != "IACS_LDAP__ROOT_PASSWORD"}
    process = serve(tmp_path, free_port(), env)
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "IACS_LDAP__ROOT_PASSWORD" in output
    assert slapd_processes_using(tmp_path / "slapd.conf") == []
