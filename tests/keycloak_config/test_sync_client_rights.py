"""The sync worker's Keycloak client (``iacs-sync``) can project and little else (issue 13, 3).

Its rights are fine-grained admin permissions (v2) in the realm as code, plus two read-only
``realm-management`` roles (``query-groups``, ``query-users``: without an admin role Keycloak
refuses every admin call). Each ``test_sec_sync_client_cannot_*`` performs an attack as the sync
client against the real Keycloak and shows it refused. What Keycloak 26.5 cannot refuse while
the worker can still log users out is listed in ``keycloak_config/apply.py`` with the evidence.
"""

from __future__ import annotations

import pytest
from keycloak import KeycloakAdmin
from keycloak.exceptions import KeycloakError

from keycloak_config.apply import apply_realm
from sync.gateway import KeycloakGateway
from tests.fixtures.keycloak import AppliedRealm

pytestmark = pytest.mark.servers


def _sync_admin(applied_realm: AppliedRealm, keycloak_admin_factory) -> KeycloakAdmin:
    sync_id = applied_realm.settings.keycloak.sync_client_id
    return keycloak_admin_factory(
        applied_realm.name, client_id=sync_id, client_secret=applied_realm.client_secrets[sync_id]
    )


def _status(call) -> int:
    try:
        call()
    except KeycloakError as exc:
        return exc.response_code
    return 200


@pytest.fixture
def realm_with_people(applied_realm: AppliedRealm, keycloak_admin_factory):
    """The applied realm with a user and the managed top group, made by the master admin."""
    master = keycloak_admin_factory(applied_realm.name)
    user_id = master.create_user(
        {"username": "sam", "enabled": True, "firstName": "S", "lastName": "T"}
    )
    top = master.create_group({"name": "iacs"})
    return master, user_id, top


def test_sync_client_can_do_everything_the_projection_needs(
    applied_realm: AppliedRealm, keycloak_admin_factory, realm_with_people
) -> None:
    """Every kind of call the worker makes, as the sync client itself."""
    master, user_id, top = realm_with_people
    sync = _sync_admin(applied_realm, keycloak_admin_factory)
    realm_management = master.get_client_id("realm-management")
    account = master.get_client_service_account_user(master.get_client_id("iacs-sync"))
    granted = {r["name"] for r in master.get_client_roles_of_user(account["id"], realm_management)}
    assert granted == {"query-groups", "query-users", "view-users"}

    # search (a federated user is imported by this very search)
    assert [u["id"] for u in sync.get_users({"username": "sam", "exact": "true"})] == [user_id]
    # groups: create, nest, read the tree, attributes, members
    leaf = sync.create_group({"name": "end-user"}, parent=top)
    assert sync.get_group_by_path("/iacs/end-user")["id"] == leaf
    assert [g["id"] for g in sync.get_group_children(top)] == [leaf]
    sync.update_group(leaf, {"name": "end-user", "attributes": {"iacs_affiliation.psr": ["{}"]}})
    assert sync.get_group(leaf)["attributes"] == {"iacs_affiliation.psr": ["{}"]}
    sync.group_user_add(user_id, leaf)
    assert [m["username"] for m in sync.get_group_members(leaf)] == ["sam"]
    # application roles onto groups, found the way the worker finds them
    gateway = KeycloakGateway(sync)
    psr = gateway.client_uuid("psr")
    assert psr == master.get_client_id("psr")
    assert set(gateway.client_roles("psr")) == {"report-viewer", "report-requester"}
    assert set(gateway.client_roles("pqri-feedback-reports")) == {"report-viewer"}
    assert set(gateway._roles) == {"psr", "pqri-feedback-reports"}  # nothing else is mappable
    viewer = gateway.client_roles("psr")["report-viewer"]
    sync.assign_group_client_roles(leaf, psr, [viewer])
    assert [r["name"] for r in sync.get_group_client_roles(leaf, psr)] == ["report-viewer"]
    sync.delete_group_client_roles(leaf, psr, [viewer])
    # LC-1: read and end the user's sessions; then membership removal and group deletion
    assert gateway.session_ids(user_id) == []
    sync.user_logout(user_id)
    sync.group_user_remove(user_id, leaf)
    sync.delete_group(top)


def test_sec_sync_client_cannot_read_a_client_secret(
    applied_realm: AppliedRealm, keycloak_admin_factory, realm_with_people
) -> None:
    """Neither the portal's nor an application's secret, nor any client's configuration."""
    master, _, _ = realm_with_people
    sync = _sync_admin(applied_realm, keycloak_admin_factory)
    for client_id in ("iacs-portal", "psr", "iacs-sync"):
        uuid = master.get_client_id(client_id)
        path = f"admin/realms/{applied_realm.name}/clients/{uuid}"
        for attempt in (path, f"{path}/client-secret", f"{path}/roles"):
            assert sync.connection.raw_get(attempt).status_code == 403, attempt
    found = sync.connection.raw_get(f"admin/realms/{applied_realm.name}/clients", clientId="psr")
    assert found.status_code == 403


def test_sec_sync_client_cannot_map_a_role_outside_the_catalogue(
    applied_realm: AppliedRealm, keycloak_admin_factory, realm_with_people
) -> None:
    """realm-admin (realm-management), an account role, onto a managed group or onto a user."""
    master, user_id, top = realm_with_people
    sync = _sync_admin(applied_realm, keycloak_admin_factory)
    leaf = sync.create_group({"name": "end-user"}, parent=top)
    realm_management = master.get_client_id("realm-management")
    account = master.get_client_id("account")
    outside = [
        (realm_management, master.get_client_role(realm_management, "realm-admin")),
        (realm_management, master.get_client_role(realm_management, "manage-users")),
        (account, master.get_client_role(account, "manage-account")),
    ]
    for client, role in outside:
        assert _status(lambda c=client, r=role: sync.assign_group_client_roles(leaf, c, [r])) == 403
        assert _status(lambda c=client, r=role: sync.assign_client_role(user_id, c, [r])) == 403
    psr = master.get_client_id("psr")
    viewer = master.get_client_role(psr, "report-viewer")
    assert _status(lambda: sync.assign_client_role(user_id, psr, [viewer])) == 403  # users: no
    assert master.get_group(leaf)["clientRoles"] == {}


def test_sec_sync_client_cannot_impersonate_or_change_the_realm(
    applied_realm: AppliedRealm, keycloak_admin_factory, realm_with_people
) -> None:
    """Nor sign in as someone, change realm, clients or roles, or reach another realm."""
    master, user_id, _ = realm_with_people
    sync = _sync_admin(applied_realm, keycloak_admin_factory)
    base = f"admin/realms/{applied_realm.name}"
    assert (
        sync.connection.raw_post(f"{base}/users/{user_id}/impersonation", data="{}").status_code
        == 403
    )
    psr = master.get_client_id("psr")
    refused = {
        "create a client": lambda: sync.create_client({"clientId": "rogue"}),
        "change the realm": lambda: sync.update_realm(
            applied_realm.name, {"bruteForceProtected": False}
        ),
        "change a client": lambda: sync.update_client(psr, {"redirectUris": ["https://x/*"]}),
        "create a client role": lambda: sync.create_client_role(psr, {"name": "rogue"}),
        "read the admin permissions": lambda: sync.get_clients(),
    }
    assert {name: _status(attempt) for name, attempt in refused.items()} == {
        name: 403 for name in refused
    }
    assert sync.connection.raw_get("admin/realms/master/users").status_code == 403


def test_sec_sync_client_cannot_add_a_user_to_a_group_outside_iacs(
    applied_realm: AppliedRealm, keycloak_admin_factory, realm_with_people
) -> None:
    """Not into a group that carries realm-admin (the escalation), nor rename or delete one.

    Keycloak's group permissions do not inherit, so the sync client holds them on all groups;
    the realm as code vetoes every group outside ``/iacs`` that exists when it is applied.
    """
    master, user_id, top = realm_with_people
    realm_management = master.get_client_id("realm-management")
    admins = master.create_group({"name": "realm-admins"})
    master.assign_group_client_roles(
        admins, realm_management, [master.get_client_role(realm_management, "realm-admin")]
    )
    nested = master.create_group({"name": "nested"}, parent=admins)
    apply_realm(master, applied_realm.definition)  # the operator applies the realm again
    sync = _sync_admin(applied_realm, keycloak_admin_factory)
    for group in (admins, nested):
        assert _status(lambda g=group: sync.group_user_add(user_id, g)) == 403
        assert _status(lambda g=group: sync.update_group(g, {"name": "renamed"})) == 403
        assert _status(lambda g=group: sync.delete_group(g)) == 403
        assert _status(lambda g=group: sync.create_group({"name": "x"}, parent=g)) == 403
    assert master.get_group_members(admins) == []
    # ... while the managed subtree still works
    leaf = sync.create_group({"name": "end-user"}, parent=top)
    sync.group_user_add(user_id, leaf)
    assert [m["username"] for m in sync.get_group_members(leaf)] == ["sam"]
