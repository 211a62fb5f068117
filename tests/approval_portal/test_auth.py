"""Signing in through the real Keycloak, and bearer tokens issued by the realm.

The browser is played by ``requests`` against Keycloak's own login form; the portal is driven
through Flask's test client, which then exchanges the code with the real Keycloak.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from approval_portal.auth import InvalidToken, TokenVerifier
from tests.approval_portal.conftest import PASSWORD, PORTAL_URL, Portal, csrf_token
from tests.approval_portal.oidc import browser_session, login_through_form

pytestmark = pytest.mark.servers


def _start(portal: Portal, next_path: str = "/approvals"):
    client = portal.app.test_client()
    started = client.get("/auth/login", query_string={"next": next_path})
    assert started.status_code == 302
    return client, started.headers["Location"]


def _keycloak_redirect(portal: Portal, authorize_url: str, username: str) -> str:
    portal.person(username)
    with browser_session() as browser:
        return login_through_form(browser, authorize_url, username, PASSWORD)


def test_sign_in_through_keycloak_with_pkce_state_and_nonce(portal: Portal):
    client, authorize_url = _start(portal, "/approvals")
    query = parse_qs(urlsplit(authorize_url).query)
    assert query["response_type"] == ["code"]
    assert query["client_id"] == ["iacs-portal"]
    assert query["redirect_uri"] == [f"{PORTAL_URL}/auth/callback"]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) >= 43
    assert query["state"][0] and query["nonce"][0]
    assert "openid" in query["scope"][0].split()
    back = _keycloak_redirect(portal, authorize_url, "sofia")
    callback = urlsplit(back)
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == f"{PORTAL_URL}/auth/callback"
    done = client.get(f"/auth/callback?{callback.query}")
    assert done.status_code == 302
    assert done.headers["Location"] == "/approvals"
    cookie = done.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/approvals")
    assert page.status_code == 200
    assert "Sign out sofia" in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    # The same callback again (a replayed code and state) is refused: the state was used up.
    assert client.get(f"/auth/callback?{callback.query}").status_code == 400


def test_callback_with_a_forged_state_is_refused(portal: Portal):
    client, authorize_url = _start(portal)
    back = urlsplit(_keycloak_redirect(portal, authorize_url, "sofia"))
    params = parse_qs(back.query)
    forged = client.get(
        "/auth/callback", query_string={"code": params["code"][0], "state": "forged-state"}
    )
    assert forged.status_code == 400
    assert client.get("/my").status_code == 302  # still not signed in


def test_callback_delivered_to_another_browser_is_refused(portal: Portal):
    """Login CSRF: a code obtained in one browser cannot sign in another."""
    _, authorize_url = _start(portal)
    back = urlsplit(_keycloak_redirect(portal, authorize_url, "mallory"))
    victim = portal.app.test_client()
    assert victim.get(f"/auth/callback?{back.query}").status_code == 400
    assert victim.get("/my").status_code == 302


def test_callback_with_an_error_from_keycloak_is_refused(portal: Portal):
    client, _ = _start(portal)
    answer = client.get("/auth/callback?error=access_denied&state=x")
    assert answer.status_code == 400
    assert "sign in again" in answer.get_data(as_text=True)


def test_wrong_password_never_reaches_the_portal(portal: Portal):
    _, authorize_url = _start(portal)
    portal.person("sofia")
    with browser_session() as browser, pytest.raises(AssertionError):
        login_through_form(browser, authorize_url, "sofia", "not-the-password")


def test_sign_out_ends_the_session_and_goes_to_keycloaks_end_session(portal: Portal):
    client = portal.sign_in("sofia")
    out = client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/my")})
    assert out.status_code == 302
    location = urlsplit(out.headers["Location"])
    assert location.path.endswith("/protocol/openid-connect/logout")
    assert parse_qs(location.query)["post_logout_redirect_uri"] == [f"{PORTAL_URL}/"]
    assert client.get("/my").status_code == 302


def test_bearer_access_token_of_the_realm_is_accepted(portal: Portal):
    sofia = portal.api("sofia")
    me = sofia.get("/me")
    assert me.status_code == 200
    assert me.json == {"username": "sofia", "memberships": []}


def _segments(token: str) -> list[str]:
    return token.split(".")


def _decoded(segment: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_forged_tampered_and_foreign_tokens_are_refused(portal: Portal):
    tokens = portal.token_response("sofia")
    access = tokens["access_token"]
    header, payload, signature = _segments(access)
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    header_data = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    escalated = {**claims, "preferred_username": "helpdesk"}
    own_key = RSAKey.generate_key(2048, parameters={"kid": header_data["kid"]})
    candidates = {
        "tampered payload": f"{header}.{_b64(escalated)}.{signature}",
        "signed by another key": jwt.encode(
            {"alg": "RS256", "kid": header_data["kid"]}, escalated, own_key
        ),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(escalated)}.",
        "id token": tokens["id_token"],
        "refresh token": tokens["refresh_token"],
        "truncated": access[:-10],
    }
    client = portal.app.test_client()
    for name, candidate in candidates.items():
        answer = client.get("/api/v1/me", headers={"Authorization": f"Bearer {candidate}"})
        assert answer.status_code == 401, name
        assert answer.json["error"]["code"] == "invalid_token", name


def test_token_verifier_checks_issuer_audience_and_expiry_against_the_realm_keys(portal: Portal):
    access = portal.token_response("sofia")["access_token"]
    oauth = portal.app.extensions["iacs.oauth"]
    issuer = portal.settings.keycloak.issuer

    def verifier(**overrides) -> TokenVerifier:
        options = {
            "issuer": issuer,
            "audience": "iacs-portal",
            "jwks": lambda force: oauth.fetch_jwk_set(force=force),
        }
        return TokenVerifier(**{**options, **overrides})

    assert verifier().verify(access)["preferred_username"] == "sofia"
    with pytest.raises(InvalidToken):
        verifier(issuer="http://127.0.0.1:1/realms/other").verify(access)
    with pytest.raises(InvalidToken):
        verifier(audience="pqri").verify(access)
    with pytest.raises(InvalidToken):
        verifier(leeway=-3600).verify(access)  # as if an hour had passed: expired


def test_session_api_call_needs_csrf_and_a_bearer_call_does_not(portal: Portal):
    client = portal.sign_in("sofia")
    body = {
        "kind": "register_organization",
        "name": "Lakeside",
        "identifier": "123456789",
        "provider_type": "hospital",
    }
    refused = client.post("/api/v1/requests", json=body)
    assert refused.status_code == 400
    assert refused.json["error"]["code"] == "csrf_failed"
    assert client.get("/api/v1/requests").json["requests"] == []
    accepted = client.post(
        "/api/v1/requests", json=body, headers={"X-CSRFToken": csrf_token(client, "/my")}
    )
    assert accepted.status_code == 201
    by_bearer = portal.api("olga").file(**{**body, "identifier": "987654321"})
    assert by_bearer.status_code == 201


def test_sec_tokens_with_unknown_kids_do_not_force_a_jwks_fetch_each(portal: Portal):
    """Each unknown ``kid`` used to cost a fetch of the realm's JWKS: a flood of them, one."""
    genuine = portal.token_response("sofia")["access_token"]
    keys = portal.app.extensions["iacs.realm_keys"]
    fetched: list[bool] = []
    real_fetch = keys.fetch

    def counting(force: bool) -> dict:
        fetched.append(force)
        return real_fetch(force)

    keys.fetch = counting
    client = portal.app.test_client()
    attacker_key = RSAKey.generate_key(2048)
    claims = _decoded(_segments(genuine)[1])
    for attempt in range(25):
        forged = jwt.encode({"alg": "RS256", "kid": f"unknown-{attempt}"}, claims, attacker_key)
        answer = client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
        assert answer.status_code == 401
    assert fetched.count(True) <= 1, fetched
    ok = client.get("/api/v1/me", headers={"Authorization": f"Bearer {genuine}"})
    assert ok.status_code == 200


def test_sec_only_rs256_ps256_es256_are_accepted_whatever_the_realm_advertises(portal: Portal):
    from approval_portal.auth import SIGNING_ALGORITHMS

    assert SIGNING_ALGORITHMS == ["RS256", "PS256", "ES256"]
    genuine = portal.token_response("sofia")["access_token"]
    header, claims = (_decoded(part) for part in _segments(genuine)[:2])
    own = RSAKey.generate_key(2048, parameters={"kid": header["kid"]})
    candidates = {
        "HS256": jwt.encode({"alg": "HS256", "kid": header["kid"]}, claims, OctKey.generate_key()),
        "RS512": jwt.encode(
            {"alg": "RS512", "kid": header["kid"]}, claims, own, algorithms=["RS512"]
        ),
        "none": f"{_b64({'alg': 'none', 'kid': header['kid']})}.{_b64(claims)}.",
    }
    client = portal.app.test_client()
    for name, token in candidates.items():
        answer = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, name
