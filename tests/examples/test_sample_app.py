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
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from examples.pqri_psr_app import AppConfig, SignInStore, create_app
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
_FORM_ACTION = re.compile(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"')
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class RunningApp:
    url: str
    store: SignInStore


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
            for username in ("helpdesk", "sofia", "uma", "eve", "rita", "carl", "sam"):
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
        for end_user in ("eve", "rita"):
            approve("uma", service.request_end_user(end_user, ORG, "billing"))
        approve("sofia", service.register_surrogate_group("carl", ORG, name="Acme Clearinghouse"))
        approve("carl", service.request_surrogate_end_user("sam", "acme-clearinghouse"))
        _sync(settings)

        apps = {}
        for client_id, port in ports.items():
            config = AppConfig.from_settings(settings, client_id, redirect_uris[client_id])
            store = SignInStore()
            server = make_server("127.0.0.1", port, create_app(config, store=store), threaded=True)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)
            apps[client_id] = RunningApp(f"http://127.0.0.1:{port}", store)
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


def test_lc_1_revoked_end_user_is_signed_out_at_the_next_refresh(world: World) -> None:
    """LC-1: after a revocation is synced, the app's next refresh is refused and it signs the
    person out (the app renews claims when the access token issued with them expires)."""
    psr = world.apps[PSR]
    browser = sign_in(psr, "rita")
    assert get(browser, psr, "/reports").status_code == 200

    world.service.revoke(
        "uma", "rita", Membership(Role.END_USER, ScopeKind.USER_GROUP, "billing", ORG), "left"
    )
    _sync(world.settings)  # removes her from the group and ends her Keycloak sessions

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
