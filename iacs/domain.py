"""The delegated-authority model as plain data: organizations, groups, people, roles, requests.

Nothing here knows about LDAP, Flask or Keycloak. The directory layer maps these types to
entries (``iacs.directory.mapping``); the policy (``iacs.policy``) decides on them; the sync
worker projects them into Keycloak.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    """A role a person holds, always within a scope (see ``Membership``)."""

    HELP_DESK = "help_desk"
    SECURITY_OFFICIAL = "security_official"
    BACKUP_SECURITY_OFFICIAL = "backup_security_official"
    USER_GROUP_ADMINISTRATOR = "user_group_administrator"
    END_USER = "end_user"
    INDIVIDUAL_PRACTITIONER = "individual_practitioner"


class ScopeKind(StrEnum):
    """What a membership's scope is."""

    SYSTEM = "system"  # the help desk
    ORGANIZATION = "organization"  # SO, BSO
    USER_GROUP = "user_group"  # UGA, EU of a provider's own group
    SURROGATE_GROUP = "surrogate_group"  # UGA, EU of a Surrogate User Group
    PRACTITIONER = "practitioner"  # an individual practitioner's own enrollment


class RequestKind(StrEnum):
    """What a request asks for. Each kind names the role it grants when approved."""

    REGISTER_ORGANIZATION = "register_organization"  # ORG-1: the SO's registration
    BACKUP_SECURITY_OFFICIAL = "backup_security_official"  # BSO-2
    USER_GROUP_ADMINISTRATOR = "user_group_administrator"  # UGA-1: new group or join one
    END_USER = "end_user"  # EU-1
    REGISTER_SURROGATE_GROUP = "register_surrogate_group"  # SUG-1: first UGA creates the SUG
    SURROGATE_ADMINISTRATOR = "surrogate_administrator"  # SUG-4: one more UGA of a SUG
    SURROGATE_END_USER = "surrogate_end_user"  # SUG-5
    SURROGATE_ASSOCIATION = "surrogate_association"  # SUG-3: SUG works for one more provider
    INDIVIDUAL_PRACTITIONER = "individual_practitioner"  # IND-1


GRANTED_ROLE: dict[RequestKind, Role | None] = {
    RequestKind.REGISTER_ORGANIZATION: Role.SECURITY_OFFICIAL,
    RequestKind.BACKUP_SECURITY_OFFICIAL: Role.BACKUP_SECURITY_OFFICIAL,
    RequestKind.USER_GROUP_ADMINISTRATOR: Role.USER_GROUP_ADMINISTRATOR,
    RequestKind.END_USER: Role.END_USER,
    RequestKind.REGISTER_SURROGATE_GROUP: Role.USER_GROUP_ADMINISTRATOR,
    RequestKind.SURROGATE_ADMINISTRATOR: Role.USER_GROUP_ADMINISTRATOR,
    RequestKind.SURROGATE_END_USER: Role.END_USER,
    RequestKind.SURROGATE_ASSOCIATION: None,  # grants an association, not a role
    RequestKind.INDIVIDUAL_PRACTITIONER: Role.INDIVIDUAL_PRACTITIONER,
}
"""The role each kind of request grants on approval (DEC-4: the only way a role is written)."""


class RequestStatus(StrEnum):
    """A request's life: decided once (DEC-3), or expired unanswered (LC-2)."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"  # taken back by its requester while pending


class EntityStatus(StrEnum):
    """Organizations, user groups and surrogate groups become active on their first approval."""

    PENDING = "pending"
    ACTIVE = "active"
    REJECTED = "rejected"


class EndReason(StrEnum):
    """Why a membership ended (LC-1, LC-3, LC-4)."""

    REVOKED = "revoked"
    RESIGNED = "resigned"
    LAPSED = "lapsed"
    REPLACED = "replaced"


class ProviderType(StrEnum):
    """ORG-7: the kinds of organization the seed names, and DMEPOS suppliers (blocked by config)."""

    HOSPITAL = "hospital"
    HOME_HEALTH_AGENCY = "home_health_agency"
    SKILLED_NURSING_FACILITY = "skilled_nursing_facility"
    INDEPENDENT_DIAGNOSTIC_TESTING_FACILITY = "independent_diagnostic_testing_facility"
    AMBULANCE_COMPANY = "ambulance_company"
    AMBULATORY_SURGICAL_CENTER = "ambulatory_surgical_center"
    PHYSICIAN_GROUP_PRACTICE = "physician_group_practice"
    INDIVIDUAL_PRACTITIONER_WITH_STAFF = "individual_practitioner_with_staff"
    DMEPOS = "dmepos"


_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def normalize_identifier(raw: str) -> str:
    """Digits of a TIN/EIN or NPI: ORG-2 keys an organization by them (12-3456789 is 123456789)."""
    return re.sub(r"\D", "", raw or "")


def organization_id(identifier: str) -> str:
    """The organization's id (and LDAP RDN value) derived from its normalized identifying number."""
    digits = normalize_identifier(identifier)
    if not 9 <= len(digits) <= 10:
        raise ValueError("the identifying number must be a 9-digit TIN/EIN or a 10-digit NPI")
    return f"org-{digits}"


def slug(name: str) -> str:
    """A stable id for a group from its display name: lower-case letters, digits and dashes."""
    value = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60]
    return value


def is_valid_id(value: str) -> bool:
    """Ids are safe everywhere (DN, URL, Keycloak group name) by construction; reject the rest."""
    return bool(_ID_PATTERN.fullmatch(value or ""))


@dataclass(frozen=True, slots=True)
class Membership:
    """One approved role of one person in one scope: the unit of authority and of projection."""

    role: Role
    scope_kind: ScopeKind
    scope_id: str = ""  # org id, group id, SUG id or NPI; "" for the help desk
    organization_id: str = ""  # the owning organization for a user group ("" otherwise)


@dataclass(frozen=True, slots=True)
class Person:
    """Someone with an account; ``username`` is the directory ``uid`` and the Keycloak username."""

    username: str
    display_name: str = ""
    email: str = ""


@dataclass(frozen=True, slots=True)
class Organization:
    """A provider organization (ORG-7), an OU in the directory."""

    id: str
    name: str
    identifier: str  # normalized TIN/EIN or NPI
    provider_type: ProviderType
    status: EntityStatus = EntityStatus.PENDING
    address: str = ""
    phone: str = ""


@dataclass(frozen=True, slots=True)
class UserGroup:
    """A user group of one organization, administered by its UGAs (UGA-1)."""

    id: str
    organization_id: str
    name: str
    description: str = ""
    status: EntityStatus = EntityStatus.PENDING


@dataclass(frozen=True, slots=True)
class SurrogateGroup:
    """A contractor working for providers (SUG-1), associated with each provider it serves."""

    id: str
    name: str
    description: str = ""
    status: EntityStatus = EntityStatus.PENDING
    associated_organizations: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Request:
    """A person's request for a role or an association, and its single decision (DEC-3)."""

    id: str
    kind: RequestKind
    requester: str
    created_at: datetime
    expires_at: datetime
    organization_id: str = ""
    group_id: str = ""
    surrogate_group_id: str = ""
    status: RequestStatus = RequestStatus.PENDING
    decided_by: str = ""
    decided_at: datetime | None = None
    reason: str = ""
    details: dict[str, str] = field(default_factory=dict)
    ended_at: datetime | None = None
    end_reason: EndReason | None = None
    recertified_at: datetime | None = None
    grant_pending_since: datetime | None = None
    """Set on an approval until its effects (membership, activation) are written: an approval
    that a failure cut short is finished or undone by the service's recovery pass."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One line of the append-only record (AUD-1)."""

    id: str
    at: datetime
    actor: str
    action: str
    outcome: str
    organization_id: str = ""
    group_id: str = ""
    surrogate_group_id: str = ""
    request_id: str = ""
    subject: str = ""
    detail: str = ""


class NoticeState(StrEnum):
    """Where a notice of the outbox is: owed, being sent (claimed), sent, or given up."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Notice:
    """One e-mail owed to one person, derived from one audit record (the outbox's entry).

    ``id`` is derived from the audit record and the recipient, so deriving it twice (after a
    restart) finds the one already written instead of owing the mail twice.
    """

    id: str
    audit_id: str
    recipient: str
    kind: str
    address: str
    subject: str
    text: str
    html: str = ""
    state: NoticeState = NoticeState.PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None
    detail: str = ""
