"""The data the sync worker passes between its stages: a desired state, Keycloak's state, a plan.

The snapshot that comes in is the directory's own ``iacs.directory.DirectorySnapshot``.
``project(snapshot, catalogue) -> DesiredState`` is pure, so every type here is plain, frozen data
with no reference to LDAP or Keycloak. Group paths are Keycloak group paths (``/iacs/...``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from iacs.domain import Membership

TOP_GROUP = "iacs"
"""Name of the one top-level Keycloak group the worker manages; nothing outside it is touched."""
TOP_PATH = f"/{TOP_GROUP}"
AFFILIATION_ATTRIBUTE_PREFIX = "iacs_affiliation."
"""Group attribute ``iacs_affiliation.<client-id>`` holds one JSON affiliation for that client."""


def affiliation_attribute(client_id: str) -> str:
    """The group attribute that the client's user-attribute mapper reads (APP-2: one per client)."""
    return f"{AFFILIATION_ATTRIBUTE_PREFIX}{client_id}"


@dataclass(frozen=True, slots=True)
class DesiredGroup:
    """One managed Keycloak group as it should be.

    ``attributes`` maps an attribute name to its values (Keycloak stores lists); ``client_roles``
    maps an application client id to the client roles the group grants. Intermediate groups
    (``/iacs``, ``/iacs/org-1``...) have neither.
    """

    path: str
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    client_roles: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[1]

    @property
    def parent_path(self) -> str:
        return self.path.rsplit("/", 1)[0]


@dataclass(frozen=True, slots=True)
class SkippedMembership:
    """A membership the projection left out, and why (for the worker's report)."""

    username: str
    membership: Membership
    reason: str


@dataclass(frozen=True, slots=True)
class DesiredState:
    """The managed subtree as it should be: every group (leaves and their parents) and members.

    ``groups`` holds every managed group path, from ``/iacs`` down to the leaves; only leaves
    have members. ``memberships`` maps a username to the leaf paths they belong to; people with
    no projected membership are absent. ``clients`` are the application clients whose role
    mappings and attributes the worker owns.
    """

    groups: Mapping[str, DesiredGroup]
    memberships: Mapping[str, frozenset[str]]
    clients: tuple[str, ...]
    skipped: tuple[SkippedMembership, ...] = ()

    def members_of(self) -> dict[str, frozenset[str]]:
        """The inverse of ``memberships``: leaf path to usernames."""
        members: dict[str, set[str]] = {}
        for username, paths in self.memberships.items():
            for path in paths:
                members.setdefault(path, set()).add(username)
        return {path: frozenset(names) for path, names in members.items()}


@dataclass(frozen=True, slots=True)
class ActualGroup:
    """A group under ``/iacs`` as Keycloak has it now."""

    id: str
    path: str
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    client_roles: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ActualState:
    """The managed subtree as Keycloak has it: groups by path and members by group path.

    ``user_ids`` maps usernames seen (as members) to Keycloak user ids so the applier need not
    look them up again.
    """

    groups: Mapping[str, ActualGroup]
    members: Mapping[str, frozenset[str]]
    user_ids: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> ActualState:
        return cls(groups={}, members={}, user_ids={})


@dataclass(frozen=True, slots=True)
class AttributeUpdate:
    """Replace all attributes of a managed group (the worker owns every one of them)."""

    path: str
    attributes: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class RoleMappingChange:
    """Add and remove client-role mappings of one application client on one group."""

    path: str
    client_id: str
    add: frozenset[str] = frozenset()
    remove: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class MemberChange:
    """One user joining or leaving one leaf group."""

    username: str
    path: str


@dataclass(frozen=True, slots=True)
class Plan:
    """What to write to Keycloak, in the order the applier runs it.

    Groups are created parents first (with their attributes), then attributes updated, role
    mappings changed, members added, members removed, groups deleted (only the topmost group of
    an unwanted subtree: Keycloak deletes its children) and finally the ``logouts``: users who
    lost a membership or whose affiliation lost a role or organization (LC-1), logged out after
    the removal so that a new login cannot pick up the old authority.
    """

    create_groups: tuple[DesiredGroup, ...] = ()
    update_attributes: tuple[AttributeUpdate, ...] = ()
    role_changes: tuple[RoleMappingChange, ...] = ()
    add_members: tuple[MemberChange, ...] = ()
    remove_members: tuple[MemberChange, ...] = ()
    delete_groups: tuple[str, ...] = ()
    logouts: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not any(
            (
                self.create_groups,
                self.update_attributes,
                self.role_changes,
                self.add_members,
                self.remove_members,
                self.delete_groups,
                self.logouts,
            )
        )

    def summary(self) -> dict[str, int]:
        """Counts per kind of change, for logs and metrics."""
        return {
            "create_groups": len(self.create_groups),
            "update_attributes": len(self.update_attributes),
            "role_changes": len(self.role_changes),
            "add_members": len(self.add_members),
            "remove_members": len(self.remove_members),
            "delete_groups": len(self.delete_groups),
            "logouts": len(self.logouts),
        }
