"""Fast checks of docker-compose.yml, the Dockerfiles and the lock file (test_compose_stack.py
runs them for real)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from iacs.settings import known_environment_variables

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def _bind_mounts() -> list[tuple[str, str, str]]:
    mounts = []
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                mounts.append((name, source, volume.split(":")[1]))
    return mounts


def test_expected_services_are_there() -> None:
    assert {"directory", "postgres", "keycloak", "keycloak-config", "portal", "sync"} <= set(
        SERVICES
    )


@pytest.mark.parametrize(("service", "source", "target"), _bind_mounts())
def test_every_mounted_file_exists(service: str, source: str, target: str) -> None:
    assert (ROOT / source).exists(), f"{service} mounts {source}, which is not in the repo"


def test_no_project_files_are_mounted_over_the_installed_package() -> None:
    """The image's installed package carries the schema and realm; a mount would hide a gap."""
    for service, source, target in _bind_mounts():
        assert not target.startswith(("/app", "/opt/iacs", "/src")), (service, source, target)


def test_compose_v1_can_read_it() -> None:
    """Compose v1 rejects a top-level ``name:`` and needs no ``version:``."""
    assert "name" not in COMPOSE
    assert "version" not in COMPOSE


def test_only_the_tls_proxy_is_published() -> None:
    published = {name for name, service in SERVICES.items() if service.get("ports")}
    assert published == {"proxy"}


def test_every_long_running_service_has_a_healthcheck_and_dependents_wait_on_it() -> None:
    for name, service in SERVICES.items():
        if service.get("restart") == "no":
            continue
        assert "healthcheck" in service, f"{name} has no healthcheck"
    for name, service in SERVICES.items():
        for dependency, condition in service.get("depends_on", {}).items():
            expected = (
                "service_completed_successfully"
                if SERVICES[dependency].get("restart") == "no"
                else "service_healthy"
            )
            assert condition == {"condition": expected}, (name, dependency)


def test_image_names_can_be_overridden() -> None:
    from iacs.stack.docker import IMAGES

    variables = {spec.variable for spec in IMAGES}
    for name, service in SERVICES.items():
        image = service["image"]
        match = re.fullmatch(r"\$\{(IACS_[A-Z_]+_?IMAGE|IACS_IMAGE):-[^}]+\}", image)
        assert match and match.group(1) in variables, f"{name}: {image}"


def test_the_worker_is_nudged_by_the_portal() -> None:
    portal = SERVICES["portal"]["environment"]
    sync = SERVICES["sync"]["environment"]
    port = sync["IACS_SYNC__LISTEN"].rsplit(":", 1)[1]
    assert portal["IACS_PORTAL__SYNC_NUDGE_URL"] == f"http://sync:{port}/nudge"


def test_the_image_installs_from_the_lock_file_with_hashes() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes" in dockerfile and "requirements.lock" in dockerfile
    assert "--no-deps" in dockerfile
    for package in ("iacs", "approval_portal", "sync", "keycloak_config", "directory_schema"):
        assert f"COPY {package} " in dockerfile, package


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-dev.lock"])
def test_lock_files_pin_every_package_with_a_hash(lock: str) -> None:
    text = (ROOT / lock).read_text()
    entries = re.split(r"\n(?=[a-z0-9])", text.split("\n\n", 1)[1].strip())
    for entry in entries:
        if entry.startswith("#"):
            continue
        assert re.match(r"^[a-z0-9._-]+==[^ ]+ \\$", entry.splitlines()[0]), entry
        assert "--hash=sha256:" in entry, entry


def test_the_dev_lock_agrees_with_the_runtime_lock() -> None:
    def pins(lock: str) -> dict[str, str]:
        found = re.findall(r"^([a-z0-9._-]+)==(\S+)", (ROOT / lock).read_text(), re.M)
        return dict(found)

    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    differ = {name: (v, dev.get(name)) for name, v in runtime.items() if dev.get(name) != v}
    assert not differ, f"refresh both lock files together (docs/deployment.md): {differ}"


def test_every_iacs_setting_passed_is_one_the_settings_module_knows() -> None:
    known = known_environment_variables()
    passed: set[str] = set()
    for service in SERVICES.values():
        environment = service.get("environment", {})
        passed |= {key for key in environment if key.startswith("IACS_")}
    unknown = passed - known
    assert not unknown, f"docker-compose passes settings the code does not know: {unknown}"
    assert passed, "no IACS_ settings found: the anchor merge did not parse"


def test_keycloak_runs_in_production_mode_on_postgres() -> None:
    keycloak = SERVICES["keycloak"]
    assert keycloak["command"][:2] == ["start", "--optimized"]  # not start-dev
    assert keycloak["environment"]["KC_DB_URL"].startswith("jdbc:postgresql://")
    from iacs.stack.keycloak import KEYCLOAK_VERSION

    assert keycloak["image"].endswith(f":{KEYCLOAK_VERSION}}}"), "same Keycloak as the tests"
    dockerfile = (ROOT / "deploy" / "keycloak" / "Dockerfile").read_text()
    assert f"ARG KEYCLOAK_VERSION={KEYCLOAK_VERSION}" in dockerfile
    assert "--db=postgres" in dockerfile


def test_keycloak_reads_the_password_blocklist_the_way_the_launcher_does() -> None:
    """One mechanism: the runtime SPI option naming a directory that holds the realm's list."""
    from iacs.stack.keycloak import PASSWORD_BLOCKLISTS_DIR

    option = "--spi-password-policy--password-blacklist--blacklists-path="
    keycloak = SERVICES["keycloak"]
    (directory,) = [arg[len(option) :] for arg in keycloak["command"] if arg.startswith(option)]
    listed = "passwordBlacklist(password-blocklist.txt)"
    assert listed in (ROOT / "keycloak_config" / "realm.json").read_text()
    assert (PASSWORD_BLOCKLISTS_DIR / "password-blocklist.txt").is_file()
    mount = f"./keycloak_config/password-blocklist.txt:{directory}/password-blocklist.txt:ro"
    assert mount in keycloak["volumes"]


def test_every_directory_client_speaks_verified_ldaps() -> None:
    """Clients use ldaps://directory with the CA the directory publishes into a shared volume;
    Keycloak's LDAP federation trusts the same CA."""
    directory = SERVICES["directory"]
    command = directory["command"]
    assert "--tls-name=directory" in command and "--port=636" in command
    (published,) = [arg.split("=", 1)[1] for arg in command if arg.startswith("--publish-ca=")]
    volume = f"directory-ca:{Path(published).parent}"
    assert volume in directory["volumes"]
    assert "directory-ca" in COMPOSE["volumes"]
    for name, service in SERVICES.items():
        environment = service.get("environment", {})
        if "IACS_LDAP__URL" in environment:
            assert environment["IACS_LDAP__URL"] == "ldaps://directory:636", name
            assert environment["IACS_LDAP__CA_FILE"] == published, name
            assert any(v.startswith(volume) for v in service["volumes"]), name
    keycloak = SERVICES["keycloak"]
    assert keycloak["environment"]["KC_TRUSTSTORE_PATHS"] == published
    assert f"{volume}:ro" in keycloak["volumes"]


def test_keycloak_caches_every_managed_group_as_the_tests_do() -> None:
    from iacs.stack.keycloak import REALM_CACHE_ENTRIES

    environment = SERVICES["keycloak"]["environment"]
    assert int(environment["KC_CACHE_EMBEDDED_REALMS_MAX_COUNT"]) == REALM_CACHE_ENTRIES


def test_no_secret_is_written_into_the_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for line in text.splitlines():
        if re.search(r"(PASSWORD|SECRET)[A-Z_]*:[ \t]+(?!\$\{)\S", line):
            pytest.fail(f"literal secret in docker-compose.yml: {line.strip()}")


def test_every_command_is_one_the_cli_has() -> None:
    from click.testing import CliRunner

    from iacs.cli import main

    for name, service in SERVICES.items():
        command = service.get("command")
        if not command or command[0] != "iacs":
            continue
        result = CliRunner().invoke(main, [*command[1:3], "--help"])
        assert result.exit_code == 0, f"{name}: {' '.join(command)} is not a CLI command"


def test_the_launcher_sets_every_variable_the_file_requires(tmp_path: Path) -> None:
    from iacs.stack.docker import ComposeProject

    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", (ROOT / "docker-compose.yml").read_text()))
    project = ComposeProject(engine=None, project_dir=ROOT, state_dir=tmp_path, port=18443)  # type: ignore[arg-type]
    missing = required - set(project.environment())
    assert not missing, f"iacs compose up would not set: {missing}"
    assert (tmp_path / "tls" / "keycloak.key").exists()
    assert oct((tmp_path / "secrets.json").stat().st_mode & 0o777) == "0o600"


def test_compose_v1_validates_it_against_the_compose_specification(tmp_path: Path) -> None:
    """Debian's docker-compose 1.29 checks the file against the Compose Specification's schema
    (``compose_spec.json``, the one Compose v2 implements) and resolves every variable and
    anchor; no engine is needed for ``config``."""
    import shutil
    import subprocess

    from iacs.stack.docker import ComposeProject

    if shutil.which("docker-compose") is None:
        pytest.skip("Debian's docker-compose is not installed (scripts/setup.sh installs it)")
    project = ComposeProject(engine=None, project_dir=ROOT, state_dir=tmp_path, port=18443)  # type: ignore[arg-type]
    answer = subprocess.run(
        [
            "docker-compose",
            "--project-name",
            "iacs-check",
            "--file",
            "docker-compose.yml",
            "config",
        ],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **project.environment()},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    resolved = yaml.safe_load(answer.stdout)
    assert set(resolved["services"]) == set(SERVICES)
    assert "${" not in answer.stdout, "a variable was left unresolved"


def test_the_test_ca_signs_what_the_proxy_and_keycloak_serve(tmp_path: Path) -> None:
    from cryptography import x509

    from iacs.stack.docker import make_test_ca

    make_test_ca(tmp_path, ["localhost", "127.0.0.1"])
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    for name, expected in (("proxy", "localhost"), ("keycloak", "keycloak")):
        cert = x509.load_pem_x509_certificate((tmp_path / f"{name}.crt").read_bytes())
        cert.verify_directly_issued_by(ca)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert expected in names.get_values_for_type(x509.DNSName)


def test_a_dockerd_that_cannot_run_here_is_a_reason_to_skip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An engine that exits at once (no privileges, no cgroups) is ``EngineCannotStart``, the
    compose suite's reason to skip, with the engine's log; not a hang, not a silent pass."""
    from iacs.stack import docker

    fake = tmp_path / "dockerd"
    fake.write_text(
        "#!/bin/sh\necho 'failed to mount overlay: operation not permitted' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(docker, "engine_unavailable_reason", lambda: None)
    monkeypatch.setattr(docker, "_dockerd", lambda: str(fake))
    with pytest.raises(docker.EngineCannotStart, match="operation not permitted"):
        docker.start_engine(tmp_path / "engine", timeout=30)


SECRETS_BY_SERVICE = {
    # service: the secret settings its own code reads, and no other
    "directory": {
        "IACS_LDAP__ROOT_PASSWORD",
        "IACS_LDAP__PORTAL_BIND_PASSWORD",
        "IACS_LDAP__SYNC_BIND_PASSWORD",
        "IACS_LDAP__KEYCLOAK_BIND_PASSWORD",
    },
    "keycloak-config": {
        "IACS_KEYCLOAK__ADMIN_PASSWORD",
        "IACS_LDAP__KEYCLOAK_BIND_PASSWORD",
        "IACS_KEYCLOAK__SYNC_CLIENT_SECRET",
        "IACS_KEYCLOAK__PORTAL_CLIENT_SECRET",
        "IACS_KEYCLOAK__APPLICATION_CLIENT_SECRETS",
    },
    "portal": {
        "IACS_LDAP__PORTAL_BIND_PASSWORD",
        "IACS_KEYCLOAK__PORTAL_CLIENT_SECRET",
        "IACS_PORTAL__SECRET_KEY",
        "IACS_PORTAL__SESSION_STORE_URL",
        "IACS_SYNC__NUDGE_TOKEN",
    },
    "sync": {
        "IACS_LDAP__SYNC_BIND_PASSWORD",
        "IACS_LDAP__PORTAL_BIND_PASSWORD",  # the lifecycle schedule writes as the portal
        "IACS_KEYCLOAK__SYNC_CLIENT_SECRET",
        "IACS_SYNC__NUDGE_TOKEN",
    },
}
SECRET_SETTINGS = set().union(*SECRETS_BY_SERVICE.values())


def test_sec_each_container_holds_only_the_secrets_its_code_uses() -> None:
    """A compromised portal holds no sync client secret (which may manage users in Keycloak)
    nor another account's directory password, and so on for each service."""
    for name, allowed in SECRETS_BY_SERVICE.items():
        environment = SERVICES[name]["environment"]
        held = {key for key in environment if key in SECRET_SETTINGS}
        assert held == allowed, name
    assert "IACS_KEYCLOAK__SYNC_CLIENT_SECRET" not in SERVICES["portal"]["environment"]
