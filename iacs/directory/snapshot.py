"""A consistent-enough picture of all authority for the sync worker, read in two paged searches.

One search reads every person with ``memberOf`` (their memberships, parsed from role-group DNs
with a cache, since thousands of people share a few thousand groups); one search reads every
organization, user group and surrogate group. Only the attributes the projection needs are
requested, and values are decoded straight from their raw bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from iacs.directory import filters
from iacs.directory.connection import ConnectionPool, decode
from iacs.directory.dn import Tree
from iacs.directory.mapping import (
    ORGANIZATION_ATTRIBUTES,
    SURROGATE_GROUP_ATTRIBUTES,
    USER_GROUP_ATTRIBUTES,
    organization_from,
    person_from,
    surrogate_group_from,
    user_group_from,
)
from iacs.domain import Membership, Organization, Person, SurrogateGroup, UserGroup

_EMPTY: frozenset[Membership] = frozenset()


@dataclass(frozen=True)
class DirectorySnapshot:
    """Everyone's approved memberships, and the entities those memberships point at.

    Produced by the directory (``Directory.snapshot``), consumed by the sync worker's pure
    projection (``sync.project``): plain, frozen data with no reference to LDAP.
    """

    people: Mapping[str, frozenset[Membership]] = field(default_factory=dict)
    """Every person's memberships by username (an empty set for people without any)."""
    profiles: Mapping[str, Person] = field(default_factory=dict)
    """Every person by username."""
    organizations: Mapping[str, Organization] = field(default_factory=dict)
    """Organizations by id."""
    user_groups: Mapping[tuple[str, str], UserGroup] = field(default_factory=dict)
    """User groups by (organization id, group id): group ids are unique per organization only."""
    surrogate_groups: Mapping[str, SurrogateGroup] = field(default_factory=dict)
    """Surrogate groups by id."""

    def memberships_of(self, username: str) -> frozenset[Membership]:
        return self.people.get(username, _EMPTY)

    @classmethod
    def of(
        cls,
        people: Mapping[str, Iterable[Membership]],
        organizations: Iterable[Organization] = (),
        user_groups: Iterable[UserGroup] = (),
        surrogate_groups: Iterable[SurrogateGroup] = (),
    ) -> DirectorySnapshot:
        """Build a snapshot from plain collections (indexing them by id), as tests do."""
        return cls(
            people=MappingProxyType({name: frozenset(ms) for name, ms in people.items()}),
            organizations=MappingProxyType({org.id: org for org in organizations}),
            user_groups=MappingProxyType({(g.organization_id, g.id): g for g in user_groups}),
            surrogate_groups=MappingProxyType({s.id: s for s in surrogate_groups}),
        )


def take_snapshot(pool: ConnectionPool, tree: Tree, *, page_size: int = 1000) -> DirectorySnapshot:
    """Read the snapshot through ``pool`` (bound as an account that may read the whole tree)."""
    profiles: dict[str, Person] = {}
    memberships: dict[str, frozenset[Membership]] = {}

    def on_person(dn: str, raw: Mapping[str, Sequence[bytes]]) -> None:
        attributes = decode(raw)
        person = person_from(attributes)
        profiles[person.username] = person
        parsed = (tree.membership_of(value) for value in attributes.get("memberof", ()))
        memberships[person.username] = frozenset(m for m in parsed if m is not None) or _EMPTY

    pool.search_raw(
        tree.people,
        filters.eq("objectClass", "inetOrgPerson"),
        on_person,
        attributes=("uid", "cn", "sn", "displayName", "mail", "memberOf"),
        page_size=page_size,
    )

    organizations: dict[str, Organization] = {}
    user_groups: dict[tuple[str, str], UserGroup] = {}
    surrogate_groups: dict[str, SurrogateGroup] = {}

    def on_entity(dn: str, raw: Mapping[str, Sequence[bytes]]) -> None:
        attributes = decode(raw)
        classes = {value.lower() for value in attributes.get("objectclass", ())}
        if "iacsorganization" in classes:
            org = organization_from(dn, attributes)
            organizations[org.id] = org
        elif "iacsusergroup" in classes:
            group = user_group_from(dn, attributes)
            user_groups[(group.organization_id, group.id)] = group
        elif "iacssurrogategroup" in classes:
            sug = surrogate_group_from(dn, attributes, tree)
            surrogate_groups[sug.id] = sug

    pool.search_raw(
        tree.base,
        filters.any_of(
            filters.eq("objectClass", name)
            for name in ("iacsOrganization", "iacsUserGroup", "iacsSurrogateGroup")
        ),
        on_entity,
        attributes=sorted(
            {
                "objectClass",
                *ORGANIZATION_ATTRIBUTES,
                *USER_GROUP_ATTRIBUTES,
                *SURROGATE_GROUP_ATTRIBUTES,
            }
        ),
        page_size=page_size,
    )
    return DirectorySnapshot(
        people=memberships,
        profiles=profiles,
        organizations=organizations,
        user_groups=user_groups,
        surrogate_groups=surrogate_groups,
    )
