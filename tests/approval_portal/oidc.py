"""Signing in through the real Keycloak login form with ``requests``, as a browser would.

``login_through_form`` follows an authorization URL to Keycloak's login page, submits the
username and password, and returns the redirect back to the client (carrying ``code`` and
``state``) without following it. ``code_flow_tokens`` does the whole authorization code flow
with PKCE S256 for a confidential client and returns Keycloak's token response.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

_FORM = re.compile(r"<form[^>]*\bid=\"kc-form-login\"[^>]*>", re.S)
_ACTION = re.compile(r"\baction=\"([^\"]+)\"")
_ANY_FORM = re.compile(r"<form[^>]*\baction=\"([^\"]+)\"[^>]*>", re.S)
_ERROR = re.compile(r'id="input-error[^"]*"[^>]*>\s*([^<]+)<', re.S)


def browser_session() -> requests.Session:
    """A ``requests`` session to play the browser."""
    return requests.Session()


def _loopback_is_secure(browser: requests.Session) -> None:
    """Browsers treat http://127.0.0.1 as a secure context and send Keycloak's Secure cookies
    back to it; Python's cookie jar does not, so clear the flag on loopback cookies."""
    for cookie in browser.cookies:
        if cookie.domain.lstrip(".") in ("127.0.0.1", "localhost"):
            cookie.secure = False


class LoginFailed(AssertionError):
    """Keycloak did not send the browser back to the client; the message says what it showed."""


def login_through_form(
    browser: requests.Session, authorize_url: str, username: str, password: str
) -> str:
    """Submit Keycloak's login form; return the Location Keycloak sends back to the client."""
    page = browser.get(authorize_url, allow_redirects=True, timeout=30)
    _loopback_is_secure(browser)
    if page.status_code != 200:
        raise LoginFailed(f"login page answered {page.status_code}: {page.text[:300]}")
    form = _FORM.search(page.text)
    action = _ACTION.search(form.group(0)) if form else None
    if action is None:
        raise LoginFailed(f"no login form on {page.url}: {page.text[:500]}")
    target = urljoin(page.url, html.unescape(action.group(1)))
    answer = browser.post(
        target,
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


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


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
    base = f"{keycloak_url.rstrip('/')}/realms/{realm}/protocol/openid-connect"
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    query = urlencode(
        {
            "client_id": client_id,
            "response_type": "code",
            "scope": "openid profile email",
            "redirect_uri": redirect_uri,
            "state": state,
            "nonce": secrets.token_urlsafe(16),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    with browser_session() as browser:
        location = login_through_form(browser, f"{base}/auth?{query}", username, password)
    params = parse_qs(urlsplit(location).query)
    if params.get("state") != [state] or "code" not in params:
        raise LoginFailed(f"unexpected redirect after login: {location}")
    answer = requests.post(
        f"{base}/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"][0],
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        auth=(client_id, client_secret),
        timeout=30,
    )
    if answer.status_code != 200:
        raise LoginFailed(f"token endpoint answered {answer.status_code}: {answer.text[:300]}")
    return answer.json()
