"""An operator's mistake is one line naming what failed and where, for every command.

The CLI runs as a subprocess (what an operator runs: real stderr, real exit code) against the
session's real slapd, or against a port nothing listens on for "unreachable".
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata

import pytest

from iacs.cli import DISTRIBUTION
from iacs.settings import Settings, settings_to_env
from iacs.stack.process import free_port
from iacs.stack.slapd import SlapdInstance


def run_iacs(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """``iacs <args>`` in a process of its own with exactly ``env``'s settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IACS_")}
    return subprocess.run(
        [sys.executable, "-m", "iacs.cli", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def stack_env(tmp_path) -> Callable[..., dict[str, str]]:
    """``stack_env(slapd=None, **overrides)``: the development settings (against ``slapd``
    when given), the worker's files in a temporary directory, with ``overrides``."""

    def make(slapd: SlapdInstance | None = None, **overrides: str) -> dict[str, str]:
        settings = Settings(environment="development")
        if slapd is not None:
            settings = Settings(environment="development", ldap=slapd.ldap_settings())
        env = settings_to_env(settings)
        env["IACS_SYNC__LISTEN"] = f"127.0.0.1:{free_port()}"
        env["IACS_SYNC__CURSOR_FILE"] = str(tmp_path / "cursor.json")
        # Set, never reached: the portal checks its settings, then the directory, then Redis.
        env["IACS_PORTAL__SESSION_STORE_URL"] = "redis://127.0.0.1:1/0"
        return {**env, **overrides}

    return make


def one_line(result: subprocess.CompletedProcess) -> str:
    """The single stderr line of a failed command (asserting there is exactly one)."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("iacs: "), lines[0]
    return lines[0]


COMMANDS = [
    ("sync", "once"),
    ("sync", "run"),
    ("maintenance",),
    ("portal", "serve", "--port", "0"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_wrong_ldap_port_is_one_line_naming_the_url(command: tuple[str, ...], stack_env):
    url = f"ldaps://127.0.0.1:{free_port()}"
    result = run_iacs(*command, env=stack_env(IACS_LDAP__URL=url))
    line = one_line(result)
    assert f"cannot reach the directory at {url}" in line
    assert "refused" in line.lower()


def test_a_bad_sync_bind_password_names_the_account(slapd: SlapdInstance, stack_env):
    env = stack_env(slapd, IACS_LDAP__SYNC_BIND_PASSWORD="not-the-sync-password")
    line = one_line(run_iacs("sync", "once", env=env))
    sync_dn = slapd.ldap_settings().sync_bind_dn
    assert "refused the sync account's password" in line
    assert sync_dn in line
    assert slapd.ldap_settings().url in line


def test_a_bad_portal_bind_password_stops_the_portal_at_start(slapd: SlapdInstance, stack_env):
    env = stack_env(slapd, IACS_LDAP__PORTAL_BIND_PASSWORD="not-the-portal-password")
    line = one_line(run_iacs("portal", "serve", "--port", str(free_port()), env=env))
    assert "refused the portal account's password" in line
    assert slapd.ldap_settings().portal_bind_dn in line


def test_an_unreachable_keycloak_names_its_url(slapd: SlapdInstance, stack_env):
    url = f"http://127.0.0.1:{free_port()}"
    env = stack_env(slapd, IACS_KEYCLOAK__URL=url)
    for command in (("sync", "once"), ("sync", "run"), ("keycloak", "apply")):
        line = one_line(run_iacs(*command, env=env))
        assert f"cannot reach Keycloak at {url} (connection refused)" in line, command


def test_debug_shows_the_traceback(stack_env):
    url = f"ldaps://127.0.0.1:{free_port()}"
    result = run_iacs("--debug", "sync", "once", env=stack_env(IACS_LDAP__URL=url))
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert "DirectoryUnavailable" in result.stderr


def test_version_is_the_installed_packages():
    result = run_iacs("--version", env={})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"iacs, version {metadata.version(DISTRIBUTION)}"


def test_a_bad_sync_client_secret_names_the_client_and_the_setting(slapd, applied_realm, stack_env):
    keycloak = applied_realm.settings.keycloak
    env = stack_env(
        slapd,
        IACS_KEYCLOAK__URL=applied_realm.url,
        IACS_KEYCLOAK__REALM=applied_realm.name,
        IACS_KEYCLOAK__SYNC_CLIENT_SECRET="not-the-sync-secret",
    )
    line = one_line(run_iacs("sync", "once", env=env))
    assert f"Keycloak at {applied_realm.url} answered 401" in line
    assert f"client {keycloak.sync_client_id}" in line
    assert "IACS_KEYCLOAK__SYNC_CLIENT_SECRET" in line


def test_sync_once_draws_progress_and_prints_one_summary_line(slapd, applied_realm, stack_env):
    sync_client = applied_realm.settings.keycloak.sync_client_id
    env = stack_env(
        slapd,
        IACS_KEYCLOAK__URL=applied_realm.url,
        IACS_KEYCLOAK__REALM=applied_realm.name,
        IACS_KEYCLOAK__SYNC_CLIENT_SECRET=applied_realm.client_secrets[sync_client],
    )
    result = run_iacs("sync", "once", "--progress", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sync once: "), result.stdout
    assert "read Keycloak" in result.stderr  # the bar's stages, on stderr only
    assert "read Keycloak" not in result.stdout


def test_a_bad_admin_password_names_the_admin_and_the_setting(keycloak, stack_env):
    env = stack_env(
        IACS_KEYCLOAK__URL=keycloak.url,
        IACS_KEYCLOAK__ADMIN_USERNAME=keycloak.admin_username,
        IACS_KEYCLOAK__ADMIN_PASSWORD="not-the-admin-password",
    )
    line = one_line(run_iacs("keycloak", "apply", "--dry-run", "--no-federation", env=env))
    assert f"Keycloak at {keycloak.url} answered 401 for admin {keycloak.admin_username}" in line
    assert "IACS_KEYCLOAK__ADMIN_PASSWORD" in line
