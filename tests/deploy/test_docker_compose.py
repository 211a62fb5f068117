"""docker-compose.yml cannot run here (no Docker engine); these tests keep it honest."""

from __future__ import annotations

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


def test_the_schema_and_realm_the_tests_use_are_the_ones_mounted() -> None:
    from directory_schema import schema_path
    from keycloak_config.apply import REALM_FILE

    sources = {(ROOT / source).resolve() for _, source, _ in _bind_mounts()}
    assert Path(schema_path()).resolve().parent in sources
    assert Path(REALM_FILE).resolve().parent in sources


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
    assert keycloak["command"][0] == "start"  # not start-dev
    assert keycloak["environment"]["KC_DB"] == "postgres"
    from iacs.stack.keycloak import KEYCLOAK_VERSION

    assert keycloak["image"].endswith(f":{KEYCLOAK_VERSION}"), "same Keycloak as the tests"


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
