"""The realm as code: applied to a real Keycloak, idempotent, drift detected and corrected."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from iacs.settings import KeycloakSettings, Settings
from keycloak_config.apply import (
    REALM_FILE,
    Change,
    RealmDefinitionError,
    apply_realm,
    catalogue_applications,
    load_realm_definition,
)
from tests.fixtures.keycloak import AppliedRealm

APPS = ("pqri-feedback-reports", "psr")


def _settings(realm_name: str, url: str = "http://127.0.0.1:1") -> Settings:
    return Settings(keycloak=KeycloakSettings(url=url, realm=realm_name))


# -- loading (no server) ------------------------------------------------------------------------


def test_definition_fills_every_placeholder_from_the_settings() -> None:
    definition = load_realm_definition(_settings("iacs"))
    assert "${" not in json.dumps(definition)
    assert definition["realm"] == "iacs"
    ldap = definition["components"]["org.keycloak.storage.UserStorageProvider"][0]["config"]
    assert ldap["usersDn"] == ["ou=people,dc=iacs,dc=example"]
    assert ldap["bindDn"] == ["cn=keycloak,ou=services,dc=iacs,dc=example"]
    assert ldap["editMode"] == ["WRITABLE"]
    portal = next(c for c in definition["clients"] if c["clientId"] == "iacs-portal")
    assert portal["redirectUris"] == ["http://127.0.0.1:5000/auth/callback"]
    # No application secret given: the key is left out and Keycloak generates one.
    psr = next(c for c in definition["clients"] if c["clientId"] == "psr")
    assert "secret" not in psr


def test_without_federation_there_is_no_user_storage() -> None:
    assert "components" not in load_realm_definition(_settings("iacs"), with_federation=False)


def test_unknown_placeholder_is_a_clear_error() -> None:
    with pytest.raises(RealmDefinitionError, match=r"unknown placeholder\(s\) PORTAL_URI"):
        load_realm_definition(_settings("iacs"), PORTAL_URI="http://typo.example")


def test_placeholder_without_a_value_is_a_clear_error(tmp_path: Path) -> None:
    realm = json.loads(REALM_FILE.read_text())
    realm["displayName"] = "${DISPLAY_NAME}"
    path = tmp_path / "realm.json"
    path.write_text(json.dumps(realm))
    with pytest.raises(RealmDefinitionError, match=r"no value for placeholder\(s\) DISPLAY_NAME"):
        load_realm_definition(_settings("iacs"), path=path)
    assert load_realm_definition(_settings("iacs"), path=path, DISPLAY_NAME="IACS")[
        "displayName"
    ] == ("IACS")


def test_application_clients_and_roles_are_exactly_the_catalogues(tmp_path: Path) -> None:
    definition = load_realm_definition(_settings("iacs"))
    roles = definition["roles"]["client"]
    assert {client: {r["name"] for r in roles[client]} for client in roles} == {
        client: set(app_roles) for client, app_roles in catalogue_applications().items()
    }
    realm = json.loads(REALM_FILE.read_text())
    realm["roles"]["client"]["psr"].append({"name": "report-deleter"})
    path = tmp_path / "realm.json"
    path.write_text(json.dumps(realm))
    with pytest.raises(RealmDefinitionError, match="differ from the catalogue"):
        load_realm_definition(_settings("iacs"), path=path)


def test_change_reads_as_a_sentence() -> None:
    assert str(Change("update", "realm iacs", "accessTokenLifespan 600 → 300")) == (
        "update realm iacs: accessTokenLifespan 600 → 300"
    )
    assert str(Change("create", "client psr")) == "create client psr"


# -- applying (real Keycloak) ---------------------------------------------------------------


@pytest.mark.servers
def test_apply_creates_the_realm_and_a_second_apply_changes_nothing(
    keycloak, keycloak_admin_factory, realm_name: str
) -> None:
    definition = load_realm_definition(_settings(realm_name, keycloak.url), with_federation=False)
    master = keycloak_admin_factory()

    assert apply_realm(master, definition, dry_run=True)[0] == Change(
        "create", f"realm {realm_name}"
    )
    assert realm_name not in {r["realm"] for r in master.get_realms()}, "dry run wrote"

    changes = apply_realm(master, definition)
    assert Change("create", f"realm {realm_name}") in changes
    assert {str(c) for c in changes} >= {
        f"create client {client}" for client in ("iacs-portal", "iacs-sync", *APPS)
    }
    assert apply_realm(master, definition) == []
    assert apply_realm(master, definition, dry_run=True) == []

    admin = keycloak_admin_factory(realm_name)
    realm = admin.get_realm(realm_name)
    assert realm["registrationAllowed"] is True
    assert realm["loginWithEmailAllowed"] is False
    assert realm["bruteForceProtected"] is True
    assert realm["accessTokenLifespan"] == 300
    assert "length(12)" in realm["passwordPolicy"]
    for client_id in APPS:
        client = admin.get_client(admin.get_client_id(client_id))
        assert client["publicClient"] is False
        assert client["fullScopeAllowed"] is False
        assert client["standardFlowEnabled"] is True
        assert client["directAccessGrantsEnabled"] is False
        assert client["attributes"]["pkce.code.challenge.method"] == "S256"
        mappers = {m["name"]: m for m in client["protocolMappers"]}
        assert set(mappers) == {"affiliations", "app_roles", "iacs_claims_version", "audience"}
        affiliations = mappers["affiliations"]["config"]
        assert affiliations["user.attribute"] == f"iacs_affiliation.{client_id}"
        assert affiliations["aggregate.attrs"] == "true"
        assert affiliations["jsonType.label"] == "JSON"
        roles = {r["name"] for r in admin.get_client_roles(client["id"])}
        assert roles == set(catalogue_applications()[client_id])
    sync = admin.get_client(admin.get_client_id("iacs-sync"))
    assert sync["serviceAccountsEnabled"] is True
    assert sync["standardFlowEnabled"] is False


@pytest.mark.servers
def test_changed_setting_and_server_drift_are_detected_and_applied(
    applied_realm: AppliedRealm, keycloak_admin_factory
) -> None:
    master = keycloak_admin_factory()
    admin = keycloak_admin_factory(applied_realm.name)
    definition = copy.deepcopy(applied_realm.definition)

    definition["accessTokenLifespan"] = 240
    dry = apply_realm(master, definition, dry_run=True)
    assert [str(c) for c in dry] == [
        f"update realm {applied_realm.name}: accessTokenLifespan 300 → 240"
    ]
    assert admin.get_realm(applied_realm.name)["accessTokenLifespan"] == 300, "dry run wrote"
    assert apply_realm(master, definition) == dry
    assert admin.get_realm(applied_realm.name)["accessTokenLifespan"] == 240
    assert apply_realm(master, definition) == []

    # Someone changes the server by hand: apply puts the definition back.
    psr = admin.get_client_id("psr")
    mapper = next(m for m in admin.get_mappers_from_client(psr) if m["name"] == "affiliations")
    mapper["config"]["aggregate.attrs"] = "false"
    admin.update_client_mapper(psr, mapper["id"], mapper)
    admin.create_client_role(psr, {"name": "report-deleter"})
    client = admin.get_client(psr)
    client["attributes"]["pkce.code.challenge.method"] = ""
    client["redirectUris"] = ["https://evil.example/*"]
    admin.update_client(psr, client)
    admin.update_realm(applied_realm.name, {"bruteForceProtected": False})

    changes = {str(c) for c in apply_realm(master, definition)}
    redirect = applied_realm.redirect_uris["psr"]
    assert changes == {
        f"update realm {applied_realm.name}: bruteForceProtected false → true",
        'update client psr: redirectUris ["https://evil.example/*"] → '
        f"[\"{redirect}\"], attributes.pkce.code.challenge.method null → 'S256'",
        "update mapper psr/affiliations: config.aggregate.attrs 'false' → 'true'",
        "delete role psr/report-deleter: not in the definition",
    }
    assert apply_realm(master, definition) == []


@pytest.mark.servers
def test_changed_client_secret_is_detected_but_never_shown(
    applied_realm: AppliedRealm, keycloak_admin_factory
) -> None:
    master = keycloak_admin_factory()
    definition = copy.deepcopy(applied_realm.definition)
    psr = next(c for c in definition["clients"] if c["clientId"] == "psr")
    psr["secret"] = "a-new-secret-value-0123456789"
    changes = apply_realm(master, definition)
    assert [str(c) for c in changes] == ["update client psr: secret changed"]
    admin = keycloak_admin_factory(applied_realm.name)
    assert admin.get_client_secrets(admin.get_client_id("psr"))["value"] == psr["secret"]


@pytest.mark.servers
def test_federation_component_is_applied_with_exactly_its_mappers(
    keycloak, keycloak_admin_factory, realm_name: str
) -> None:
    """Keycloak accepts the LDAP component without reaching the directory (none runs here)."""
    definition = load_realm_definition(
        _settings(realm_name, keycloak.url), LDAP_URL="ldap://127.0.0.1:9"
    )
    master = keycloak_admin_factory()
    changes = [str(c) for c in apply_realm(master, definition)]
    assert "create user federation iacs-directory" in changes
    assert apply_realm(master, definition) == []

    admin = keycloak_admin_factory(realm_name)
    realm_id = admin.get_realm(realm_name)["id"]
    (ldap,) = admin.get_components(
        {"parent": realm_id, "type": "org.keycloak.storage.UserStorageProvider"}
    )
    assert ldap["config"]["editMode"] == ["WRITABLE"]
    assert ldap["config"]["usePasswordModifyExtendedOp"] == ["true"]
    assert ldap["config"]["bindCredential"] == ["**********"]
    mappers = {
        m["name"]: m["config"]
        for m in admin.get_components(
            {"parent": ldap["id"], "type": "org.keycloak.storage.ldap.mappers.LDAPStorageMapper"}
        )
    }
    assert mappers["username"]["ldap.attribute"] == ["uid"]
    assert mappers["first name"]["ldap.attribute"] == ["givenName"]
    assert mappers["last name"]["ldap.attribute"] == ["sn"]
    assert mappers["email"]["ldap.attribute"] == ["mail"]
    assert set(mappers) == {
        "username",
        "email",
        "first name",
        "last name",
        "common name",
        "display name",
    }
    # Applying again without federation leaves the component alone.
    without = load_realm_definition(_settings(realm_name, keycloak.url), with_federation=False)
    assert apply_realm(master, without) == []


def test_application_values_come_from_arguments_then_settings_then_dev_defaults() -> None:
    from keycloak_config.apply import placeholders_from_settings

    settings = _settings("iacs")
    settings.keycloak.application_redirect_uris.update(
        {"pqri-feedback-reports": "https://pqri.example/cb", "psr": "https://ignored.example/cb"}
    )
    values = placeholders_from_settings(
        settings,
        applications={"psr": {"redirect_uri": "https://psr.example/cb", "secret": "s3"}},
    )
    assert values["PSR_REDIRECT_URI"] == "https://psr.example/cb"
    assert values["PSR_CLIENT_SECRET"] == "s3"
    assert values["PQRI_FEEDBACK_REPORTS_REDIRECT_URI"] == "https://pqri.example/cb"
    assert values["PQRI_FEEDBACK_REPORTS_CLIENT_SECRET"] is None  # Keycloak generates it
    assert values["PORTAL_URL"] == "http://127.0.0.1:5000"


@pytest.mark.servers
def test_apply_from_settings_as_the_cli_calls_it(keycloak, realm_name: str) -> None:
    from keycloak_config.apply import apply_from_settings

    settings = Settings(
        keycloak=KeycloakSettings(
            url="http://127.0.0.1:1",  # overridden below, as the CLI's --url would
            realm=realm_name,
            admin_username=keycloak.admin_username,
            admin_password=keycloak.admin_password,
        )
    )
    first = apply_from_settings(settings, with_federation=False, keycloak_url=keycloak.url)
    assert first[0] == Change("create", f"realm {realm_name}")
    assert (
        apply_from_settings(
            settings, with_federation=False, keycloak_url=keycloak.url, dry_run=True
        )
        == []
    )
