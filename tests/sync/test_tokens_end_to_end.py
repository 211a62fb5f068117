"""The realm as code + the sync worker: real tokens carry the contracted claims (APP-2, SUG-6).

Uses the project's ``applied_realm`` (``keycloak_config/realm.json`` without LDAP federation)
and the sync worker's own confidential client with its narrow rights. Users are created through
the admin API as a stand-in for LDAP federation (accounts only; authority comes from the sync).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jsonschema
import pytest

from iacs.catalogue import load_catalogue
from sync.gateway import KeycloakGateway
from sync.reconcile import reconcile

from .conftest import PASSWORD
from .factories import ORG_A, ORG_B, end_user, security_official, surrogate_end_user, world

pytestmark = pytest.mark.servers
SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "keycloak_config" / "claims.schema.json").read_text()
)
CATALOGUE = load_catalogue()
PEOPLE = {
    "sue": [surrogate_end_user("acme"), end_user(ORG_B, "billing")],
    "sam": [security_official(ORG_A)],
}


@pytest.fixture
def applied(applied_realm):
    return applied_realm


def _payload(jwt: str) -> dict:
    body = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def _tokens(applied, client_id: str, username: str) -> dict:
    from tests.fixtures.keycloak import browser_code_flow, redeem_code

    redirect = applied.redirect_uris[client_id]
    flow = browser_code_flow(applied.issuer, client_id, redirect, username, PASSWORD)
    assert "code" in flow.params, flow.location
    answer = redeem_code(
        applied.issuer, client_id, applied.client_secrets[client_id], redirect, flow
    )
    answer.raise_for_status()
    return answer.json()


@pytest.fixture
def synced(applied):
    admin = applied.admin()
    for username in PEOPLE:
        admin.create_user(
            {
                "username": username,
                "enabled": True,
                "email": f"{username}@example.test",
                "emailVerified": True,
                "firstName": username.title(),
                "lastName": "Test",
                "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}],
            }
        )
    gateway = KeycloakGateway(applied.service_account(applied.settings.keycloak.sync_client_id))
    first = reconcile(gateway, world(PEOPLE), CATALOGUE)
    assert first.report.problems == [] and first.report.missing_users == []
    assert reconcile(gateway, world(PEOPLE), CATALOGUE).report.total_writes == 0
    return applied


def test_sug_6_psr_token_shows_psr_only_through_the_provider_affiliation(synced) -> None:
    claims = _payload(_tokens(synced, "psr", "sue")["access_token"])
    jsonschema.validate(claims, SCHEMA)
    assert claims["iacs_claims_version"] == 1
    assert sorted(claims["app_roles"]) == ["report-requester", "report-viewer"]
    by_kind = {a["surrogate"]: a for a in claims["affiliations"]}
    assert by_kind[True]["app_roles"] == []
    assert by_kind[True]["organizations"] == [ORG_A, ORG_B]
    assert by_kind[False]["organization"] == ORG_B
    assert sorted(by_kind[False]["app_roles"]) == ["report-requester", "report-viewer"]


def test_app_2_pqri_token_carries_only_pqri_roles(synced) -> None:
    claims = _payload(_tokens(synced, "pqri-feedback-reports", "sue")["access_token"])
    jsonschema.validate(claims, SCHEMA)
    assert claims["app_roles"] == ["report-viewer"]
    assert all(a["app_roles"] == ["report-viewer"] for a in claims["affiliations"])
    assert "report-requester" not in json.dumps(claims)


def test_org_6_security_official_token_has_the_affiliation_and_no_roles(synced) -> None:
    claims = _payload(_tokens(synced, "psr", "sam")["access_token"])
    jsonschema.validate(claims, SCHEMA)
    assert claims.get("app_roles", []) == []
    (affiliation,) = claims["affiliations"]
    assert affiliation["role"] == "security_official" and affiliation["app_roles"] == []
