"""Sign in to the applied realm through Keycloak's real login form, code flow with PKCE.

No federation here: the person is created through the admin API. The affiliation comes from a
GROUP attribute, as the sync worker writes it, and must reach the application's token through
its aggregating user-attribute mapper (and only that application's token: APP-2).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator

import pytest
import requests
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidClaimError
from joserfc.jwk import KeySet

from tests.fixtures.keycloak import (
    AppliedRealm,
    apply_test_realm,
    browser_code_flow,
    delete_realm_if_present,
    redeem_code,
    unique_realm_name,
)

pytestmark = pytest.mark.servers

PASSWORD = "Correct-Horse-Battery-9"
PSR_AFFILIATION = {
    "role": "end_user",
    "organization": "org-123456789",
    "group": "billing",
    "surrogate": False,
    "roles": ["report-viewer", "report-requester"],
}
PQRI_AFFILIATION = {"role": "end_user", "organization": "org-123456789", "roles": ["x"]}


@pytest.fixture(scope="module")
def applied_realm(keycloak) -> Iterator[AppliedRealm]:
    """One applied realm for the module: signing in changes nothing the other tests see."""
    name = unique_realm_name()
    try:
        yield apply_test_realm(keycloak, name)
    finally:
        delete_realm_if_present(keycloak, name)


@pytest.fixture(scope="module")
def end_user_group(applied_realm: AppliedRealm) -> str:
    """A leaf group that carries affiliations and PS&R roles, as the sync worker writes it."""
    admin = applied_realm.admin()
    top = admin.create_group({"name": "iacs"})
    leaf = admin.create_group(
        {
            "name": "end-user",
            "attributes": {
                "iacs_affiliation.psr": [json.dumps(PSR_AFFILIATION)],
                "iacs_affiliation.pqri-feedback-reports": [json.dumps(PQRI_AFFILIATION)],
            },
        },
        parent=top,
    )
    psr = admin.get_client_id("psr")
    admin.assign_group_client_roles(leaf, psr, [admin.get_client_role(psr, "report-viewer")])
    return leaf


@pytest.fixture
def person(applied_realm: AppliedRealm, end_user_group: str) -> str:
    """A new person (own brute-force counters, own sessions) in the end-user group."""
    admin = applied_realm.admin()
    username = f"eve-{uuid.uuid4().hex[:6]}"
    user_id = admin.create_user(
        {
            "username": username,
            "enabled": True,
            "email": f"{username}@example.test",
            "emailVerified": True,
            "firstName": "Eve",
            "lastName": "Tester",
            "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}],
        }
    )
    admin.group_user_add(user_id, end_user_group)
    return username


def _jwks(applied_realm: AppliedRealm):
    keys = requests.get(f"{applied_realm.issuer}/protocol/openid-connect/certs", timeout=30)
    keys.raise_for_status()
    return KeySet.import_key_set(keys.json())


def _sign_in(applied_realm: AppliedRealm, client_id: str, username: str) -> tuple[dict, object]:
    flow = browser_code_flow(
        applied_realm.issuer,
        client_id,
        applied_realm.redirect_uris[client_id],
        username,
        PASSWORD,
    )
    assert flow.location.startswith(applied_realm.redirect_uris[client_id] + "?"), flow.location
    assert flow.params.get("state") == flow.state, "state must come back unchanged"
    assert flow.params.get("iss") == applied_realm.issuer
    assert "code" in flow.params, flow.params
    response = redeem_code(
        applied_realm.issuer,
        client_id,
        applied_realm.client_secrets[client_id],
        applied_realm.redirect_uris[client_id],
        flow,
    )
    assert response.status_code == 200, response.text
    return response.json(), flow


def _verified(token: str, applied_realm: AppliedRealm, audience: str, nonce: str | None = None):
    options = {
        "iss": {"essential": True, "value": applied_realm.issuer},
        "aud": {"essential": True, "value": audience},
        "exp": {"essential": True},
    }
    if nonce is not None:
        options["nonce"] = {"essential": True, "value": nonce}
    decoded = jwt.decode(token, _jwks(applied_realm), algorithms=["RS256", "PS256", "ES256"])
    jwt.JWTClaimsRegistry(leeway=30, **options).validate(decoded.claims)
    return decoded.claims


def test_code_flow_with_pkce_gives_verified_tokens_with_the_app_claims(
    applied_realm: AppliedRealm, person: str
) -> None:
    tokens, flow = _sign_in(applied_realm, "psr", person)

    id_token = _verified(tokens["id_token"], applied_realm, "psr", nonce=flow.nonce)
    assert id_token["preferred_username"] == person
    # The group attribute is aggregated into the user-attribute mapper's claim, parsed as JSON;
    # the PQRI attribute of the same group does not leak into the PS&R token (APP-2).
    assert id_token["affiliations"] == [PSR_AFFILIATION]
    assert id_token["app_roles"] == ["report-viewer"]
    assert id_token["iacs_claims_version"] == 1

    access = _verified(tokens["access_token"], applied_realm, "psr")
    assert "psr" in (access["aud"] if isinstance(access["aud"], list) else [access["aud"]])
    assert access["affiliations"] == [PSR_AFFILIATION]
    assert access["app_roles"] == ["report-viewer"]
    assert access["iacs_claims_version"] == 1
    # Full scope is off: no realm roles, and no roles of any other client.
    assert set(access.get("resource_access", {})) <= {"psr"}
    assert "realm_access" not in access

    userinfo = requests.get(
        f"{applied_realm.issuer}/protocol/openid-connect/userinfo",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=30,
    ).json()
    assert userinfo["affiliations"] == [PSR_AFFILIATION]


def test_other_application_sees_only_its_own_attribute_and_roles(
    applied_realm: AppliedRealm, person: str
) -> None:
    tokens, flow = _sign_in(applied_realm, "pqri-feedback-reports", person)
    claims = _verified(tokens["id_token"], applied_realm, "pqri-feedback-reports", flow.nonce)
    assert claims["affiliations"] == [PQRI_AFFILIATION]
    assert claims.get("app_roles", []) == []  # the group maps PS&R roles only


def test_portal_sign_in_has_audience_and_no_application_claims(
    applied_realm: AppliedRealm, person: str
) -> None:
    portal = applied_realm.settings.keycloak.portal_client_id
    tokens, flow = _sign_in(applied_realm, portal, person)
    claims = _verified(tokens["id_token"], applied_realm, portal, nonce=flow.nonce)
    assert claims["preferred_username"] == person
    assert "affiliations" not in claims
    access = _verified(tokens["access_token"], applied_realm, portal)
    assert portal in (access["aud"] if isinstance(access["aud"], list) else [access["aud"]])


def test_authorization_request_without_pkce_is_refused(applied_realm: AppliedRealm) -> None:
    flow = browser_code_flow(
        applied_realm.issuer,
        "psr",
        applied_realm.redirect_uris["psr"],
        "nobody",
        PASSWORD,
        use_pkce=False,
    )
    assert flow.params.get("error") == "invalid_request", flow.location
    assert "code" not in flow.params


def test_tampered_or_misaddressed_tokens_fail_verification(
    applied_realm: AppliedRealm, person: str
) -> None:
    tokens, flow = _sign_in(applied_realm, "psr", person)
    header, payload, signature = tokens["id_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["app_roles"] = ["report-viewer", "report-requester"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(BadSignatureError):
        _verified(f"{header}.{forged}.{signature}", applied_realm, "psr", flow.nonce)
    with pytest.raises(InvalidClaimError):
        _verified(tokens["id_token"], applied_realm, "psr", nonce="another-nonce")
    with pytest.raises(InvalidClaimError):
        _verified(tokens["id_token"], applied_realm, "pqri-feedback-reports", flow.nonce)
