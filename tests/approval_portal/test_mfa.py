"""A second factor for those who hold authority, end to end (issue 13, item 8).

The help desk is configured in the directory; the real sync worker, signed in as its own narrow
client, projects it into the federated realm (its leaf group carries ``iacs_mfa: required``).
Signing in through Keycloak's real login form then makes the help desk enrol TOTP; the secret is
read from Keycloak's configure-TOTP page and the codes come from ``pyotp``. The portal refuses the
sign-in and the bearer token that did not pass the second factor, and accepts the ones that did.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import time
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pyotp
import pytest
import requests

from iacs.catalogue import load_catalogue
from sync.gateway import KeycloakGateway
from sync.reconcile import reconcile
from tests.approval_portal.conftest import PASSWORD, PORTAL_URL, Portal
from tests.fixtures.keycloak import loopback_browser_session

pytestmark = pytest.mark.servers

_ACTION = re.compile(r"<form[^>]*\baction=\"([^\"]+)\"", re.S)
_TOTP_SECRET = re.compile(r'name="totpSecret" value="([^"]+)"')


def _post_form(browser, page, data: dict[str, str]):
    action = _ACTION.search(page.text)
    assert action, page.text[:500]
    return browser.post(
        urljoin(page.url, html.unescape(action.group(1))),
        data=data,
        allow_redirects=False,
        timeout=30,
    )


def _back_to_portal(answer) -> str:
    assert answer.status_code in (302, 303), answer.text[:500]
    location = answer.headers["Location"]
    assert location.startswith(f"{PORTAL_URL}/auth/callback?"), location
    return location


def _sign_in(browser, authorize_url: str, username: str) -> requests.Response:
    """The login form with the password; Keycloak's next answer (a redirect or a page)."""
    login = browser.get(authorize_url, timeout=30)
    return _post_form(browser, login, {"username": username, "password": PASSWORD})


def _enrol_totp(browser, answer) -> tuple[str, requests.Response]:
    """Follow Keycloak to its configure-TOTP page, enrol with a code; return the base32 secret."""
    assert answer.status_code in (302, 303), answer.text[:500]
    assert "CONFIGURE_TOTP" in answer.headers["Location"], answer.headers["Location"]
    page = browser.get(urljoin(answer.url, answer.headers["Location"]), timeout=30)
    raw = _TOTP_SECRET.search(page.text)
    assert raw, page.text[:500]
    secret = base64.b32encode(raw.group(1).encode()).decode()
    done = _post_form(
        browser,
        page,
        {"totp": pyotp.TOTP(secret).now(), "totpSecret": raw.group(1), "userLabel": "phone"},
    )
    return secret, done


class _TokenClient:
    """The code flow with PKCE as the portal client, outside the portal (for bearer tokens)."""

    def __init__(self, portal: Portal) -> None:
        self.keycloak = portal.settings.keycloak
        self.verifier = secrets.token_urlsafe(48)

    def authorize_url(self, **extra: str) -> str:
        challenge = base64.urlsafe_b64encode(hashlib.sha256(self.verifier.encode()).digest())
        query = {
            "client_id": self.keycloak.portal_client_id,
            "redirect_uri": f"{PORTAL_URL}/auth/callback",
            "response_type": "code",
            "scope": "openid",
            "state": secrets.token_urlsafe(8),
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
            **extra,
        }
        return f"{self.keycloak.issuer}/protocol/openid-connect/auth?{urlencode(query)}"

    def tokens(self, location: str) -> dict:
        code = parse_qs(urlsplit(location).query)["code"][0]
        answer = requests.post(
            f"{self.keycloak.issuer}/protocol/openid-connect/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": f"{PORTAL_URL}/auth/callback",
                "code_verifier": self.verifier,
            },
            auth=(
                self.keycloak.portal_client_id,
                self.keycloak.portal_client_secret.get_secret_value(),
            ),
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _me(portal: Portal, access_token: str):
    return portal.app.test_client().get(
        "/api/v1/me", headers={"Authorization": f"Bearer {access_token}"}
    )


@pytest.fixture
def projected_help_desk(portal: Portal, sync_directory) -> str:
    """The help desk, projected into Keycloak by the real sync, signed in as iacs-sync itself."""
    username = portal.help_desk("helpdesk")
    gateway = KeycloakGateway.from_settings(portal.settings.keycloak)
    result = reconcile(gateway, sync_directory.snapshot(), load_catalogue())
    assert result.report.missing_users == [] and result.report.problems == []
    assert result.report.writes["add_member"] == 1
    return username


def test_sec_approver_without_second_factor_is_refused(
    portal: Portal, projected_help_desk: str
) -> None:
    """First sign-in enrols TOTP (no second factor yet: refused); the next, with a code, passes."""
    client = _TokenClient(portal)
    browser = loopback_browser_session()
    secret, enrolled = _enrol_totp(
        browser, _sign_in(browser, client.authorize_url(), projected_help_desk)
    )
    first = client.tokens(_back_to_portal(enrolled))
    claims = _claims(first["id_token"])
    assert claims["iacs_mfa"] == "required"
    assert "otp" not in claims.get("amr", [])
    refused = _me(portal, first["access_token"])
    assert refused.status_code == 401, refused.json
    assert "second factor" in json.dumps(refused.json)

    time.sleep(max(0.0, 30 - time.time() % 30) + 1)  # a fresh TOTP period: codes are single-use
    browser = loopback_browser_session()
    otp_page = _sign_in(browser, client.authorize_url(), projected_help_desk)
    assert otp_page.status_code == 200 and 'name="otp"' in otp_page.text, otp_page.text[:300]
    wrong = _post_form(browser, otp_page, {"otp": "000000"})
    assert wrong.status_code == 200  # refused: the form again
    second = client.tokens(
        _back_to_portal(_post_form(browser, wrong, {"otp": pyotp.TOTP(secret).now()}))
    )
    assert "otp" in _claims(second["id_token"])["amr"]
    accepted = _me(portal, second["access_token"])
    assert accepted.status_code == 200, accepted.json


def test_sec_portal_sign_in_without_second_factor_is_refused(
    portal: Portal, projected_help_desk: str
) -> None:
    """The portal's own sign-in (browser session): refused after enrolment, kept after a code."""
    app = portal.app.test_client()
    start = app.get("/auth/login?next=/my")
    browser = loopback_browser_session()
    secret, enrolled = _enrol_totp(
        browser, _sign_in(browser, start.headers["Location"], "helpdesk")
    )
    callback = urlsplit(_back_to_portal(enrolled))
    refused = app.get(f"/auth/callback?{callback.query}")
    assert refused.status_code == 403
    assert app.get("/my").status_code == 302  # not signed in

    time.sleep(max(0.0, 30 - time.time() % 30) + 1)
    again = app.get("/auth/login?next=/my&reauthenticate=1")
    assert "prompt=login" in again.headers["Location"]
    otp_page = _sign_in(browser, again.headers["Location"], "helpdesk")
    back = urlsplit(
        _back_to_portal(_post_form(browser, otp_page, {"otp": pyotp.TOTP(secret).now()}))
    )
    signed_in = app.get(f"/auth/callback?{back.query}")
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/my"
    assert app.get("/my").status_code == 200
