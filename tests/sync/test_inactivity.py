"""Inactivity (issue 10, item 4) against the real slapd and Keycloak: login events → disable.

A realm applied with LDAP federation; people in the directory sign in through Keycloak's real
login form (each a ``LOGIN`` event). The inactivity pass, as the scheduler calls it
(``iacs.service.lifecycle.disable_inactive``), reads those events with the sync client's
``view-events`` and disables, in Keycloak, the account that did not sign in within the period;
the help desk re-enables it. The period is seconds here (the setting is days): the test waits a
few seconds instead of 60 days, and asserts no duration.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from iacs.directory import Directory
from iacs.domain import Membership, Person, Role, ScopeKind
from iacs.service import AccessService, Forbidden
from iacs.service.lifecycle import disable_inactive
from iacs.settings import PortalSettings, Settings
from tests.fixtures.keycloak import (
    browser_code_flow,
    delete_realm_if_present,
    keycloak_settings_for,
    unique_realm_name,
)
from tests.fixtures.slapd import reset_tree

pytestmark = pytest.mark.servers

PASSWORD = "Inactivity-Password-1"
APP = "pqri-feedback-reports"
REDIRECT = "http://127.0.0.1:9/oidc/callback"


@dataclasses.dataclass
class World:
    settings: Settings
    service: AccessService
    admin: object


def sign_in(world: World, username: str, *, refused: bool = False) -> bool:
    """Sign in through Keycloak's login form; whether Keycloak let the person in. Unless
    ``refused`` is expected, a refusal fails the test with Keycloak's page."""
    try:
        flow = browser_code_flow(world.settings.keycloak.issuer, APP, REDIRECT, username, PASSWORD)
    except AssertionError as error:  # Keycloak answered its login page again, with an error
        if not refused or "login did not redirect" not in str(error):
            raise
        return False
    return "code" in flow.params


@pytest.fixture(scope="module")
def world(keycloak, slapd, ldap_settings) -> Iterator[World]:
    from iacs.wiring import build_service
    from keycloak_config.apply import apply_from_settings
    from tests.fixtures.keycloak import _admin

    reset_tree(slapd)
    realm = unique_realm_name()
    settings = Settings(
        ldap=ldap_settings,
        keycloak=keycloak_settings_for(
            keycloak,
            realm,
            application_redirect_uris={APP: REDIRECT},
            application_client_secrets={APP: secrets.token_urlsafe(24)},
        ),
        portal=PortalSettings(public_url="http://127.0.0.1:9", session_cookie_secure=False),
    )
    try:
        apply_from_settings(settings, with_federation=True)
        with Directory(ldap_settings, bind_dn=slapd.root_dn, password=slapd.root_password) as root:
            for username in ("helpdesk", "ivy", "eve", "sofia"):
                person = Person(username, username.title(), f"{username}@example.test")
                root.add_person(person, PASSWORD)
            root.add_member(Membership(Role.HELP_DESK, ScopeKind.SYSTEM), "helpdesk")
        yield World(settings, build_service(settings), _admin(keycloak, realm))
    finally:
        delete_realm_if_present(keycloak, realm)


def _enabled(world: World, username: str) -> bool:
    (user,) = world.admin.get_users({"username": username, "exact": "true"})
    return bool(user["enabled"])


def _audit(world: World, action: str) -> list:
    records, _ = world.service.directory.page_audit(action=action, outcome="ok", limit=100)
    return records


def test_lc_5_an_unused_account_is_disabled_and_the_help_desk_re_enables_it(world: World) -> None:
    assert sign_in(world, "ivy") and sign_in(world, "eve")
    service = world.service
    service.config = dataclasses.replace(service.config, inactivity_period=timedelta(days=1))
    early = disable_inactive(service)  # a realm one minute old cannot prove a day's absence
    assert early.disabled == [] and "nobody can be judged" in early.problems[0]

    service.config = dataclasses.replace(service.config, inactivity_period=timedelta(seconds=3))
    time.sleep(4)
    assert sign_in(world, "eve")  # eve is active, ivy is not
    now = datetime.now(UTC)  # both passes judge at this instant, however long each takes

    dry = disable_inactive(service, now=now, dry_run=True)
    assert dry.disabled == ["ivy"], dry
    assert _enabled(world, "ivy") and _audit(world, "account.disabled_inactive") == []

    done = disable_inactive(service, now=now)
    assert done.disabled == ["ivy"] and done.problems == [], done
    assert not _enabled(world, "ivy") and _enabled(world, "eve")
    assert not sign_in(world, "ivy", refused=True)  # Keycloak refuses a disabled account
    (record,) = _audit(world, "account.disabled_inactive")
    assert (record.actor, record.subject) == ("system", "ivy")
    assert "no sign-in since" in record.detail
    assert service.disabled_for_inactivity("helpdesk")[0][0] == "ivy"

    with pytest.raises(Forbidden):
        service.reenable_account("sofia", "ivy")
    assert not _enabled(world, "ivy")
    service.reenable_account("helpdesk", "ivy")
    reenabled_at = datetime.now(UTC)
    assert _enabled(world, "ivy")
    assert [r.actor for r in _audit(world, "account.reenabled")] == ["helpdesk"]
    assert service.disabled_for_inactivity("helpdesk") == []
    # her last sign-in is long out of the period, but she was re-enabled within it
    again = disable_inactive(service, now=reenabled_at + timedelta(seconds=1))
    assert "ivy" not in again.disabled
    assert sign_in(world, "ivy")


def test_the_inactivity_pass_reads_events_with_view_events_only(
    world: World, keycloak_admin_factory
) -> None:
    """The narrowest right Keycloak has for login events: realm-management ``view-events``,
    held by the sync client; it still cannot read the realm's components (the LDAP bind), nor
    turn the recording off or erase it."""
    realm = world.settings.keycloak.realm
    management = world.admin.get_client_id("realm-management")
    account = world.admin.get_client_service_account_user(world.admin.get_client_id("iacs-sync"))
    granted = {r["name"] for r in world.admin.get_client_roles_of_user(account["id"], management)}
    assert granted == {"query-groups", "query-users", "view-users", "view-events"}
    sync = keycloak_admin_factory(
        realm,
        client_id=world.settings.keycloak.sync_client_id,
        client_secret=world.settings.keycloak.sync_client_secret.get_secret_value(),
    )
    base = f"admin/realms/{realm}"
    assert sync.connection.raw_get(f"{base}/events", type="LOGIN", max=1).status_code == 200
    assert sync.connection.raw_get(f"{base}/components").status_code == 403
    # it cannot stop the recording, nor erase what was recorded (manage-events)
    off = json.dumps({"eventsEnabled": False, "enabledEventTypes": []})
    assert sync.connection.raw_put(f"{base}/events/config", data=off).status_code == 403
    assert sync.connection.raw_delete(f"{base}/events").status_code == 403
    assert world.admin.get_realm(realm)["eventsEnabled"] is True
