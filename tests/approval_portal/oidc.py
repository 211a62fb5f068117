"""Signing in through the real Keycloak login form with ``requests``, as a browser would.

``login_through_form`` follows an authorization URL the portal produced to Keycloak's login
page, submits the username and password, and returns the redirect back to the portal (with
``code`` and ``state``) without following it. ``code_flow_tokens`` runs the whole authorization
code flow with PKCE S256 as the portal client (engineer A's ``browser_code_flow`` plays the
browser) and redeems the code for Keycloak's token response.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

import requests

from tests.fixtures.keycloak import browser_code_flow, loopback_browser_session, redeem_code

_FORM = re.compile(r"<form[^>]*\bid=\"kc-form-login\"[^>]*>", re.S)
_ACTION = re.compile(r"\baction=\"([^\"]+)\"")
_ANY_FORM = re.compile(r"<form[^>]*\baction=\"([^\"]+)\"[^>]*>", re.S)
_ERROR = re.compile(r'id="input-error[^"]*"[^>]*>\s*([^<]+)<', re.S)


class LoginFailed(AssertionError):
    """Keycloak did not send the browser back to the client; the message says what it showed."""


def browser_session() -> requests.Session:
    """A ``requests`` session that keeps Keycloak's cookies as a browser on loopback would."""
    return loopback_browser_session()


def login_through_form(
    browser: requests.Session, authorize_url: str, username: str, password: str
) -> str:
    """Submit Keycloak's login form; return the Location Keycloak sends back to the client."""
    page = browser.get(authorize_url, allow_redirects=True, timeout=30)
    if page.status_code != 200:
        raise LoginFailed(f"login page answered {page.status_code}: {page.text[:300]}")
    form = _FORM.search(page.text)
    action = _ACTION.search(form.group(0)) if form else None
    if action is None:
        raise LoginFailed(f"no login form on {page.url}: {page.text[:500]}")
    answer = browser.post(
        urljoin(page.url, html.unescape(action.group(1))),
        data={"username": username, "password": password, "credentialId": ""},
        allow_redirects=False,
        timeout=30,
    )
    if answer.status_code in (302, 303):
        return answer.headers["Location"]
    shown = _ERROR.search(answer.text)
    other_form = _ANY_FORM.search(answer.text)
    raise LoginFailed(
        f"Keycloak did not redirect after login ({answer.status_code}); "
        f"error: {shown.group(1).strip() if shown else '-'}; "
        f"next form: {html.unescape(other_form.group(1)) if other_form else '-'}"
    )


def code_flow_tokens(
    *,
    keycloak_url: str,
    realm: str,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    username: str,
    password: str,
) -> dict:
    """The authorization code flow with PKCE S256, as the portal client; Keycloak's token JSON."""
    issuer = f"{keycloak_url.rstrip('/')}/realms/{realm}"
    result = browser_code_flow(
        issuer, client_id, redirect_uri, username, password, scope="openid profile email"
    )
    if result.params.get("state") != result.state or "code" not in result.params:
        raise LoginFailed(f"unexpected redirect after login: {result.location}")
    answer = redeem_code(issuer, client_id, client_secret, redirect_uri, result)
    if answer.status_code != 200:
        raise LoginFailed(f"token endpoint answered {answer.status_code}: {answer.text[:300]}")
    return answer.json()
