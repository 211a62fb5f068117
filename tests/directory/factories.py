"""Domain objects for directory tests, with sensible defaults and keyword overrides."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from iacs.domain import (
    AuditRecord,
    Membership,
    Organization,
    ProviderType,
    Request,
    RequestKind,
    Role,
    ScopeKind,
    SurrogateGroup,
    UserGroup,
    normalize_identifier,
    organization_id,
)

NOW = datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)


def an_organization(identifier: str = "123456789", **overrides: object) -> Organization:
    digits = normalize_identifier(identifier)
    org = Organization(
        id=organization_id(digits),
        name=f"Hospital {digits}",
        identifier=digits,
        provider_type=ProviderType.HOSPITAL,
        address="1 Main Street\nSpringfield, IL 62701",
        phone="+1 217 555 0100",
    )
    return replace(org, **overrides)


def a_user_group(org: Organization, group_id: str = "billing", **overrides: object) -> UserGroup:
    return replace(
        UserGroup(id=group_id, organization_id=org.id, name=group_id.title(), description="Claims"),
        **overrides,
    )


def a_surrogate_group(sug_id: str = "acme-billing", **overrides: object) -> SurrogateGroup:
    return replace(
        SurrogateGroup(id=sug_id, name="Acme Billing", description="Clearinghouse"), **overrides
    )


def a_request(requester: str = "alice", **overrides: object) -> Request:
    request = Request(
        id=str(uuid.uuid4()),
        kind=RequestKind.END_USER,
        requester=requester,
        created_at=NOW,
        expires_at=NOW + timedelta(days=30),
        organization_id="org-123456789",
        group_id="billing",
        details={"justification": "claims work", "ticket": "Ünïcode ✓"},
    )
    return replace(request, **overrides)


def an_audit_record(**overrides: object) -> AuditRecord:
    record = AuditRecord(
        id=str(uuid.uuid4()),
        at=NOW,
        actor="bob",
        action="decide:approved",
        outcome="ok",
        organization_id="org-123456789",
        request_id=str(uuid.uuid4()),
        subject="alice",
        detail="approved",
    )
    return replace(record, **overrides)


def so_of(org: Organization) -> Membership:
    return Membership(Role.SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, org.id)


def bso_of(org: Organization) -> Membership:
    return Membership(Role.BACKUP_SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, org.id)


def uga_of(group: UserGroup) -> Membership:
    return Membership(
        Role.USER_GROUP_ADMINISTRATOR, ScopeKind.USER_GROUP, group.id, group.organization_id
    )


def end_user_of(group: UserGroup) -> Membership:
    return Membership(Role.END_USER, ScopeKind.USER_GROUP, group.id, group.organization_id)


def sug_uga_of(sug: SurrogateGroup) -> Membership:
    return Membership(Role.USER_GROUP_ADMINISTRATOR, ScopeKind.SURROGATE_GROUP, sug.id)


def sug_end_user_of(sug: SurrogateGroup) -> Membership:
    return Membership(Role.END_USER, ScopeKind.SURROGATE_GROUP, sug.id)


HELP_DESK = Membership(Role.HELP_DESK, ScopeKind.SYSTEM)


def practitioner(npi: str) -> Membership:
    return Membership(Role.INDIVIDUAL_PRACTITIONER, ScopeKind.PRACTITIONER, npi)
