"""The projection: approved memberships in the directory -> the managed Keycloak groups (pure).

One leaf group per affiliation that has members (see "Keycloak projection" in
``docs/architecture.md``). Each leaf carries, per application client, the group attribute
``iacs_affiliation.<client-id>`` with one JSON affiliation, and client-role mappings for the roles
the catalogue grants that affiliation in that application. Only active organizations, user
groups and surrogate groups project; anything else is reported in ``DesiredState.skipped``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from iacs.catalogue import Catalogue
from iacs.directory import DirectorySnapshot
from iacs.domain import EntityStatus, Membership, Role, ScopeKind, is_valid_id, normalize_identifier

from .model import (
    TOP_PATH,
    DesiredGroup,
    DesiredState,
    SkippedMembership,
    affiliation_attribute,
)

LEAF_NAMES: Mapping[Role, str] = MappingProxyType(
    {
        Role.HELP_DESK: "help-desk",
        Role.SECURITY_OFFICIAL: "security-official",
        Role.BACKUP_SECURITY_OFFICIAL: "backup-security-official",
        Role.USER_GROUP_ADMINISTRATOR: "user-group-administrator",
        Role.END_USER: "end-user",
        Role.INDIVIDUAL_PRACTITIONER: "individual-practitioner",
    }
)
"""The leaf group name of each role."""

MFA_ATTRIBUTE = "iacs_mfa"
"""Group attribute of the leaves whose members must sign in with a second factor: Keycloak's
browser flow (``keycloak_config/realm.json``, ``iacs-second-factor``) asks for one when a user's
groups carry it with the value ``MFA_REQUIRED``."""
MFA_REQUIRED = "required"
MFA_ROLES: frozenset[Role] = frozenset(
    {
        Role.HELP_DESK,
        Role.SECURITY_OFFICIAL,
        Role.BACKUP_SECURITY_OFFICIAL,
        Role.USER_GROUP_ADMINISTRATOR,
    }
)
"""The roles that hold authority over others' access (issue 13, item 8); to require a second
factor of everyone, the realm's ``iacs-second-factor`` sub-flow is made REQUIRED instead."""

_SCOPE_OF_ROLE: Mapping[Role, frozenset[ScopeKind]] = MappingProxyType(
    {
        Role.HELP_DESK: frozenset({ScopeKind.SYSTEM}),
        Role.SECURITY_OFFICIAL: frozenset({ScopeKind.ORGANIZATION}),
        Role.BACKUP_SECURITY_OFFICIAL: frozenset({ScopeKind.ORGANIZATION}),
        Role.USER_GROUP_ADMINISTRATOR: frozenset({ScopeKind.USER_GROUP, ScopeKind.SURROGATE_GROUP}),
        Role.END_USER: frozenset({ScopeKind.USER_GROUP, ScopeKind.SURROGATE_GROUP}),
        Role.INDIVIDUAL_PRACTITIONER: frozenset({ScopeKind.PRACTITIONER}),
    }
)
_RESERVED_GROUP_IDS = frozenset(LEAF_NAMES.values())


@dataclass(frozen=True, slots=True)
class Affiliation:
    """One approved membership as the tokens show it (the JSON of ``iacs_affiliation.*``)."""

    path: str
    role: Role
    scope: ScopeKind
    organization: str | None = None
    organizations: tuple[str, ...] = ()
    group: str | None = None
    npi: str | None = None

    @property
    def surrogate(self) -> bool:
        return self.scope is ScopeKind.SURROGATE_GROUP

    def claim(self, app_roles: frozenset[str]) -> str:
        """The canonical JSON (sorted keys, no spaces) so that equal affiliations compare equal."""
        return json.dumps(
            {
                "role": self.role.value,
                "organization": self.organization,
                "organizations": list(self.organizations),
                "group": self.group,
                "surrogate": self.surrogate,
                "npi": self.npi,
                "app_roles": sorted(app_roles),
            },
            sort_keys=True,
            separators=(",", ":"),
        )


class _Skip(Exception):
    """This membership does not project; the message says why."""


def surrogate_group_node(surrogate_group_id: str) -> str:
    """The Keycloak group name of a surrogate group (``sug-<id>``)."""
    return f"sug-{surrogate_group_id}"


def practitioner_node(npi: str) -> str:
    """The Keycloak group name of an individual practitioner (``npi-<digits>``)."""
    return f"npi-{normalize_identifier(npi)}"


def affiliation_of(membership: Membership, snapshot: DirectorySnapshot) -> Affiliation:
    """The affiliation a membership projects to, or ``_Skip`` with the reason it does not."""
    role, scope = membership.role, membership.scope_kind
    if scope not in _SCOPE_OF_ROLE[role]:
        raise _Skip(f"role {role.value} cannot be held in a {scope.value} scope")
    leaf = LEAF_NAMES[role]

    if scope is ScopeKind.SYSTEM:
        return Affiliation(path=f"{TOP_PATH}/{leaf}", role=role, scope=scope)

    if scope is ScopeKind.PRACTITIONER:
        digits = normalize_identifier(membership.scope_id)
        if not digits:
            raise _Skip("practitioner membership without an NPI")
        node = practitioner_node(digits)
        return Affiliation(path=f"{TOP_PATH}/{node}/{leaf}", role=role, scope=scope, npi=digits)

    if scope is ScopeKind.SURROGATE_GROUP:
        sug = snapshot.surrogate_groups.get(membership.scope_id)
        if sug is None or sug.status is not EntityStatus.ACTIVE:
            raise _Skip(f"surrogate group {membership.scope_id!r} is not active")
        if not is_valid_id(sug.id):
            raise _Skip(f"surrogate group id {sug.id!r} is not a valid id")
        organizations = tuple(
            sorted(
                org_id
                for org_id in sug.associated_organizations
                if _active_organization(snapshot, org_id)
            )
        )
        return Affiliation(
            path=f"{TOP_PATH}/{surrogate_group_node(sug.id)}/{leaf}",
            role=role,
            scope=scope,
            organizations=organizations,
            group=sug.id,
        )

    org_id = membership.scope_id if scope is ScopeKind.ORGANIZATION else membership.organization_id
    if not _active_organization(snapshot, org_id):
        raise _Skip(f"organization {org_id!r} is not active")
    if scope is ScopeKind.ORGANIZATION:
        return Affiliation(
            path=f"{TOP_PATH}/{org_id}/{leaf}",
            role=role,
            scope=scope,
            organization=org_id,
            organizations=(org_id,),
        )

    group = snapshot.user_groups.get((org_id, membership.scope_id))
    if group is None or group.status is not EntityStatus.ACTIVE:
        raise _Skip(f"user group {membership.scope_id!r} of {org_id!r} is not active")
    if not is_valid_id(group.id) or group.id in _RESERVED_GROUP_IDS:
        raise _Skip(f"user group id {group.id!r} cannot be a Keycloak group name")
    return Affiliation(
        path=f"{TOP_PATH}/{org_id}/{group.id}/{leaf}",
        role=role,
        scope=scope,
        organization=org_id,
        organizations=(org_id,),
        group=group.id,
    )


def _active_organization(snapshot: DirectorySnapshot, org_id: str) -> bool:
    org = snapshot.organizations.get(org_id)
    return org is not None and org.status is EntityStatus.ACTIVE and is_valid_id(org_id)


def leaf_group(affiliation: Affiliation, catalogue: Catalogue) -> DesiredGroup:
    """The leaf group of an affiliation: one JSON attribute and the granted roles per client."""
    attributes: dict[str, tuple[str, ...]] = {}
    client_roles: dict[str, frozenset[str]] = {}
    for client_id, application in sorted(catalogue.applications.items()):
        granted = application.roles_for(affiliation.role, affiliation.scope)
        attributes[affiliation_attribute(client_id)] = (affiliation.claim(granted),)
        if granted:
            client_roles[client_id] = granted
    if affiliation.role in MFA_ROLES:
        attributes[MFA_ATTRIBUTE] = (MFA_REQUIRED,)
    return DesiredGroup(
        path=affiliation.path,
        attributes=MappingProxyType(attributes),
        client_roles=MappingProxyType(client_roles),
    )


def project(
    snapshot: DirectorySnapshot,
    catalogue: Catalogue,
    memo: dict[Affiliation, DesiredGroup] | None = None,
) -> DesiredState:
    """The managed Keycloak state that the snapshot and the catalogue call for.

    ``memo`` may carry the leaf groups of an earlier call with the same catalogue: a leaf depends
    only on its affiliation and the catalogue, so the worker keeps one to skip encoding the
    claims of every unchanged affiliation again on each incremental run (most of its time at
    10,000 people). The result is the same with or without it.
    """
    leaves: dict[str, DesiredGroup] = {}
    memberships: dict[str, frozenset[str]] = {}
    skipped: list[SkippedMembership] = []
    cache: dict[Membership, Affiliation | str] = {}

    for person in sorted(snapshot.people):
        username = person.lower()  # Keycloak keeps usernames in lower case
        paths: set[str] = set()
        for membership in snapshot.people[person]:
            found = cache.get(membership)
            if found is None:
                try:
                    found = affiliation_of(membership, snapshot)
                except _Skip as why:
                    found = str(why)
                cache[membership] = found
            if isinstance(found, str):
                skipped.append(SkippedMembership(username, membership, found))
                continue
            if found.path not in leaves:
                leaf = memo.get(found) if memo is not None else None
                if leaf is None:
                    leaf = leaf_group(found, catalogue)
                    if memo is not None:
                        memo[found] = leaf
                leaves[found.path] = leaf
            paths.add(found.path)
        if paths:
            memberships[username] = memberships.get(username, frozenset()) | paths

    groups: dict[str, DesiredGroup] = {TOP_PATH: DesiredGroup(path=TOP_PATH)}
    for path in sorted(leaves):
        parts = path.split("/")
        for depth in range(2, len(parts)):
            parent = "/".join(parts[:depth])
            if parent not in groups:
                groups[parent] = DesiredGroup(path=parent)
        groups[path] = leaves[path]

    return DesiredState(
        groups=MappingProxyType(groups),
        memberships=MappingProxyType(memberships),
        clients=catalogue.client_ids,
        skipped=tuple(skipped),
    )
