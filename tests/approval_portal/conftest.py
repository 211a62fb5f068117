"""The portal against the real servers: engineer B's slapd subtree, engineer A's Keycloak realm.

``portal`` builds the app over a fresh directory and realm per test and gives the tests people
who sign in through the real Keycloak login form (``tests.approval_portal.oidc``): ``api(name)``
calls the JSON API with that person's bearer token (obtained by the PKCE code flow and cached per
person), ``sign_in(name)`` returns a Flask test client signed in through the portal's own
``/auth/login`` → Keycloak → ``/auth/callback``. Help-desk staff are written by the operator's
bootstrap (the root account), as in production.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from approval_portal import create_app
from iacs.domain import Membership, Person, Role, ScopeKind
from iacs.enrollment import FileEnrollmentSource
from iacs.service import AccessService
from iacs.settings import LdapSettings, PortalSettings, Settings
from iacs.stack.redis import RedisInstance
from tests.approval_portal.oidc import browser_session, code_flow_tokens, login_through_form
from tests.fixtures.keycloak import keycloak_settings_for

PORTAL_URL = "http://portal.test"
PASSWORD = "Portal-Test-Password-1"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    """A clock the tests move forward (LC-2 expiry, LC-3 recertification).

    Like a real clock it never answers the same instant twice (one microsecond per reading):
    two decisions are never stamped with the same time.
    """

    def __init__(self) -> None:
        self.now = datetime.now(UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self.now += timedelta(microseconds=1)
            return self.now

    def advance(self, **delta: float) -> None:
        with self._lock:
            self.now += timedelta(**delta)


@dataclass
class ApiUser:
    """One person calling the JSON API with their own bearer token."""

    client: FlaskClient
    token: str
    username: str

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(extra or {})}

    def get(self, path: str, **kwargs: Any):
        return self.client.get(f"/api/v1{path}", headers=self._headers(), **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any):
        return self.client.post(f"/api/v1{path}", json=json, headers=self._headers(), **kwargs)

    def patch(self, path: str, json: Any = None):
        return self.client.patch(f"/api/v1{path}", json=json, headers=self._headers())

    def put(self, path: str, json: Any = None):
        return self.client.put(f"/api/v1{path}", json=json, headers=self._headers())

    def delete(self, path: str):
        return self.client.delete(f"/api/v1{path}", headers=self._headers())

    # -- the requests of the model, by name ---------------------------------------------------

    def file(self, kind: str, **fields: str):
        return self.post("/requests", {"kind": kind, **fields})

    def decide(self, request_id: str, decision: str = "approve", reason: str = ""):
        body = {"decision": decision}
        if reason:
            body["reason"] = reason
        return self.post(f"/requests/{request_id}/decision", body)

    def memberships(self) -> set[tuple[str, str, str]]:
        answer = self.get("/me")
        assert answer.status_code == 200, answer.json
        return {(m["role"], m["scope_kind"], m["scope_id"]) for m in answer.json["memberships"]}


@dataclass
class Portal:
    """The app under test, its service, and the people of one test."""

    app: Flask
    service: AccessService
    settings: Settings
    clock: Clock
    make_person: Callable[..., Any]
    root_directory: Any
    tokens: dict[str, dict] = field(default_factory=dict)
    people: set[str] = field(default_factory=set)

    # -- people ------------------------------------------------------------------------------

    def person(self, username: str) -> str:
        """A person in the directory (and so, by federation, in Keycloak) with ``PASSWORD``."""
        if username not in self.people:
            self.make_person(username, password=PASSWORD, display_name=f"{username.title()} Test")
            self.people.add(username)
        return username

    def help_desk(self, username: str = "helpdesk") -> str:
        """A help-desk agent: configured by the operator, never self-registered."""
        self.person(username)
        self.root_directory.add_member(Membership(Role.HELP_DESK, ScopeKind.SYSTEM), username)
        return username

    def token_response(self, username: str) -> dict:
        """Keycloak's token response for the person (code flow + PKCE), cached per person."""
        self.person(username)
        if username not in self.tokens:
            keycloak = self.settings.keycloak
            self.tokens[username] = code_flow_tokens(
                keycloak_url=keycloak.url,
                realm=keycloak.realm,
                client_id=keycloak.portal_client_id,
                client_secret=keycloak.portal_client_secret.get_secret_value(),
                redirect_uri=f"{PORTAL_URL}/auth/callback",
                username=username,
                password=PASSWORD,
            )
        return self.tokens[username]

    def api(self, username: str) -> ApiUser:
        token = self.token_response(username)["access_token"]
        return ApiUser(self.app.test_client(), token, username)

    def sign_in(self, username: str) -> FlaskClient:
        """A browser session signed in through the portal's OIDC flow and the real login form."""
        self.person(username)
        client = self.app.test_client()
        start = client.get("/auth/login?next=/my")
        assert start.status_code == 302, start.data
        with browser_session() as browser:
            back = login_through_form(browser, start.headers["Location"], username, PASSWORD)
        parts = urlsplit(back)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{PORTAL_URL}/auth/callback"
        done = client.get(f"/auth/callback?{parts.query}")
        assert done.status_code == 302, done.data
        assert done.headers["Location"] == "/my"
        return client

    def with_portal_settings(self, **changes: object) -> Portal:
        """The same people, directory and realm, served by a new app instance whose portal
        settings differ (short session timeouts, a low rate limit)."""
        settings = self.settings.model_copy(
            update={"portal": self.settings.portal.model_copy(update=changes)}
        )
        app = create_app(settings, service=self.service)
        app.testing = True
        return dataclasses.replace(self, app=app, settings=settings)

    # -- building a community through the API ------------------------------------------------

    def organization(
        self, security_official: str, identifier: str = "123456789", name: str = "Lakeside General"
    ) -> str:
        """A registered organization whose Security Official the help desk approved."""
        filed = self.api(security_official).file(
            "register_organization",
            name=name,
            identifier=identifier,
            provider_type="hospital",
        )
        assert filed.status_code == 201, filed.json
        decided = self.api(self.help_desk()).decide(filed.json["id"])
        assert decided.status_code == 200, decided.json
        return filed.json["organization_id"]

    def grant(self, approver: str, requester: str, kind: str, **fields: str) -> dict:
        """File a request as ``requester`` and have ``approver`` approve it."""
        filed = self.api(requester).file(kind, **fields)
        assert filed.status_code == 201, filed.json
        decided = self.api(approver).decide(filed.json["id"])
        assert decided.status_code == 200, decided.json
        return decided.json

    def user_group(
        self, org_id: str, officer: str, administrator: str, name: str = "Billing"
    ) -> str:
        """A user group with ``administrator`` as its approved UGA."""
        granted = self.grant(
            officer,
            administrator,
            "user_group_administrator",
            organization_id=org_id,
            group_name=name,
        )
        return granted["group_id"]

    def surrogate_group(self, org_id: str, officer: str, administrator: str, name: str) -> str:
        granted = self.grant(
            officer, administrator, "register_surrogate_group", organization_id=org_id, name=name
        )
        return granted["surrogate_group_id"]


def csrf_token(client: FlaskClient, path: str = "/") -> str:
    """The CSRF token of the signed-in session, read from a page's form."""
    page = client.get(path)
    found = _CSRF.search(page.get_data(as_text=True))
    assert found, f"no CSRF token on {path}"
    return found.group(1)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def portal_settings(
    keycloak: Any,
    realm_name: str,
    ldap_settings: LdapSettings,
    redis_server: RedisInstance,
    redis_store: Any,
) -> Settings:
    """``keycloak_config/realm.json`` applied with LDAP federation to the test's slapd, into a
    fresh realm (engineer A's ``realm_name`` deletes it); plain http, so cookies are not
    Secure-only; sessions in the session's Redis (emptied for the test). Refusals are limited
    generously here; the rate-limit tests set their own limit."""
    from keycloak_config.apply import apply_from_settings

    settings = Settings(
        environment="development",
        ldap=ldap_settings,
        keycloak=keycloak_settings_for(keycloak, realm_name),
        portal=PortalSettings(
            public_url=PORTAL_URL,
            session_cookie_secure=False,
            session_store_url=redis_server.url,
            refused_attempts_per_minute=1000,
        ),
    )
    apply_from_settings(settings, with_federation=True)
    return settings


@pytest.fixture
def portal(portal_settings, directory, root_directory, make_person, clock) -> Portal:
    service = AccessService(directory, FileEnrollmentSource(), clock=clock)
    app = create_app(portal_settings, service=service)
    app.testing = True
    return Portal(app, service, portal_settings, clock, make_person, root_directory)


__all__ = ["PASSWORD", "PORTAL_URL", "ApiUser", "Clock", "Person", "Portal", "csrf_token"]
