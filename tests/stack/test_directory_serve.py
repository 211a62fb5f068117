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

from iacs.directory.connection import ldap_server
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
    command += ["--publish-ca", str(data_dir.parent / "public" / "ca.pem")]
    return subprocess.Popen(
        [sys.executable, "-m", "iacs.cli", *command, "--host", "127.0.0.1"],
        env={**clean, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def bind(port: int, dn: str, password: str, ca_file: Path) -> bool:
    """A bind over ldaps, verified against the CA the directory made in its data dir."""
    server = ldap_server(f"ldaps://127.0.0.1:{port}", ca_file=ca_file, timeout=1)
    connection = ldap3.Connection(server, dn, password, receive_timeout=2, raise_exceptions=False)
    try:
        return bool(connection.bind())
    finally:
        connection.unbind()


def wait_for_bind(
    process: subprocess.Popen[str], port: int, dn: str, password: str, ca_file: Path
) -> None:
    for _ in range(300):
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if ca_file.exists() and bind(port, dn, password, ca_file):
                return
        except (ldap3.core.exceptions.LDAPException, ValueError):
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError("iacs directory serve did not answer a bind")


def test_directory_serve_bootstraps_serves_the_settings_passwords_and_stops_on_sigterm(tmp_path):
    data = tmp_path / "data"
    port, ca = free_port(), tmp_path / "public" / "ca.pem"  # the CA as published for clients
    process = serve(data, port, SECRETS)
    try:
        sync_dn = f"cn=sync,ou=services,{BASE_DN}"
        wait_for_bind(process, port, sync_dn, SECRETS["IACS_LDAP__SYNC_BIND_PASSWORD"], ca)
        assert bind(port, f"cn=admin,{BASE_DN}", SECRETS["IACS_LDAP__ROOT_PASSWORD"], ca)
        assert not bind(port, sync_dn, "sync-dev-secret", ca)  # the development default: unset
        assert slapd_processes_using(data / "slapd.conf")
        assert ca.read_bytes() == (data / "tls" / "ca.pem").read_bytes()
        assert not (ca.parent / "ca.key").exists()
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert slapd_processes_using(data / "slapd.conf") == []

    # A second start keeps the bootstrapped data and takes rotated passwords.
    rotated = {**SECRETS, "IACS_LDAP__PORTAL_BIND_PASSWORD": "serve-portal-rotated-0123"}
    process = serve(data, port, rotated)
    try:
        portal_dn = f"cn=portal,ou=services,{BASE_DN}"
        wait_for_bind(process, port, portal_dn, rotated["IACS_LDAP__PORTAL_BIND_PASSWORD"], ca)
        assert not bind(port, portal_dn, SECRETS["IACS_LDAP__PORTAL_BIND_PASSWORD"], ca)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert slapd_processes_using(data / "slapd.conf") == []


def test_directory_serve_without_a_root_password_refuses_to_start(tmp_path):
    env = {key: value for key, value in SECRETS.items() if key != "IACS_LDAP__ROOT_PASSWORD"}
    process = serve(tmp_path, free_port(), env)
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "IACS_LDAP__ROOT_PASSWORD" in output
    assert slapd_processes_using(tmp_path / "slapd.conf") == []
