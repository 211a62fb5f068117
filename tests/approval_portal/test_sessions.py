"""Sessions that end (issue 13, item 4), against the real Keycloak, slapd and Redis.

Every attack here replays a real session cookie obtained through the real login form, after
the session should have ended: logout, idle timeout, absolute lifetime, a Keycloak-side logout
(OIDC back-channel logout, delivered by Keycloak to the portal served on a loopback port).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from approval_portal import create_app
from iacs.settings import Settings
from iacs.stack.process import free_port
from tests.approval_portal.conftest import Portal, csrf_token

pytestmark = pytest.mark.servers

COOKIE = "iacs_portal"


def _cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None, "no session cookie"
    return cookie.value


def _replay(portal: Portal, cookie: str) -> FlaskClient:
    """A fresh client (another browser, an attacker) that holds only the copied cookie."""
    client = portal.app.test_client()
    client.set_cookie(COOKIE, cookie)
    return client


def _me(client: FlaskClient) -> int:
    return client.get("/api/v1/me").status_code


def test_sec_session_cookie_replayed_after_logout_is_refused(portal: Portal):
    portal.organization("sofia")
    client = portal.sign_in("sofia")
    stolen = _cookie(client)
    assert _me(_replay(portal, stolen)) == 200
    token = csrf_token(client, "/my")
    assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 302
    replayed = _replay(portal, stolen)
    refused = replayed.get("/api/v1/me")
    assert refused.status_code == 401
    assert refused.json["error"]["code"] == "unauthenticated"
    page = replayed.get("/my")
    assert page.status_code == 302 and "/auth/login" in page.headers["Location"]
    # Nor can it change anything (a decision, with the CSRF token the session had).
    body = {"kind": "register_organization", "name": "X", "identifier": "987654321"}
    posted = replayed.post("/api/v1/requests", json=body, headers={"X-CSRFToken": token})
    assert posted.status_code == 401
    assert all(r.organization_id != "org-987654321" for r in portal.service.my_requests("sofia"))


def test_sec_session_ends_after_the_idle_timeout_and_activity_renews_it(portal: Portal):
    portal = portal.with_portal_settings(session_idle_timeout_seconds=3)
    client = portal.sign_in("sofia")
    for _ in range(4):  # 4.5 s of activity, never 3 s idle: still signed in
        assert _me(client) == 200
        time.sleep(1.5)
    assert _me(client) == 200
    stolen = _cookie(client)
    time.sleep(4)
    assert _me(_replay(portal, stolen)) == 401
    assert _me(client) == 401


def test_sec_session_ends_at_its_absolute_lifetime_however_busy(portal: Portal):
    portal = portal.with_portal_settings(
        session_idle_timeout_seconds=600, session_lifetime_seconds=4
    )
    client = portal.sign_in("sofia")
    stolen = _cookie(client)
    deadline = time.monotonic() + 15
    while _me(client) == 200:  # busy all the time: the idle timeout never strikes
        assert time.monotonic() < deadline, "the session outlived its absolute lifetime"
        time.sleep(0.5)
    assert _me(_replay(portal, stolen)) == 401
    assert client.get("/my").status_code == 302


def test_sec_session_made_by_one_instance_is_valid_in_another_sharing_the_store(portal: Portal):
    """Two portal app instances (two processes or hosts) share the sessions through Redis."""
    other = create_app(portal.settings, service=portal.service)
    other.testing = True
    first = portal.sign_in("sofia")
    second = other.test_client()
    second.set_cookie(COOKIE, _cookie(first))
    assert second.get("/api/v1/me").json["username"] == "sofia"
    # Logout in the second instance ends the session in the first one too.
    token = csrf_token(second, "/my")
    assert second.post("/auth/logout", data={"csrf_token": token}).status_code == 302
    assert _me(first) == 401


@pytest.fixture
def served_portal(portal: Portal) -> Iterator[tuple[Portal, str]]:
    """The portal's app also served on a loopback port, registered as the realm's back-channel
    logout URL for the portal client (Keycloak posts logout tokens to it)."""
    port = free_port()
    server = make_server("127.0.0.1", port, portal.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}/auth/backchannel-logout"
    admin = _realm_admin(portal.settings)
    client_id = portal.settings.keycloak.portal_client_id
    (portal_client,) = [c for c in admin.get_clients() if c["clientId"] == client_id]
    attributes = {**portal_client.get("attributes", {}), "backchannel.logout.url": url}
    admin.update_client(portal_client["id"], {"attributes": attributes})
    try:
        yield portal, url
    finally:
        server.shutdown()


def _realm_admin(settings: Settings):
    from keycloak import KeycloakAdmin

    keycloak = settings.keycloak
    return KeycloakAdmin(
        server_url=keycloak.url.rstrip("/") + "/",
        username=keycloak.admin_username,
        password=keycloak.admin_password.get_secret_value(),
        realm_name=keycloak.realm,
        user_realm_name="master",
    )


def test_sec_session_ends_when_an_admin_logs_the_user_out_in_keycloak(served_portal):
    portal, _url = served_portal
    client = portal.sign_in("sofia")
    bystander = portal.sign_in("olga")
    stolen = _cookie(client)
    assert _me(client) == 200
    admin = _realm_admin(portal.settings)
    admin.user_logout(admin.get_user_id("sofia"))
    deadline = time.monotonic() + 20  # Keycloak posts the logout token before it answers
    while _me(_replay(portal, stolen)) == 200:
        assert time.monotonic() < deadline, "the portal session outlived the Keycloak session"
        time.sleep(0.2)
    assert _me(client) == 401
    assert _me(bystander) == 200  # only sofia's Keycloak session ended


def test_sec_forged_backchannel_logout_tokens_are_refused(served_portal):
    """Only a logout token signed by the realm ends a session; anything else is 400."""
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    portal, _url = served_portal
    client = portal.sign_in("sofia")
    keys = portal.app.extensions["iacs.realm_keys"]
    kid = keys(False)["keys"][0]["kid"]
    forged_key = RSAKey.generate_key(2048, parameters={"kid": kid})
    claims = {
        "iss": portal.settings.keycloak.issuer,
        "aud": portal.settings.keycloak.portal_client_id,
        "iat": int(time.time()),
        "jti": "forged-1",
        "sub": "anyone",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    }
    forged = jwt.encode({"alg": "RS256", "kid": kid}, claims, forged_key)
    anonymous = portal.app.test_client()
    for token in (forged, "not-a-jwt", ""):
        answer = anonymous.post("/auth/backchannel-logout", data={"logout_token": token})
        assert answer.status_code == 400
        assert answer.json["error"] == "invalid_request"
    assert _me(client) == 200


# -------------------------------------------------------------- the logout token's claims

ISSUER = "http://127.0.0.1:1/realms/t"
EVENT = {"http://schemas.openid.net/event/backchannel-logout": {}}


def _signed(claims: dict, alg: str = "RS256"):
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    jwks = {"keys": [key.as_dict(private=False)]}
    return jwt.encode({"alg": alg, "kid": "k1"}, claims, key), (lambda force: jwks)


GOOD = {"iss": ISSUER, "aud": "iacs-portal", "jti": "j", "sid": "s", "events": EVENT}


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"iss": "http://evil/realms/t"}, "iss"),
        ({"aud": "pqri"}, "aud"),
        ({"iat": None}, "iat"),
        ({"iat": -3600}, "too old"),
        ({"events": None}, "event"),
        ({"events": {"http://schemas.openid.net/event/other": {}}}, "event"),
        ({"nonce": "n"}, "nonce"),
        ({"sid": None}, "neither"),
        ({"jti": None}, "jti"),
    ],
)
def test_sec_logout_token_claims_are_all_checked(change: dict, why: str):
    from approval_portal.backchannel import InvalidLogoutToken, verify_logout_token

    now = int(time.time())
    claims = {**GOOD, "iat": now, **change}
    if claims["iat"] is not None and claims["iat"] < 0:
        claims["iat"] = now + claims["iat"]
    claims = {k: v for k, v in claims.items() if v is not None}
    token, jwks = _signed(claims)
    with pytest.raises(InvalidLogoutToken, match=why):
        verify_logout_token(token, issuer=ISSUER, audience="iacs-portal", jwks=jwks)
    good, jwks = _signed({**GOOD, "iat": now})
    assert verify_logout_token(good, issuer=ISSUER, audience="iacs-portal", jwks=jwks)["sid"]


def test_sec_dev_secret_refused_in_production_a_cookie_signed_with_it_is_not_the_help_desk(
    portal: Portal,
):
    """The old attack: sign ``{"username": "helpdesk"}`` with the published development key.

    A production portal refuses to start with that key (test_security.py); one started with a
    real key keeps no session in the cookie at all, so a forged cookie names no session.
    """
    from flask import Flask
    from flask.sessions import SecureCookieSessionInterface
    from pydantic import SecretStr

    from iacs.settings import LdapSettings, PortalSettings

    portal.help_desk()
    dev_key = PortalSettings.model_fields["secret_key"].default.get_secret_value()
    forger = Flask("forger")
    forger.secret_key = dev_key
    serializer = SecureCookieSessionInterface().get_signing_serializer(forger)
    assert serializer is not None
    forged = serializer.dumps(
        {"username": "helpdesk", "signed_in_at": int(time.time()), "_permanent": True}
    )
    production = Settings(
        environment="production",
        # The directory is the fixture's (injected service); this password is never used.
        ldap=LdapSettings(portal_bind_password=secrets.token_urlsafe(24)),
        keycloak=portal.settings.keycloak,
        portal=portal.settings.portal.model_copy(
            update={"secret_key": SecretStr(secrets.token_urlsafe(48))}
        ),
    )
    app = create_app(production, service=portal.service)
    for cookie in (forged, "helpdesk"):
        client = app.test_client()
        client.set_cookie(COOKIE, cookie)
        assert client.get("/api/v1/me").status_code == 401
        assert client.get("/help-desk").status_code == 302
