"""A process without the sync client's secret (the portal's container in compose) cannot change
accounts, and says so clearly instead of crashing (pure: no server is reached)."""

from __future__ import annotations

import pytest

from iacs.service.errors import Unavailable
from iacs.settings import KeycloakSettings, UnsetSecret
from sync.accounts import KeycloakAccounts


def test_sec_accounts_without_the_sync_secret_refuse_clearly() -> None:
    settings = KeycloakSettings(
        url="https://keycloak.invalid",
        sync_client_secret=UnsetSecret("IACS_KEYCLOAK__SYNC_CLIENT_SECRET"),
    )
    accounts = KeycloakAccounts(settings)
    with pytest.raises(Unavailable, match="IACS_KEYCLOAK__SYNC_CLIENT_SECRET"):
        accounts.set_enabled("sofia", True)
    with pytest.raises(Unavailable, match="where the sync worker runs"):
        accounts.sign_ins_recorded_since()
