"""The sample PQRI / PS&R application (``examples/pqri_psr_app``) against the real system.

One realm for the module: ``realm.json`` applied with LDAP federation to the test slapd and the
two sample apps' redirect URIs and secrets passed through the settings. The people exist only in
the directory; their roles are requested and approved through the service layer (as in the
portal), projected into Keycloak by one run of the sync worker, and each person signs in to the
apps through Keycloak's real login form (the apps run as real HTTP servers on loopback ports).
"""

from __future__ import annotations

import base64
import html
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from flask import Flask
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

from examples.pqri_psr_app import AppConfig, SignInStore, create_app
from examples.pqri_psr_app.app import SignedIn
from examples.pqri_psr_app.logout import (
    BACKCHANNEL_LOGOUT_EVENT,
    BACKCHANNEL_LOGOUT_PATH,
    LogoutTokenRefused,
)
from iacs.directory import Directory
from iacs.domain import Membership, Person, Role, ScopeKind
from iacs.settings import PortalSettings, Settings
from iacs.stack.process import free_port
from tests.fixtures.keycloak import (
    browser_code_flow,
    delete_realm_if_present,
    keycloak_settings_for,
    loopback_browser_session,
    redeem_code,
    second_factor,
    unique_realm_name,
)
from tests.fixtures.slapd import reset_tree

pytestmark = pytest.mark.servers

PASSWORD = "Sample-App-Password-1"
PQRI, PSR = "pqri-feedback-reports", "psr"
ORG = "org-123456789"
TIMEOUT = 60  # Keycloak on a loaded machine may take seconds per page
LOGOUT_POLL_BOUND = 5.0
"""How long a test polls for the app to refuse a person after the sync (issue 10: 1-2 s)."""
_FORM_ACTION = re.compile(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"')
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class RunningApp:
    url: str
    store: SignInStore
    flask: Flask


@dataclass
class World:
    settings: Settings
    apps: dict[str, RunningApp]
    service: Any
    issuer: str


def _add_person(root: Directory, username: str) -> None:
    """A person in the directory only (Keycloak imports them through LDAP federation)."""
    root.add_person(
        Person(username, f"{username.title()} Sample", f"{username}@example.test"), PASSWORD
    )


def _sync(settings: Settings) -> None:
    from sync.main import run_once

    result = run_once(settings)
    assert result.report.problems == [], result.report.problems
    assert result.report.missing_users == [], result.report.missing_users


@pytest.fixture(scope="module")
def world(keycloak, slapd, ldap_settings) -> Iterator[World]:
    from iacs.wiring import build_service
    from keycloak_config.apply import apply_from_settings

    reset_tree(slapd)
    realm = unique_realm_name()
    ports = {PQRI: free_port(), PSR: free_port()}
    redirect_uris = {cid: f"http://127.0.0.1:{port}/oidc/callback" for cid, port in ports.items()}
    settings = Settings(
        ldap=ldap_settings,
        keycloak=keycloak_settings_for(
            keycloak,
            realm,
            application_redirect_uris=redirect_uris,
            application_client_secrets={cid: secrets.token_urlsafe(24) for cid in ports},
        ),
        portal=PortalSettings(public_url="http://127.0.0.1:9", session_cookie_secure=False),
    )
    servers = []
    try:
        apply_from_settings(settings, with_federation=True)
        service = build_service(settings)
        with Directory(ldap_settings, bind_dn=slapd.root_dn, password=slapd.root_password) as root:
            for username in (
                *("helpdesk", "sofia", "uma", "eve", "rita", "carl", "sam"),
                *("ivy", "jay"),
            ):
                _add_person(root, username)
            # The operator's bootstrap: the only membership written directly (DEC-4).
            root.add_member(Membership(Role.HELP_DESK, ScopeKind.SYSTEM), "helpdesk")

        def approve(approver: str, request) -> None:
            service.decide(approver, request.id, approve=True)

        approve(
            "helpdesk",
            service.register_organization(
                "sofia", name="Lakeside General", identifier="12-3456789", provider_type="hospital"
            ),
        )
        approve("sofia", service.request_user_group_administrator("uma", ORG, group_name="Billing"))
        for end_user in ("eve", "rita", "ivy", "jay"):
            approve("uma", service.request_end_user(end_user, ORG, "billing"))
        approve("sofia", service.register_surrogate_group("carl", ORG, name="Acme Clearinghouse"))
        approve("carl", service.request_surrogate_end_user("sam", "acme-clearinghouse"))
        _sync(settings)

        apps = {}
        for client_id, port in ports.items():
            config = AppConfig.from_settings(settings, client_id, redirect_uris[client_id])
            store = SignInStore()
            flask_app = create_app(config, store=store)
            server = make_server("127.0.0.1", port, flask_app, threaded=True)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)
            apps[client_id] = RunningApp(f"http://127.0.0.1:{port}", store, flask_app)
        yield World(settings, apps, service, settings.keycloak.issuer)
    finally:
        for server in servers:
            server.shutdown()
        delete_realm_if_present(keycloak, realm)


# ------------------------------------------------------------------ a browser, with requests


def sign_in(app: RunningApp, username: str) -> requests.Session:
    """Sign in to a sample app through Keycloak's real login form; return the browser session."""
    browser = loopback_browser_session()
    start = browser.get(f"{app.url}/login", allow_redirects=False, timeout=TIMEOUT)
    assert start.status_code == 302, start.text
    login_page = browser.get(start.headers["Location"], timeout=TIMEOUT)
    login_page.raise_for_status()
    action = _FORM_ACTION.search(login_page.text)
    assert action, login_page.text[:2000]
    answer = browser.post(
        html.unescape(action.group(1)),
        data={"username": username, "password": PASSWORD, "credentialId": ""},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    issuer = login_page.url.split("/protocol/openid-connect/", 1)[0]
    answer = second_factor(browser, issuer, username, answer)  # officials enrol TOTP or use it
    assert answer.status_code in (302, 303), answer.text[:2000]
    back = answer.headers["Location"]
    assert back.startswith(f"{app.url}/oidc/callback?"), back
    done = browser.get(back, allow_redirects=False, timeout=TIMEOUT)
    assert done.status_code == 302, done.text
    return browser


def sign_in_tracked(app: RunningApp, username: str) -> tuple[requests.Session, SignedIn]:
    """``sign_in``, and the app's server-side record of that sign-in."""
    before = set(app.store._items)
    browser = sign_in(app, username)
    (new,) = set(app.store._items) - before
    return browser, app.store._items[new]


def sign_in_through_sso(browser: requests.Session, app: RunningApp) -> SignedIn:
    """Sign the same browser in to another app: Keycloak's SSO session answers without a form."""
    before = set(app.store._items)
    start = get(browser, app, "/login")
    back = browser.get(start.headers["Location"], allow_redirects=False, timeout=TIMEOUT)
    assert back.status_code == 302 and back.headers["Location"].startswith(app.url), back.text
    done = browser.get(back.headers["Location"], allow_redirects=False, timeout=TIMEOUT)
    assert done.status_code == 302, done.text
    (new,) = set(app.store._items) - before
    return app.store._items[new]


def refused_within(browser: requests.Session, app: RunningApp, path: str) -> bool:
    """Poll ``path`` until the app sends the browser to sign in again, for a bounded time."""
    deadline = time.monotonic() + LOGOUT_POLL_BOUND
    while time.monotonic() < deadline:
        answer = get(browser, app, path)
        if answer.status_code == 302 and answer.headers["Location"].startswith("/login"):
            return True
        time.sleep(0.05)
    return False


def post_logout_token(app: RunningApp, token: str) -> requests.Response:
    """What anyone who can reach the app can do: POST a logout token to its back-channel URL."""
    return requests.post(
        f"{app.url}{BACKCHANNEL_LOGOUT_PATH}", data={"logout_token": token}, timeout=TIMEOUT
    )


def capture_logout_tokens(app: RunningApp, monkeypatch, *, deliver: bool) -> list[str]:
    """The logout tokens Keycloak sends ``app`` from now on (as someone on the wire sees them).

    With ``deliver=False`` the app refuses each, as if it never received it: its sessions live.
    """
    verifier = app.flask.extensions["example.logout_tokens"]
    original, captured = verifier.verify, []

    def verify(value: str):
        captured.append(value)
        if not deliver:
            raise LogoutTokenRefused("dropped by the test")
        return original(value)

    monkeypatch.setattr(verifier, "verify", verify)
    return captured


def get(browser: requests.Session, app: RunningApp, path: str) -> requests.Response:
    return browser.get(f"{app.url}{path}", allow_redirects=False, timeout=TIMEOUT)


def token_claims(world: World, client_id: str, username: str) -> dict:
    """The access token Keycloak issues to ``client_id`` for the person (code flow + PKCE)."""
    redirect = world.settings.keycloak.application_redirect_uris[client_id]
    flow = browser_code_flow(world.issuer, client_id, redirect, username, PASSWORD)
    assert "code" in flow.params, flow.location
    secret = world.settings.keycloak.application_client_secrets[client_id].get_secret_value()
    answer = redeem_code(world.issuer, client_id, secret, redirect, flow)
    answer.raise_for_status()
    body = answer.json()["access_token"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


# ------------------------------------------------------------------ tests


def test_eu_1_approved_end_user_gets_into_pqri_and_psr(world: World) -> None:
    """EU-1 + APP-1: an End User of a provider group, approved and synced, uses both apps; each
    page shows the affiliation that gives the role, and the PS&R request form is CSRF-checked."""
    pqri, psr = world.apps[PQRI], world.apps[PSR]

    anonymous = loopback_browser_session()
    assert get(anonymous, pqri, "/reports").headers["Location"] == "/login?next=/reports"
    start = get(anonymous, pqri, "/login")
    assert "code_challenge_method=S256" in start.headers["Location"]
    assert "nonce=" in start.headers["Location"] and "state=" in start.headers["Location"]
    cookie = start.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie

    browser = sign_in(pqri, "eve")
    page = get(browser, pqri, "/reports")
    assert page.status_code == 200, page.text
    assert ORG in page.text and "report-viewer" in page.text
    assert "End user of group billing" in page.text  # the affiliation giving the role

    browser = sign_in(psr, "eve")
    for path in ("/reports", "/report-requests"):
        page = get(browser, psr, path)
        assert page.status_code == 200, page.text
        assert ORG in page.text
    home = get(browser, psr, "/")
    assert "report-requester" in home.text and "report-viewer" in home.text

    token = _CSRF.search(get(browser, psr, "/report-requests").text).group(1)
    refused = browser.post(
        f"{psr.url}/report-requests", data={"organization": ORG}, timeout=TIMEOUT
    )
    assert refused.status_code == 400  # no CSRF token
    requested = browser.post(
        f"{psr.url}/report-requests",
        data={"organization": ORG, "csrf_token": token},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert requested.status_code == 302, requested.text
    other = browser.post(
        f"{psr.url}/report-requests",
        data={"organization": "org-999999999", "csrf_token": token},
        timeout=TIMEOUT,
    )
    assert other.status_code == 403  # only the organizations of the granting affiliation


def test_sug_6_sample_app_keeps_a_surrogate_out_of_psr(world: World) -> None:
    """SUG-6: an End User of a Surrogate User Group reads PQRI reports but is refused PS&R,
    on a 403 page that names the missing role."""
    pqri, psr = world.apps[PQRI], world.apps[PSR]
    browser = sign_in(pqri, "sam")
    page = get(browser, pqri, "/reports")
    assert page.status_code == 200, page.text
    assert ORG in page.text and "Surrogate User Group acme-clearinghouse" in page.text

    browser = sign_in(psr, "sam")
    for path, role in (("/reports", "report-viewer"), ("/report-requests", "report-requester")):
        refused = get(browser, psr, path)
        assert refused.status_code == 403, refused.text
        assert f"role <code>{role}</code>" in refused.text
    home = get(browser, psr, "/")
    assert "You hold no role in PS&amp;R" in home.text
    assert "Surrogate User Group acme-clearinghouse" in home.text  # the affiliation is visible


def test_app_2_psr_token_does_not_carry_pqri_roles(world: World) -> None:
    """APP-2: the token PS&R receives names PS&R's roles only, per affiliation; PQRI's token
    for the same person names PQRI's only."""
    for username in ("eve", "sam"):
        psr = token_claims(world, PSR, username)
        assert PQRI not in json.dumps(psr), psr
        assert set(psr.get("resource_access", {})) <= {PSR}
        assert psr["aud"] == PSR or set(psr["aud"]) == {PSR}
        pqri = token_claims(world, PQRI, username)
        assert PSR not in {*pqri.get("resource_access", {})}
        assert "report-requester" not in json.dumps(pqri)

    eve = token_claims(world, PSR, "eve")
    assert sorted(eve["app_roles"]) == ["report-requester", "report-viewer"]
    sam = token_claims(world, PSR, "sam")
    assert "app_roles" not in sam  # PQRI's report-viewer through the surrogate never shows here
    assert [a["app_roles"] for a in sam["affiliations"]] == [[]]


def test_lc_1_revoked_end_user_is_signed_out_at_the_next_refresh(world: World, monkeypatch) -> None:
    """LC-1, the fallback: should the logout token not reach the app (it was down), the app's
    next refresh is refused after the revocation is synced and it signs the person out (the app
    renews claims when the access token issued with them expires)."""
    psr = world.apps[PSR]
    browser = sign_in(psr, "rita")
    assert get(browser, psr, "/reports").status_code == 200
    missed = capture_logout_tokens(psr, monkeypatch, deliver=False)

    world.service.revoke(
        "uma", "rita", Membership(Role.END_USER, ScopeKind.USER_GROUP, "billing", ORG), "left"
    )
    _sync(world.settings)  # removes her from the group and ends her Keycloak sessions

    assert len(missed) == 1  # Keycloak sent it; the app did not take it
    assert get(browser, psr, "/reports").status_code == 200  # claims still within their life
    for signed_in in list(psr.store._items.values()):
        signed_in.claims_expire_at = 0  # as if five minutes had passed
    after = get(browser, psr, "/reports")
    assert after.status_code == 302 and after.headers["Location"] == "/login?next=/reports"


def test_refresh_renews_claims_and_sign_out_ends_the_keycloak_session(world: World) -> None:
    """A refresh of a still-valid session gives fresh, verified claims; signing out (CSRF
    checked) ends the app session and Keycloak's, and comes back to the app."""
    pqri = world.apps[PQRI]
    browser = sign_in(pqri, "uma")
    for signed_in in list(pqri.store._items.values()):
        if signed_in.claims.username == "uma":
            signed_in.claims_expire_at = 0
    page = get(browser, pqri, "/reports")
    assert page.status_code == 200, page.text  # refreshed, not signed out
    assert any(
        s.claims.username == "uma" and s.claims_expire_at > 0 for s in pqri.store._items.values()
    )

    assert browser.post(f"{pqri.url}/logout", timeout=TIMEOUT).status_code == 400  # no CSRF
    token = _CSRF.search(get(browser, pqri, "/").text).group(1)
    # hop by hop: requests only sends the loopback Secure cookies between its own calls
    out = browser.post(
        f"{pqri.url}/logout", data={"csrf_token": token}, allow_redirects=False, timeout=TIMEOUT
    )
    assert out.headers["Location"].startswith(f"{world.issuer}/protocol/openid-connect/logout")
    ended = browser.get(out.headers["Location"], allow_redirects=False, timeout=TIMEOUT)
    assert ended.headers["Location"].startswith(f"{pqri.url}/oidc/callback?state="), ended.text
    back = browser.get(ended.headers["Location"], allow_redirects=False, timeout=TIMEOUT)
    assert back.headers["Location"] == "/"
    assert "You are signed out." in get(browser, pqri, "/").text
    again = get(browser, pqri, "/login")
    login_page = browser.get(again.headers["Location"], timeout=TIMEOUT)
    assert _FORM_ACTION.search(login_page.text)  # Keycloak asks for the password again


def test_callback_refuses_a_state_it_did_not_issue(world: World) -> None:
    pqri = world.apps[PQRI]
    browser = loopback_browser_session()
    get(browser, pqri, "/login")
    forged = get(browser, pqri, "/oidc/callback?code=abc&state=not-mine")
    assert forged.status_code == 400
    assert get(browser, pqri, "/reports").status_code == 302


def _revoke_end_user(world: World, username: str) -> None:
    """The revocation a UGA makes in the portal (the same service call), then one sync run."""
    world.service.revoke(
        "uma", username, Membership(Role.END_USER, ScopeKind.USER_GROUP, "billing", ORG), "left"
    )
    _sync(world.settings)  # removes the role and ends the person's Keycloak sessions


def test_lc_1_revoked_person_is_refused_at_once_by_back_channel_logout(world: World) -> None:
    """Issue 10, item 6: revoke → the worker logs the person out → Keycloak sends each app she
    signed in to a logout token → her next request is refused, long before her claims expire
    (the access token lives 5 minutes). Someone else's sign-in is untouched."""
    psr, pqri = world.apps[PSR], world.apps[PQRI]
    browser, signed_in = sign_in_tracked(psr, "ivy")
    pqri_browser = sign_in(pqri, "ivy")
    other, _ = sign_in_tracked(psr, "eve")
    assert signed_in.keycloak_session and signed_in.subject
    assert get(browser, psr, "/reports").status_code == 200
    assert get(pqri_browser, pqri, "/reports").status_code == 200

    _revoke_end_user(world, "ivy")

    assert refused_within(browser, psr, "/reports")
    assert refused_within(pqri_browser, pqri, "/reports")
    assert signed_in.claims_expire_at > time.time() + 60  # not the refresh: the logout token
    assert not [s for s in psr.store._items.values() if s.claims.username == "ivy"]
    assert get(other, psr, "/reports").status_code == 200


def _realm_kid(world: World) -> str:
    jwks = requests.get(f"{world.issuer}/protocol/openid-connect/certs", timeout=TIMEOUT).json()
    return next(k["kid"] for k in jwks["keys"] if k.get("use") == "sig" and k["kty"] == "RSA")


def _logout_claims(world: World, client_id: str, signed_in: SignedIn) -> dict[str, Any]:
    return {
        "iss": world.issuer,
        "aud": client_id,
        "iat": int(time.time()),
        "jti": secrets.token_urlsafe(16),
        "sub": signed_in.subject,
        "sid": signed_in.keycloak_session,
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    }


def test_sec_forged_or_unsigned_logout_token_ends_no_session(world: World) -> None:
    """A logout token naming a live session, but not signed by the realm (a key of the
    attacker's under the realm's key id, no signature, ``alg: none``) is refused: 400, and the
    person stays signed in."""
    pqri = world.apps[PQRI]
    browser, signed_in = sign_in_tracked(pqri, "eve")
    claims = _logout_claims(world, PQRI, signed_in)
    kid = _realm_kid(world)
    attacker = RSAKey.generate_key(2048, parameters={"kid": kid})
    forged = jwt.encode({"alg": "RS256", "kid": kid, "typ": "logout+jwt"}, claims, attacker)
    unsigned = forged.rsplit(".", 1)[0] + "."
    header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    none = f"{header}.{forged.split('.')[1]}."
    for token in (forged, unsigned, none, ""):
        answer = post_logout_token(pqri, token)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "invalid_request"
    assert pqri.store.get(next(k for k, v in pqri.store._items.items() if v is signed_in))
    assert get(browser, pqri, "/reports").status_code == 200


def test_sec_id_token_passed_off_as_logout_token_is_refused(world: World) -> None:
    """A token the realm did sign for this app, but an ID token (it carries a ``nonce`` and no
    logout event), posted as a logout token: refused, the session lives."""
    pqri = world.apps[PQRI]
    browser, signed_in = sign_in_tracked(pqri, "eve")
    assert "nonce" in _payload(signed_in.id_token)
    answer = post_logout_token(pqri, signed_in.id_token)
    assert answer.status_code == 400, answer.text
    assert get(browser, pqri, "/reports").status_code == 200


def test_sec_logout_token_for_another_app_or_replayed_is_refused(world: World, monkeypatch) -> None:
    """Real logout tokens from Keycloak, misused: PQRI's token (``aud`` PQRI) sent to PS&R for
    the very Keycloak session PS&R holds is refused (wrong audience) and PS&R's sign-in lives;
    a token already used is refused when replayed (its ``jti``). PS&R's own token, delivered
    late, still ends its sign-in, once."""
    pqri, psr = world.apps[PQRI], world.apps[PSR]
    browser, in_pqri = sign_in_tracked(pqri, "jay")
    in_psr = sign_in_through_sso(browser, psr)
    assert in_psr.keycloak_session == in_pqri.keycloak_session  # one Keycloak session, two apps
    to_pqri = capture_logout_tokens(pqri, monkeypatch, deliver=True)
    to_psr = capture_logout_tokens(psr, monkeypatch, deliver=False)

    _revoke_end_user(world, "jay")

    assert refused_within(browser, pqri, "/reports")
    assert len(to_pqri) == 1 and len(to_psr) == 1, (to_pqri, to_psr)
    assert _payload(to_pqri[0])["sid"] == in_psr.keycloak_session
    assert get(browser, psr, "/reports").status_code == 200  # PS&R missed its token
    monkeypatch.undo()

    wrong_audience = post_logout_token(psr, to_pqri[0])
    assert wrong_audience.status_code == 400, wrong_audience.text
    assert get(browser, psr, "/reports").status_code == 200
    assert post_logout_token(pqri, to_pqri[0]).status_code == 400  # replayed

    assert post_logout_token(psr, to_psr[0]).status_code == 200  # its own, first use
    assert refused_within(browser, psr, "/reports")
    assert post_logout_token(psr, to_psr[0]).status_code == 400  # replayed


def _payload(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
