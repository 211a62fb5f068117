"""The realm's password policy binds on every path a password is set (issue 13, item 1).

ASVS 5.0 V6: at least 12 characters, at most 128, no composition rules, not the username or
e-mail, not one of the common or breached passwords of ``keycloak_config/password-blocklist.txt``.
With LDAP federation Keycloak applies the policy to a federated person only when the provider's
``validatePasswordPolicy`` is on; then registration, the update-password action, an admin reset
and the admin API all refuse a weak password, and it never reaches the directory: an LDAP bind
with it fails. Each ``test_sec_weak_password_refused_*`` performs one of these through the real
Keycloak login pages or admin API, against the realm as code federated to the test's slapd.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from urllib.parse import urlencode, urljoin

import ldap3
import pytest
from keycloak.exceptions import KeycloakError

from iacs.settings import KeycloakSettings, LdapSettings, PortalSettings, Settings
from keycloak_config.apply import apply_from_settings
from tests.fixtures.keycloak import loopback_browser_session

pytestmark = pytest.mark.servers

PORTAL_URL = "http://portal.test"
GOOD = "correct horse battery staple"  # 28 characters, no composition rules needed
SHORT = "b"
LISTED = "qwerty123456"  # 12 characters, in the blocklist
_FORM = re.compile(r"<form[^>]*\baction=\"([^\"]+)\"[^>]*>", re.S)
_REGISTER = re.compile(r'href="([^"]*login-actions/registration[^"]*)"')
_ERROR = re.compile(r'id="input-error[^"]*"[^>]*>\s*([^<]+)<', re.S)


@pytest.fixture
def federated(keycloak, realm_name: str, ldap_settings: LdapSettings, clean_tree) -> Settings:
    """``realm.json`` applied with LDAP federation to the test's slapd, in a fresh realm."""
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
    )
    apply_from_settings(settings, with_federation=True)
    return settings


def _authorize_url(settings: Settings, **extra: str) -> str:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "client_id": settings.keycloak.portal_client_id,
        "redirect_uri": f"{PORTAL_URL}/auth/callback",
        "response_type": "code",
        "scope": "openid",
        "state": secrets.token_urlsafe(8),
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        **extra,
    }
    base = f"{settings.keycloak.url.rstrip('/')}/realms/{settings.keycloak.realm}"
    return f"{base}/protocol/openid-connect/auth?{urlencode(params)}"


def _submit(browser, page, data: dict[str, str]):
    """Post the page's (only) form; return Keycloak's answer without following a redirect.

    Keycloak's form actions are absolute URLs, so a re-shown form (an answer to a post) works
    as a page too.
    """
    action = _FORM.search(page.text)
    assert action, f"no form: {page.text[:300]}"
    return browser.post(
        urljoin(page.url, html.unescape(action.group(1))),
        data=data,
        allow_redirects=False,
        timeout=30,
    )


def _refused(answer):
    """Keycloak showed the form again with an error (no redirect back to the client)."""
    assert answer.status_code == 200, (answer.status_code, answer.headers.get("Location"))
    assert _ERROR.search(answer.text) or "alert-error" in answer.text, answer.text[:500]
    return answer


def _binds(settings: Settings, username: str, password: str) -> bool:
    dn = f"uid={ldap3.utils.dn.escape_rdn(username)},ou=people,{settings.ldap.base_dn}"
    server = ldap3.Server(settings.ldap.url, get_info=ldap3.NONE, connect_timeout=5)
    connection = ldap3.Connection(server, dn, password, receive_timeout=10)
    try:
        return connection.bind()
    finally:
        connection.unbind()


def _register(browser, settings: Settings, username: str, password: str):
    login = browser.get(_authorize_url(settings), timeout=30)
    link = _REGISTER.search(login.text)
    assert link, "the login page offers no registration"
    form = browser.get(urljoin(login.url, html.unescape(link.group(1))), timeout=30)
    return _submit(
        browser,
        form,
        {
            "username": username,
            "email": f"{username}@example.test",
            "firstName": "Reg",
            "lastName": "Istrant",
            "password": password,
            "password-confirm": password,
        },
    )


def test_sec_weak_password_refused_at_registration(federated: Settings, ldap_connect) -> None:
    """``b`` and a listed password are refused and nobody is created; a passphrase works."""
    for weak in (SHORT, LISTED, "reggie-registrant"):  # the last one: the username itself
        _refused(_register(loopback_browser_session(), federated, "reggie-registrant", weak))
    root = ldap_connect()
    root.search(f"ou=people,{federated.ldap.base_dn}", "(uid=reggie-registrant)")
    assert root.entries == []
    answer = _register(loopback_browser_session(), federated, "reggie-registrant", GOOD)
    assert answer.status_code in (302, 303), answer.text[:500]
    assert answer.headers["Location"].startswith(f"{PORTAL_URL}/auth/callback")
    assert _binds(federated, "reggie-registrant", GOOD)


def test_sec_weak_password_refused_on_update_password(federated: Settings, make_person) -> None:
    """``kc_action=UPDATE_PASSWORD`` (what the account console sends): weak ones refused."""
    make_person("uma", password=GOOD)
    browser = loopback_browser_session()
    login = browser.get(_authorize_url(federated, kc_action="UPDATE_PASSWORD"), timeout=30)
    answer = _submit(browser, login, {"username": "uma", "password": GOOD, "credentialId": ""})
    assert answer.status_code in (302, 303), answer.text[:500]  # to the required action
    page = browser.get(urljoin(answer.url, answer.headers["Location"]), timeout=30)
    assert "password-new" in page.text, page.text[:500]
    for weak in (SHORT, LISTED, "a" * 129):
        page = _refused(_submit(browser, page, {"password-new": weak, "password-confirm": weak}))
        assert not _binds(federated, "uma", weak)
    stronger = "a different correct horse battery"
    done = _submit(browser, page, {"password-new": stronger, "password-confirm": stronger})
    assert done.status_code in (302, 303), done.text[:500]
    assert _binds(federated, "uma", stronger)
    assert not _binds(federated, "uma", GOOD)


def test_sec_weak_password_refused_on_admin_reset(
    federated: Settings, make_person, keycloak_admin_factory
) -> None:
    """An administrator's reset to ``a`` (or a listed one) is refused; the old one still binds."""
    make_person("rita", password=GOOD)
    admin = keycloak_admin_factory(federated.keycloak.realm)
    user_id = admin.get_user_id("rita")  # imports her from LDAP
    for weak in ("a", LISTED):
        with pytest.raises(KeycloakError) as refused:
            admin.set_user_password(user_id, weak, temporary=False)
        assert refused.value.response_code == 400
        assert not _binds(federated, "rita", weak)
    assert _binds(federated, "rita", GOOD)
    admin.set_user_password(user_id, "fifteen chars ok", temporary=False)
    assert _binds(federated, "rita", "fifteen chars ok")


def test_sec_weak_password_refused_through_the_admin_api(
    federated: Settings, keycloak_admin_factory, ldap_connect
) -> None:
    """Creating a person through the admin API with a weak password: refused, never bindable.

    Keycloak writes the LDAP entry before it checks the password and cannot take the entry back
    when the check fails (LDAP has no transaction): what is left has no password at all.
    """
    admin = keycloak_admin_factory(federated.keycloak.realm)
    with pytest.raises(KeycloakError) as refused:
        admin.create_user(
            {
                "username": "adam",
                "enabled": True,
                "email": "adam@example.test",
                "firstName": "A",
                "lastName": "D",
                "credentials": [{"type": "password", "value": "a", "temporary": False}],
            }
        )
    assert refused.value.response_code == 400
    assert not _binds(federated, "adam", "a")
    root = ldap_connect()
    root.search(f"ou=people,{federated.ldap.base_dn}", "(uid=adam)", attributes=["userPassword"])
    assert all(not entry.entry_attributes_as_dict.get("userPassword") for entry in root.entries)
