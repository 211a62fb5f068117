"""Multi-factor sign-in for those who hold authority; no password grant (issue 13, item 8)."""

from __future__ import annotations

import pytest
import requests

from tests.fixtures.keycloak import AppliedRealm

pytestmark = pytest.mark.servers


def test_sec_password_grant_to_admin_cli_is_refused(
    applied_realm: AppliedRealm, keycloak_admin_factory
) -> None:
    """``admin-cli`` of the product realm takes no password (it would skip the MFA flow)."""
    master = keycloak_admin_factory(applied_realm.name)
    master.create_user(
        {
            "username": "pat",
            "enabled": True,
            "email": "pat@example.test",
            "firstName": "P",
            "lastName": "T",
            "credentials": [{"type": "password", "value": "a long passphrase", "temporary": False}],
        }
    )
    answer = requests.post(
        f"{applied_realm.issuer}/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": "admin-cli",
            "username": "pat",
            "password": "a long passphrase",
        },
        timeout=30,
    )
    assert answer.status_code in (400, 401), answer.text
    assert answer.json()["error"] == "unauthorized_client"
    assert "access_token" not in answer.json()
