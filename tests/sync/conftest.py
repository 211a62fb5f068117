"""Fixtures of the sync tests against the session's real Keycloak.

Each test gets a fresh minimal realm holding the catalogue's application clients and roles: the
worker's group, role and membership behaviour does not depend on the realm's mappers. The tests
of the token claims (``test_tokens_end_to_end.py``) use the realm as code (``applied_realm``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from keycloak import KeycloakAdmin

from iacs.catalogue import load_catalogue
from sync.gateway import KeycloakGateway

LOGIN_CLIENT = "sync-test-login"
PASSWORD = "Correct-Horse-9"


@dataclass(frozen=True)
class KeycloakServer:
    url: str
    admin_username: str
    admin_password: str


@pytest.fixture(scope="session")
def keycloak_server(keycloak) -> KeycloakServer:
    """The session's Keycloak (``tests/fixtures/keycloak.py``; honours IACS_TEST_KEYCLOAK_URL)."""
    return KeycloakServer(
        keycloak.url.rstrip("/"), keycloak.admin_username, keycloak.admin_password
    )


@pytest.fixture
def realm(keycloak_server: KeycloakServer) -> Iterator[str]:
    """A fresh realm with the catalogue's clients and roles and a public login client."""
    name = f"sync-{uuid.uuid4().hex[:10]}"
    master = _master_admin(keycloak_server)
    catalogue = load_catalogue()
    clients = [
        {
            "clientId": client_id,
            "publicClient": True,
            "standardFlowEnabled": False,
            "directAccessGrantsEnabled": True,
            "fullScopeAllowed": False,
        }
        for client_id in catalogue.applications
    ]
    clients.append(
        {"clientId": LOGIN_CLIENT, "publicClient": True, "directAccessGrantsEnabled": True}
    )
    master.create_realm(
        {
            "realm": name,
            "enabled": True,
            "clients": clients,
            "roles": {
                "client": {
                    client_id: [{"name": role} for role in app.roles]
                    for client_id, app in catalogue.applications.items()
                }
            },
        }
    )
    try:
        yield name
    finally:
        master.delete_realm(name)


def _master_admin(server: KeycloakServer, realm_name: str = "master") -> KeycloakAdmin:
    return KeycloakAdmin(
        server_url=server.url + "/",
        username=server.admin_username,
        password=server.admin_password,
        realm_name=realm_name,
        user_realm_name="master",
    )


@pytest.fixture
def gateway(keycloak_server: KeycloakServer, realm: str) -> KeycloakGateway:
    """The sync worker's gateway to the test realm (the master admin stands in for iacs-sync)."""
    return KeycloakGateway(_master_admin(keycloak_server, realm), workers=4)


@pytest.fixture
def make_users(gateway: KeycloakGateway):
    """Create Keycloak users directly: a stand-in for LDAP federation (user accounts only)."""

    def make(*usernames: str) -> dict[str, str]:
        ids = {}
        for username in usernames:
            ids[username] = gateway.admin.create_user(
                {
                    "username": username,
                    "enabled": True,
                    "email": f"{username}@example.test",
                    "emailVerified": True,
                    "firstName": username.title(),
                    "lastName": "Test",
                    "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}],
                },
                exist_ok=True,
            )
        return ids

    return make


@pytest.fixture
def login(keycloak_server: KeycloakServer, realm: str):
    """Password-grant login: returns the token response (access and refresh token)."""

    def token(username: str, client_id: str = LOGIN_CLIENT) -> dict:
        response = requests.post(
            f"{keycloak_server.url}/realms/{realm}/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": client_id,
                "username": username,
                "password": PASSWORD,
                "scope": "openid",
            },
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    return token


@pytest.fixture
def refresh(keycloak_server: KeycloakServer, realm: str):
    """Use a refresh token; returns the raw response (400 once the session has ended)."""

    def use(refresh_token: str, client_id: str = LOGIN_CLIENT) -> requests.Response:
        return requests.post(
            f"{keycloak_server.url}/realms/{realm}/protocol/openid-connect/token",
            data={
                "grant_type": "refresh_token",
                "client_id": client_id,
                "refresh_token": refresh_token,
            },
            timeout=30,
        )

    return use


def newest_change(directory) -> str | None:
    """The ``reqStart`` of the newest write in the change log (read page by page)."""
    cursor = None
    while page := directory.changes_since(cursor, limit=1000):
        cursor = page[-1].cursor
        if len(page) < 1000:
            break
    return cursor


class Retries(logging.Handler):
    """Collects the worker's "run failed; retrying" records (when, how long it backs off)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "run failed; retrying":
            self.records.append(record)

    def since(self, index: int) -> list[logging.LogRecord]:
        return list(self.records[index:])
