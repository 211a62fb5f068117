"""The realm's e-mail (issue 10, item 1): "Forgot password?" and e-mail verification, for real.

``iacs keycloak apply`` sets the realm's SMTP server from ``IACS_MAIL__*`` (``realm.json``
holds no part of it); Keycloak then mails through the session's aiosmtpd, and the tests follow
the mailed links on Keycloak's real pages, with ``requests`` like a browser.
"""

from __future__ import annotations

import html
import re
import secrets
from email.message import EmailMessage
from urllib.parse import urljoin

import pytest

from iacs.settings import KeycloakSettings, LdapSettings, PortalSettings, Settings
from iacs.stack.smtp import SmtpInstance
from keycloak_config.apply import apply_from_settings, load_realm_definition
from tests.fixtures.keycloak import loopback_browser_session
from tests.keycloak_config.test_password_policy import (
    GOOD,
    LISTED,
    PORTAL_URL,
    _authorize_url,
    _binds,
    _refused,
    _register,
    _submit,
)

pytestmark = pytest.mark.servers

_RESET = re.compile(r'href="([^"]*login-actions/reset-credentials[^"]*)"')
_ACTION_LINK = re.compile(r"(https?://\S+/login-actions/action-token\?\S+)")


@pytest.fixture
def mailed(
    keycloak, realm_name: str, ldap_settings: LdapSettings, clean_tree, mailbox: SmtpInstance
) -> Settings:
    """``realm.json`` federated to the test's slapd, with the session's SMTP server as relay."""
    settings = Settings(
        ldap=ldap_settings,
        keycloak=KeycloakSettings(
            url=keycloak.url,
            realm=realm_name,
            admin_username=keycloak.admin_username,
            admin_password=keycloak.admin_password,
            portal_client_secret=secrets.token_urlsafe(24),
            sync_client_secret=secrets.token_urlsafe(24),
        ),
        portal=PortalSettings(public_url=PORTAL_URL, session_cookie_secure=False),
        mail=mailbox.mail_settings(),
    )
    apply_from_settings(settings, with_federation=True)
    return settings


def _mailed_link(mailbox: SmtpInstance, address: str) -> str:
    messages: list[EmailMessage] = [m for m in mailbox.messages() if m["To"] == address]
    assert len(messages) == 1, [m["Subject"] for m in mailbox.messages()]
    body = messages[0].get_body(preferencelist=("plain",))
    assert body is not None
    found = _ACTION_LINK.search(body.get_content())
    assert found, body.get_content()[:500]
    return found.group(1)


def test_realm_json_holds_no_mail_server_and_apply_is_idempotent(mailed: Settings) -> None:
    assert "smtpServer" not in load_realm_definition(mailed, with_federation=True)
    assert apply_from_settings(mailed, with_federation=True) == []


def test_forgot_password_through_keycloaks_page_and_the_mailed_link(
    mailed: Settings, make_person, mailbox: SmtpInstance
) -> None:
    """The login page offers the reset; the mailed link sets a new password (policy checked)."""
    make_person("fiona", password=GOOD)
    browser = loopback_browser_session()
    login = browser.get(_authorize_url(mailed), timeout=30)
    link = _RESET.search(login.text)
    assert link, "the login page offers no 'Forgot password?'"
    form = browser.get(urljoin(login.url, html.unescape(link.group(1))), timeout=30)
    sent = _submit(browser, form, {"username": "fiona"})
    assert sent.status_code in (200, 302, 303), sent.text[:500]

    action = browser.get(_mailed_link(mailbox, "fiona@example.test"), timeout=30)
    if "password-new" not in action.text:  # Keycloak may ask to confirm the link's session
        action = browser.get(urljoin(action.url, action.headers.get("Location", "")), timeout=30)
    assert "password-new" in action.text, action.text[:500]
    page = _refused(_submit(browser, action, {"password-new": LISTED, "password-confirm": LISTED}))
    assert not _binds(mailed, "fiona", LISTED)  # the realm's policy binds here too
    chosen = "a forgotten horse found again"
    done = _submit(browser, page, {"password-new": chosen, "password-confirm": chosen})
    assert done.status_code in (200, 302, 303), done.text[:500]
    assert _binds(mailed, "fiona", chosen)
    assert not _binds(mailed, "fiona", GOOD)


def test_registration_asks_to_verify_the_e_mail_address_by_a_mailed_link(
    mailed: Settings, mailbox: SmtpInstance
) -> None:
    browser = loopback_browser_session()
    answer = _register(browser, mailed, "vera-verifier", GOOD)
    if answer.status_code in (302, 303):
        answer = browser.get(urljoin(answer.url, answer.headers["Location"]), timeout=30)
    assert not answer.url.startswith(PORTAL_URL)  # not signed in before the address is verified
    verified = browser.get(
        _mailed_link(mailbox, "vera-verifier@example.test"), timeout=30, allow_redirects=False
    )
    while verified.status_code in (302, 303) and not verified.headers["Location"].startswith(
        PORTAL_URL
    ):
        verified = browser.get(
            urljoin(verified.url, verified.headers["Location"]), timeout=30, allow_redirects=False
        )
    assert verified.status_code in (200, 302, 303), verified.text[:500]
    if verified.status_code == 200:  # "your e-mail address has been verified" / "continue"
        assert "verified" in verified.text.lower() or "proceed" in verified.text.lower()
    else:
        assert verified.headers["Location"].startswith(f"{PORTAL_URL}/auth/callback")
