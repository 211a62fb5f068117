"""Small builders of domain data for the sync tests."""

from __future__ import annotations

from iacs.directory import DirectorySnapshot
from iacs.domain import (
    EntityStatus,
    Membership,
    Organization,
    ProviderType,
    Role,
    ScopeKind,
    SurrogateGroup,
    UserGroup,
)

ORG_A = "org-111111111"
ORG_B = "org-222222222"


def org(org_id: str, status: EntityStatus | str = EntityStatus.ACTIVE) -> Organization:
    digits = org_id.removeprefix("org-")
    return Organization(
        id=org_id,
        name=f"Provider {digits}",
        identifier=digits,
        provider_type=ProviderType.HOSPITAL,
        status=EntityStatus(status),
    )


def user_group(
    org_id: str, group_id: str, status: EntityStatus | str = EntityStatus.ACTIVE
) -> UserGroup:
    return UserGroup(
        id=group_id, organization_id=org_id, name=group_id.title(), status=EntityStatus(status)
    )


def surrogate_group(
    sug_id: str, *orgs: str, status: EntityStatus | str = EntityStatus.ACTIVE
) -> SurrogateGroup:
    return SurrogateGroup(
        id=sug_id,
        name=sug_id.title(),
        status=EntityStatus(status),
        associated_organizations=frozenset(orgs),
    )


def help_desk() -> Membership:
    return Membership(Role.HELP_DESK, ScopeKind.SYSTEM)


def security_official(org_id: str) -> Membership:
    return Membership(Role.SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, org_id)


def backup_security_official(org_id: str) -> Membership:
    return Membership(Role.BACKUP_SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, org_id)


def uga(org_id: str, group_id: str) -> Membership:
    return Membership(Role.USER_GROUP_ADMINISTRATOR, ScopeKind.USER_GROUP, group_id, org_id)


def end_user(org_id: str, group_id: str) -> Membership:
    return Membership(Role.END_USER, ScopeKind.USER_GROUP, group_id, org_id)


def surrogate_uga(sug_id: str) -> Membership:
    return Membership(Role.USER_GROUP_ADMINISTRATOR, ScopeKind.SURROGATE_GROUP, sug_id)


def surrogate_end_user(sug_id: str) -> Membership:
    return Membership(Role.END_USER, ScopeKind.SURROGATE_GROUP, sug_id)


def practitioner(npi: str) -> Membership:
    return Membership(Role.INDIVIDUAL_PRACTITIONER, ScopeKind.PRACTITIONER, npi)


def world(people: dict[str, list[Membership]], **extra) -> DirectorySnapshot:
    """A snapshot with two active organizations, their 'billing' groups and an active SUG."""
    return DirectorySnapshot.of(
        people=people,
        organizations=extra.get("organizations", [org(ORG_A), org(ORG_B)]),
        user_groups=extra.get(
            "user_groups", [user_group(ORG_A, "billing"), user_group(ORG_B, "billing")]
        ),
        surrogate_groups=extra.get("surrogate_groups", [surrogate_group("acme", ORG_A, ORG_B)]),
    )
