"""The slapd launcher: checked config, bootstrap, readiness, clean failures, restarts."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import ldap3
import pytest

from iacs.directory import Directory
from iacs.settings import load_settings
from iacs.stack import slapd as launcher
from iacs.stack.process import MissingPrerequisite, ServerStartError, free_port
from iacs.stack.slapd import generate_config, hash_password, start_slapd
from iacs.stack.tls import ensure_server_tls
from tests.directory.factories import an_organization

pytestmark = pytest.mark.servers

BOOTSTRAP = {
    "dc=iacs,dc=example",
    "ou=services,dc=iacs,dc=example",
    "cn=portal,ou=services,dc=iacs,dc=example",
    "cn=sync,ou=services,dc=iacs,dc=example",
    "cn=keycloak,ou=services,dc=iacs,dc=example",
    "ou=people,dc=iacs,dc=example",
    "ou=system,dc=iacs,dc=example",
    "cn=help-desk,ou=system,dc=iacs,dc=example",
    "cn=password-policy,ou=system,dc=iacs,dc=example",
    "ou=organizations,dc=iacs,dc=example",
    "ou=surrogate-groups,dc=iacs,dc=example",
    "ou=practitioners,dc=iacs,dc=example",
    "ou=requests,dc=iacs,dc=example",
    "ou=audit,dc=iacs,dc=example",
}


def slapd_processes_using(config: Path) -> list[int]:
    """Pids of live processes whose command line names ``config``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(config).encode() in argv:
            found.append(int(entry.name))
    return found


def test_slapd_starts_with_the_project_schema(slapd, ldap_connect):
    connection = ldap_connect()
    connection.search("cn=Subschema", "(objectClass=*)", ldap3.BASE, attributes=["objectClasses"])
    classes = " ".join(connection.entries[0].objectClasses.values)
    for name in (
        "iacsOrganization",
        "iacsRoleGroup",
        "iacsUserGroup",
        "iacsSurrogateGroup",
        "iacsRequest",
        "iacsAuditRecord",
    ):
        assert f"NAME '{name}'" in classes
    assert "2.25.305342378931716885557679987082668800324.2.5" in classes


def test_the_bootstrap_tree_is_there(slapd, clean_tree, ldap_connect):
    connection = ldap_connect()
    connection.search(slapd.base_dn, "(objectClass=*)", attributes=["1.1"])
    assert {item["dn"] for item in connection.response} == BOOTSTRAP
    connection.search(slapd.root_dn.split(",", 1)[1], "(cn=help-desk)", attributes=["objectClass"])
    assert "iacsRoleGroup" in connection.entries[0].objectClass.values


def test_settings_env_configures_every_account(slapd, monkeypatch):
    for key, value in slapd.settings_env().items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    assert (settings.ldap.url, settings.ldap.base_dn) == (slapd.url, slapd.base_dn)
    for account in ("portal", "sync", "keycloak"):
        with Directory(settings.ldap, account) as directory:
            assert directory.ping(), account


def test_the_generated_config_passes_slaptest(tmp_path):
    for sub in ("data/main", "data/accesslog"):
        (tmp_path / sub).mkdir(parents=True)
    config = tmp_path / "slapd.conf"
    tls = ensure_server_tls(tmp_path / "tls")
    config.write_text(
        generate_config(tmp_path, root_password_hash=hash_password("x"), tls=tls, base_dn="o=test")
    )
    checked = subprocess.run(
        [launcher._find_program("slaptest"), "-u", "-f", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    text = config.read_text()
    assert "logpurge 07+00:00 01+00:00" in text and "memberof-group-oc iacsRoleGroup" in text
    assert "password-hash {ARGON2}" in text and "overlay ppolicy" in text
    assert "{{" not in text and "rootpw {ARGON2}" in text


def test_a_bad_config_is_refused_by_slaptest_before_anything_starts(tmp_path):
    with pytest.raises(ServerStartError) as failure:
        start_slapd(tmp_path, extra_config="no-such-directive on")
    assert "slaptest" in str(failure.value) and "no-such-directive" in str(failure.value)
    assert slapd_processes_using(tmp_path / "slapd.conf") == []


def test_a_slapd_that_dies_at_start_reports_its_log_and_leaves_no_process(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServerStartError) as failure:
            start_slapd(tmp_path, port=port, timeout=10)
    message = str(failure.value)
    assert "slapd" in message and "last lines of" in message and "bind" in message
    assert slapd_processes_using(tmp_path / "slapd.conf") == []


def test_missing_slapd_names_the_packages_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(launcher, "SBIN_DIRS", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingPrerequisite, match="apt-get install slapd ldap-utils"):
        start_slapd(tmp_path / "run")


def test_a_restart_keeps_the_data_and_the_directory_reconnects(tmp_path):
    port = free_port()
    secrets = {"portal": "portal-restart-pw"}
    first = start_slapd(tmp_path, port=port, service_passwords=secrets)
    with first:
        directory = Directory(first.ldap_settings(), "portal")
        directory.create_organization(an_organization())
        assert first.running
    assert not first.running and slapd_processes_using(first.config_path) == []
    with directory, start_slapd(tmp_path, port=port, service_passwords=secrets) as second:
        assert second.url == first.url and second.root_password != first.root_password
        # The pooled connection died with the first slapd; the pool replaces it.
        assert directory.get_organization("org-123456789") is not None
        assert os.stat(second.config_path).st_mode & 0o077 == 0
    assert slapd_processes_using(second.config_path) == []


def test_service_passwords_given_at_start_are_the_ones_that_bind(tmp_path):
    with start_slapd(tmp_path, service_passwords={"sync": "first-sync-secret"}) as first:
        pass
    with start_slapd(tmp_path, service_passwords={"sync": "rotated-sync-secret"}) as second:
        assert second.service_passwords["sync"] == "rotated-sync-secret"
        with Directory(second.ldap_settings(), "sync") as directory:
            assert directory.ping()
        with Directory(first.ldap_settings(url=second.url), "sync") as stale:
            assert not stale.ping()
