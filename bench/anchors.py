"""What an operator would use instead, on the same directory in the same run: the anchors.

1. Keycloak's own LDAP user federation doing a full sync of the generated directory, in a realm of
   its own: users from ``ou=people`` and every role group through Keycloak's group-ldap-mapper
   (mode IMPORT, so memberships are written into Keycloak's database the way our projection
   writes them). The mapper's group sync runs first (it creates the groups), then the users'
   full sync (it imports people and their memberships). Both admin endpoints answer when the
   work is done; the timing stops when the realm's user count has reached the directory's.
2. The raw admin-API rate: the same number of user creations in a fresh realm, one POST after
   the other on one ``requests.Session`` (the lower bound of any tool that writes users one by
   one through the admin API).

Role groups are nested inside organizations and groups, so their ``cn`` repeats
(``end-users`` under every user group). Keycloak's mapper keys groups by name; the anchor names
them by ``entryUUID`` (unique, and what Keycloak already uses as the LDAP id of an entry) and
flattens them, which is how an operator would have to configure it for this tree.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from .report import MEASURED, Measurement
from .stats import rate
from .tokens import AdminApi

LDAP_PROVIDER = "org.keycloak.storage.UserStorageProvider"
LDAP_MAPPER = "org.keycloak.storage.ldap.mappers.LDAPStorageMapper"


def ldap_component(
    realm_id: str, url: str, base_dn: str, bind_dn: str, bind_password: str
) -> dict[str, Any]:
    """A read-only LDAP federation over ``ou=people`` with import on (vendor "other")."""
    config = {
        "enabled": ["true"],
        "vendor": ["other"],
        "connectionUrl": [url],
        "bindDn": [bind_dn],
        "bindCredential": [bind_password],
        "authType": ["simple"],
        "usersDn": [f"ou=people,{base_dn}"],
        "usernameLDAPAttribute": ["uid"],
        "rdnLDAPAttribute": ["uid"],
        "uuidLDAPAttribute": ["entryUUID"],
        "userObjectClasses": ["inetOrgPerson"],
        "searchScope": ["2"],
        "editMode": ["READ_ONLY"],
        "importEnabled": ["true"],
        "syncRegistrations": ["false"],
        "pagination": ["true"],
        "batchSizeForSync": ["1000"],
        "fullSyncPeriod": ["-1"],
        "changedSyncPeriod": ["-1"],
        "trustEmail": ["true"],
        "useTruststoreSpi": ["never"],
        "connectionPooling": ["true"],
        "cachePolicy": ["DEFAULT"],
    }
    return {
        "name": "bench-ldap",
        "providerId": "ldap",
        "providerType": LDAP_PROVIDER,
        "parentId": realm_id,
        "config": config,
    }


def group_mapper(provider_id: str, base_dn: str) -> dict[str, Any]:
    """Keycloak's group-ldap-mapper over every ``iacsRoleGroup`` of the tree (mode IMPORT)."""
    return {
        "name": "bench-role-groups",
        "providerId": "group-ldap-mapper",
        "providerType": LDAP_MAPPER,
        "parentId": provider_id,
        "config": {
            "groups.dn": [base_dn],
            "group.name.ldap.attribute": ["entryUUID"],
            "group.object.classes": ["iacsRoleGroup"],
            "preserve.group.inheritance": ["false"],
            "ignore.missing.groups": ["true"],
            "membership.ldap.attribute": ["member"],
            "membership.attribute.type": ["DN"],
            "membership.user.ldap.attribute": ["uid"],
            "groups.ldap.filter": ["(objectClass=iacsRoleGroup)"],
            "mode": ["IMPORT"],
            "user.roles.retrieve.strategy": ["LOAD_GROUPS_BY_MEMBER_ATTRIBUTE"],
            "memberof.ldap.attribute": ["memberOf"],
            "drop.non.existing.groups.during.sync": ["false"],
            "groups.path": ["/"],
        },
    }


def _created_id(response: Any) -> str:
    return response.headers["Location"].rstrip("/").rsplit("/", 1)[1]


def _new_realm(admin: AdminApi, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin.request("POST", "", json={"realm": name, "enabled": True})
    return name


def ldap_full_sync(
    admin: AdminApi,
    *,
    ldap_url: str,
    base_dn: str,
    bind_dn: str,
    bind_password: str,
    people: int,
    role_groups: int,
    memberships: int,
    keep_realm: bool = False,
    tick: Callable[[str], None] = lambda _: None,
) -> Measurement:
    """Time Keycloak's own LDAP federation importing the whole directory (users and groups)."""
    measurement = Measurement(
        key="anchor_ldap_full_sync",
        title="Anchor: Keycloak LDAP federation full sync",
        target="cold projection must be faster",
    )
    realm = _new_realm(admin, "bench-ldap-anchor")
    try:
        realm_id = admin.get(realm)["id"]
        provider = _created_id(
            admin.request(
                "POST",
                f"{realm}/components",
                json=ldap_component(realm_id, ldap_url, base_dn, bind_dn, bind_password),
            )
        )
        mapper = _created_id(
            admin.request("POST", f"{realm}/components", json=group_mapper(provider, base_dn))
        )
        tick("groups")
        started = time.perf_counter()
        group_result = admin.request(
            "POST",
            f"{realm}/user-storage/{provider}/mappers/{mapper}/sync",
            params={"direction": "fedToKeycloak"},
            timeout=3600,
        ).json()
        groups_done = time.perf_counter()
        tick("users")
        user_result = admin.request(
            "POST",
            f"{realm}/user-storage/{provider}/sync",
            params={"action": "triggerFullSync"},
            timeout=3600,
        ).json()
        users_done = _wait_for_count(admin, f"{realm}/users/count", people, timeout=600)
        elapsed = users_done - started
        imported = admin.get(f"{realm}/users/count")
        groups = admin.get(f"{realm}/groups/count") or {}
        group_count = groups.get("count", groups) if isinstance(groups, dict) else groups
        sampled = _sample_memberships(admin, realm)
        measurement.status = MEASURED
        measurement.result = (
            f"{elapsed:.1f} s for {imported} people and {group_count} groups "
            f"({rate(people, elapsed):.0f} people/s)"
        )
        measurement.numbers = {
            "seconds": round(elapsed, 3),
            "group_sync_seconds": round(groups_done - started, 3),
            "user_sync_seconds": round(users_done - groups_done, 3),
            "people_per_second": round(rate(people, elapsed), 1),
            "users_in_realm": imported,
            "groups_in_realm": group_count,
            "role_groups_in_directory": role_groups,
            "memberships_in_directory": memberships,
            "members_of_10_sampled_groups": sampled,
        }
        measurement.notes = [
            f"group sync answered: {_short(group_result)}",
            f"user full sync answered: {_short(user_result)}",
            "Realm of its own; federation READ_ONLY, import on, pagination 1000; group mapper "
            "IMPORT, flat, named by entryUUID (role-group cn values repeat across the tree).",
        ]
    finally:
        if not keep_realm:
            admin.request("DELETE", realm, timeout=600)
    return measurement


def _wait_for_count(admin: AdminApi, path: str, expected: int, timeout: float) -> float:
    """Poll a count endpoint until it reaches ``expected``; the moment it did (perf_counter)."""
    deadline = time.monotonic() + timeout
    while True:
        count = admin.get(path)
        if isinstance(count, int) and count >= expected:
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} reached {count}, not {expected}, in {timeout:.0f}s")
        time.sleep(0.5)


def _sample_memberships(admin: AdminApi, realm: str) -> int:
    """Members of the first ten groups: evidence that memberships, not only groups, arrived."""
    total = 0
    for group in admin.get(f"{realm}/groups", first=0, max=10, briefRepresentation="true") or []:
        total += len(admin.get(f"{realm}/groups/{group['id']}/members", max=1000) or [])
    return total


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) < 300 else text[:297] + "..."


def admin_api_user_creation(
    admin: AdminApi,
    count: int,
    *,
    keep_realm: bool = False,
    tick: Callable[[int], None] = lambda _: None,
) -> Measurement:
    """Create ``count`` users with a minimal loop: one POST after the other, one session."""
    measurement = Measurement(
        key="anchor_admin_api",
        title="Anchor: raw admin-API user creation",
        target="reference rate",
    )
    realm = _new_realm(admin, "bench-admin-api")
    try:
        started = time.perf_counter()
        for number in range(1, count + 1):
            admin.request(
                "POST",
                f"{realm}/users",
                json={
                    "username": f"user{number:05d}",
                    "enabled": True,
                    "email": f"user{number:05d}@example.org",
                    "emailVerified": True,
                    "firstName": "Bench",
                    "lastName": f"User{number}",
                },
            )
            tick(1)
        elapsed = time.perf_counter() - started
    finally:
        if not keep_realm:
            admin.request("DELETE", realm, timeout=600)
    measurement.status = MEASURED
    measurement.result = f"{rate(count, elapsed):.0f} users/s ({count} in {elapsed:.1f} s)"
    measurement.numbers = {
        "users": count,
        "seconds": round(elapsed, 3),
        "people_per_second": round(rate(count, elapsed), 1),
        "mean_ms_per_user": round(elapsed / count * 1000, 2) if count else None,
    }
    measurement.notes = ["One thread, one requests.Session, no group memberships."]
    return measurement
