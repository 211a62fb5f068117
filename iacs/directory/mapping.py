"""One attribute map per domain type, and the conversions between entries and dataclasses.

Domain types stay LDAP-free (``iacs.domain``); this module is the only place that knows which
LDAP attribute holds which field. Entries are read as ``{lower-case attribute: [str, ...]}``.
Values are checked before writing (enumerations, lengths, no empty strings), because OpenLDAP
does not enforce the ``{n}`` bounds of the schema.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal, TypeVar, cast

from iacs.directory.dn import Tree
from iacs.directory.errors import InvalidEntry
from iacs.domain import (
    AuditRecord,
    EndReason,
    EntityStatus,
    Organization,
    Person,
    ProviderType,
    Request,
    RequestKind,
    RequestStatus,
    Role,
    SurrogateGroup,
    UserGroup,
)

Attributes = dict[str, list[str]]
"""An entry's attributes as read: lower-case names, string values."""

PERSON_MAP = {"username": "uid", "display_name": "displayName", "email": "mail"}
ORGANIZATION_MAP = {
    "id": "ou",
    "name": "displayName",
    "identifier": "iacsIdentifier",
    "provider_type": "iacsProviderType",
    "status": "iacsStatus",
    "address": "postalAddress",
    "phone": "telephoneNumber",
}
USER_GROUP_MAP = {
    "id": "cn",
    "organization_id": "iacsOrganizationId",
    "name": "displayName",
    "description": "description",
    "status": "iacsStatus",
}
SURROGATE_GROUP_MAP = {
    "id": "cn",
    "name": "displayName",
    "description": "description",
    "status": "iacsStatus",
    "associated_organizations": "iacsAssociatedOrganization",
}
REQUEST_MAP = {
    "id": "iacsRequestId",
    "kind": "iacsRequestKind",
    "requester": "iacsRequester",
    "created_at": "iacsCreatedAt",
    "expires_at": "iacsExpiresAt",
    "organization_id": "iacsOrganizationId",
    "group_id": "iacsGroupId",
    "surrogate_group_id": "iacsSurrogateGroupId",
    "status": "iacsRequestStatus",
    "decided_by": "iacsDecidedBy",
    "decided_at": "iacsDecidedAt",
    "reason": "iacsReason",
    "details": "iacsDetails",
    "ended_at": "iacsEndedAt",
    "end_reason": "iacsEndReason",
    "recertified_at": "iacsRecertifiedAt",
    "grant_pending_since": "iacsGrantPending",
}
AUDIT_MAP = {
    "id": "iacsAuditId",
    "at": "iacsAt",
    "actor": "iacsActor",
    "action": "iacsAction",
    "outcome": "iacsOutcome",
    "organization_id": "iacsOrganizationId",
    "group_id": "iacsGroupId",
    "surrogate_group_id": "iacsSurrogateGroupId",
    "request_id": "iacsRequestId",
    "subject": "iacsSubject",
    "detail": "iacsDetail",
}

PERSON_ATTRIBUTES = ("uid", "cn", "sn", "displayName", "mail")
ORGANIZATION_ATTRIBUTES = tuple(ORGANIZATION_MAP.values())
USER_GROUP_ATTRIBUTES = tuple(USER_GROUP_MAP.values())
SURROGATE_GROUP_ATTRIBUTES = tuple(SURROGATE_GROUP_MAP.values())
REQUEST_ATTRIBUTES = tuple(REQUEST_MAP.values())
AUDIT_ATTRIBUTES = tuple(AUDIT_MAP.values())

MAX_LENGTH = {
    "uid": 256,
    "cn": 256,
    "sn": 256,
    "displayName": 256,
    "mail": 256,
    "ou": 64,
    "description": 1024,
    "postalAddress": 1024,
    "telephoneNumber": 32,
    "iacsStatus": 16,
    "iacsIdentifier": 32,
    "iacsProviderType": 64,
    "iacsOrganizationId": 64,
    "iacsGroupId": 64,
    "iacsSurrogateGroupId": 64,
    "iacsRequestId": 64,
    "iacsRequestKind": 64,
    "iacsRequester": 256,
    "iacsRequestStatus": 16,
    "iacsDecidedBy": 256,
    "iacsReason": 4096,
    "iacsDetails": 65536,
    "iacsEndReason": 16,
    "iacsAuditId": 64,
    "iacsActor": 256,
    "iacsAction": 64,
    "iacsOutcome": 64,
    "iacsSubject": 256,
    "iacsDetail": 4096,
}
"""Upper bounds on value length (characters), as in directory_schema/iacs.schema."""

E = TypeVar("E", bound=StrEnum)


# -- values ------------------------------------------------------------------------------


def to_generalized_time(
    moment: datetime, *, fraction: Literal["trimmed", "micro", "none"] = "trimmed"
) -> str:
    """A GeneralizedTime in UTC; a naive datetime is taken to be UTC already.

    The one copy of the format. ``fraction`` says how the seconds' fraction is written: without
    trailing zeros (the project's attributes), always six digits (slapd's ``reqStart``, whose
    strings the change feed compares as text), or not at all (whole seconds).
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y%m%d%H%M%S")
    if fraction == "micro":
        text += f".{moment.microsecond:06d}"
    elif fraction == "trimmed" and moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def from_generalized_time(text: str) -> datetime:
    """An aware UTC datetime from a GeneralizedTime (``YYYYmmddHHMMSS[.f]Z`` or ``+hhmm``)."""
    value = text.strip()
    try:
        if value.endswith("Z"):
            main, offset = value[:-1], "+0000"
        else:
            main, offset = value[:-5], value[-5:]
        whole, _, fraction = main.partition(".")
        moment = datetime.strptime(whole + offset, "%Y%m%d%H%M%S%z")
        if fraction:
            moment = moment.replace(microsecond=int((fraction + "000000")[:6]))
    except ValueError as exc:
        raise InvalidEntry(f"not a GeneralizedTime: {text!r}") from exc
    return moment.astimezone(UTC)


def encode_postal_address(address: str) -> str:
    """RFC 4517 PostalAddress: lines joined by ``$`` (``\\`` and ``$`` escaped), no empty lines."""
    lines = [line.strip() for line in address.splitlines() if line.strip()]
    return "$".join(line.replace("\\", "\\5C").replace("$", "\\24") for line in lines)


def decode_postal_address(value: str) -> str:
    lines = value.split("$")
    return "\n".join(
        line.replace("\\24", "$").replace("\\5C", "\\").replace("\\5c", "\\") for line in lines
    )


def checked(attribute: str, value: str) -> str:
    """``value`` if it may be written to ``attribute``: not empty, no NUL, not too long."""
    if not isinstance(value, str):
        raise InvalidEntry(f"{attribute}: expected a string, got {type(value).__name__}")
    if not value:
        raise InvalidEntry(f"{attribute}: empty value")
    if "\x00" in value:
        raise InvalidEntry(f"{attribute}: NUL character")  # slapd stores it but cannot match it
    limit = MAX_LENGTH.get(attribute)
    if limit is not None and len(value) > limit:
        raise InvalidEntry(f"{attribute}: longer than {limit} characters")
    return value


def enum_value(kind: type[E], value: object, attribute: str) -> str:
    """The string of an enumeration member, accepting the member or its value."""
    try:
        return kind(cast(str, value)).value  # a member or its value: StrEnum accepts both
    except ValueError as exc:
        raise InvalidEntry(f"{attribute}: {value!r} is not a {kind.__name__}") from exc


def _read_enum(kind: type[E], value: str, dn: str) -> E:
    try:
        return kind(value.lower())
    except ValueError as exc:
        raise InvalidEntry(f"{dn}: {value!r} is not a {kind.__name__}", dn=dn) from exc


def first(attributes: Mapping[str, Sequence[str]], name: str, default: str = "") -> str:
    values = attributes.get(name.lower())
    return values[0] if values else default


def _time_or_none(attributes: Attributes, name: str) -> datetime | None:
    value = first(attributes, name)
    return from_generalized_time(value) if value else None


def _put(entry: dict[str, list[str]], attribute: str, value: str) -> None:
    """Set ``attribute`` when ``value`` is not empty (LDAP has no empty strings)."""
    if value:
        entry[attribute] = [checked(attribute, value)]


# -- people ------------------------------------------------------------------------------


def person_entry(person: Person) -> dict[str, list[str]]:
    """An inetOrgPerson for ``person``, shaped as Keycloak's federation writes one.

    ``givenName``/``sn`` are the first and last names Keycloak maps; ``cn`` is the full name.
    Without ``givenName`` Keycloak would stop the person at an "update profile" page.
    """
    username = checked("uid", person.username)
    words = person.display_name.split()
    given = words[0] if words else username
    family = " ".join(words[1:]) if len(words) > 1 else given
    entry: dict[str, list[str]] = {
        "objectClass": ["inetOrgPerson"],
        "uid": [username],
        "cn": [checked("cn", person.display_name.strip() or username)],
        "givenName": [checked("givenName", given)],
        "sn": [checked("sn", family)],
    }
    _put(entry, "displayName", person.display_name)
    _put(entry, "mail", person.email)
    return entry


def person_from(attributes: Attributes) -> Person:
    display = first(attributes, "displayName")
    if not display:
        display = first(attributes, "cn")
    return Person(
        username=first(attributes, "uid"), display_name=display, email=first(attributes, "mail")
    )


# -- organizations and groups ------------------------------------------------------------


def organization_entry(org: Organization) -> dict[str, list[str]]:
    entry: dict[str, list[str]] = {
        "objectClass": ["organizationalUnit", "iacsOrganization"],
        "ou": [checked("ou", org.id)],
        "iacsIdentifier": [checked("iacsIdentifier", org.identifier)],
        "iacsStatus": [enum_value(EntityStatus, org.status, "iacsStatus")],
        "iacsProviderType": [enum_value(ProviderType, org.provider_type, "iacsProviderType")],
    }
    _put(entry, "displayName", org.name)
    _put(entry, "postalAddress", encode_postal_address(org.address))
    _put(entry, "telephoneNumber", org.phone)
    return entry


def organization_from(dn: str, attributes: Attributes) -> Organization:
    return Organization(
        id=first(attributes, "ou"),
        name=first(attributes, "displayName"),
        identifier=first(attributes, "iacsIdentifier"),
        provider_type=_read_enum(ProviderType, first(attributes, "iacsProviderType"), dn),
        status=_read_enum(EntityStatus, first(attributes, "iacsStatus"), dn),
        address=decode_postal_address(first(attributes, "postalAddress")),
        phone=first(attributes, "telephoneNumber"),
    )


def role_group_entry(name: str, role: Role, *, identifier: str = "") -> dict[str, list[str]]:
    """An empty role group (``member`` is optional in ``iacsRoleGroup``)."""
    entry = {
        "objectClass": ["iacsRoleGroup"],
        "cn": [checked("cn", name)],
        "iacsRole": [role.value],
    }
    _put(entry, "iacsIdentifier", identifier)
    return entry


def user_group_entry(group: UserGroup) -> dict[str, list[str]]:
    entry: dict[str, list[str]] = {
        "objectClass": ["iacsUserGroup"],
        "cn": [checked("cn", group.id)],
        "iacsOrganizationId": [checked("iacsOrganizationId", group.organization_id)],
        "iacsStatus": [enum_value(EntityStatus, group.status, "iacsStatus")],
    }
    _put(entry, "displayName", group.name)
    _put(entry, "description", group.description)
    return entry


def user_group_from(dn: str, attributes: Attributes) -> UserGroup:
    return UserGroup(
        id=first(attributes, "cn"),
        organization_id=first(attributes, "iacsOrganizationId"),
        name=first(attributes, "displayName"),
        description=first(attributes, "description"),
        status=_read_enum(EntityStatus, first(attributes, "iacsStatus"), dn),
    )


def surrogate_group_entry(group: SurrogateGroup, tree: Tree) -> dict[str, list[str]]:
    entry: dict[str, list[str]] = {
        "objectClass": ["iacsSurrogateGroup"],
        "cn": [checked("cn", group.id)],
        "iacsStatus": [enum_value(EntityStatus, group.status, "iacsStatus")],
    }
    _put(entry, "displayName", group.name)
    _put(entry, "description", group.description)
    if group.associated_organizations:
        entry["iacsAssociatedOrganization"] = [
            tree.organization(org_id) for org_id in sorted(group.associated_organizations)
        ]
    return entry


def surrogate_group_from(dn: str, attributes: Attributes, tree: Tree) -> SurrogateGroup:
    associated = (
        tree.organization_id_of(value) for value in attributes.get("iacsassociatedorganization", ())
    )
    return SurrogateGroup(
        id=first(attributes, "cn"),
        name=first(attributes, "displayName"),
        description=first(attributes, "description"),
        status=_read_enum(EntityStatus, first(attributes, "iacsStatus"), dn),
        associated_organizations=frozenset(org_id for org_id in associated if org_id),
    )


# -- requests and audit --------------------------------------------------------------------


def request_entry(request: Request) -> dict[str, list[str]]:
    entry: dict[str, list[str]] = {
        "objectClass": ["iacsRequest"],
        "iacsRequestId": [checked("iacsRequestId", request.id)],
        "iacsRequestKind": [enum_value(RequestKind, request.kind, "iacsRequestKind")],
        "iacsRequester": [checked("iacsRequester", request.requester)],
        "iacsRequestStatus": [enum_value(RequestStatus, request.status, "iacsRequestStatus")],
        "iacsCreatedAt": [to_generalized_time(request.created_at)],
        "iacsExpiresAt": [to_generalized_time(request.expires_at)],
    }
    _put(entry, "iacsOrganizationId", request.organization_id)
    _put(entry, "iacsGroupId", request.group_id)
    _put(entry, "iacsSurrogateGroupId", request.surrogate_group_id)
    _put(entry, "iacsDecidedBy", request.decided_by)
    _put(entry, "iacsReason", request.reason)
    if request.details:
        _put(entry, "iacsDetails", encode_details(request.details))
    for attribute, moment in (
        ("iacsDecidedAt", request.decided_at),
        ("iacsEndedAt", request.ended_at),
        ("iacsRecertifiedAt", request.recertified_at),
        ("iacsGrantPending", request.grant_pending_since),
    ):
        if moment is not None:
            entry[attribute] = [to_generalized_time(moment)]
    if request.end_reason is not None:
        entry["iacsEndReason"] = [enum_value(EndReason, request.end_reason, "iacsEndReason")]
    return entry


def encode_details(details: Mapping[str, str]) -> str:
    if not all(isinstance(key, str) and isinstance(value, str) for key, value in details.items()):
        raise InvalidEntry("iacsDetails: keys and values must be strings")
    return json.dumps(dict(details), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def decode_details(text: str, dn: str) -> dict[str, str]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidEntry(f"{dn}: iacsDetails is not JSON", dn=dn) from exc
    if not isinstance(value, dict):
        raise InvalidEntry(f"{dn}: iacsDetails is not a JSON object", dn=dn)
    return {str(key): str(item) for key, item in value.items()}


def request_from(dn: str, attributes: Attributes) -> Request:
    end_reason = first(attributes, "iacsEndReason")
    return Request(
        id=first(attributes, "iacsRequestId"),
        kind=_read_enum(RequestKind, first(attributes, "iacsRequestKind"), dn),
        requester=first(attributes, "iacsRequester"),
        created_at=from_generalized_time(first(attributes, "iacsCreatedAt")),
        expires_at=from_generalized_time(first(attributes, "iacsExpiresAt")),
        organization_id=first(attributes, "iacsOrganizationId"),
        group_id=first(attributes, "iacsGroupId"),
        surrogate_group_id=first(attributes, "iacsSurrogateGroupId"),
        status=_read_enum(RequestStatus, first(attributes, "iacsRequestStatus"), dn),
        decided_by=first(attributes, "iacsDecidedBy"),
        decided_at=_time_or_none(attributes, "iacsDecidedAt"),
        reason=first(attributes, "iacsReason"),
        details=decode_details(first(attributes, "iacsDetails"), dn),
        ended_at=_time_or_none(attributes, "iacsEndedAt"),
        end_reason=_read_enum(EndReason, end_reason, dn) if end_reason else None,
        recertified_at=_time_or_none(attributes, "iacsRecertifiedAt"),
        grant_pending_since=_time_or_none(attributes, "iacsGrantPending"),
    )


def audit_entry(record: AuditRecord) -> dict[str, list[str]]:
    entry: dict[str, list[str]] = {
        "objectClass": ["iacsAuditRecord"],
        "iacsAuditId": [checked("iacsAuditId", record.id)],
        "iacsAt": [to_generalized_time(record.at)],
        "iacsActor": [checked("iacsActor", record.actor)],
        "iacsAction": [checked("iacsAction", record.action)],
        "iacsOutcome": [checked("iacsOutcome", record.outcome)],
    }
    for field_name in (
        "organization_id",
        "group_id",
        "surrogate_group_id",
        "request_id",
        "subject",
        "detail",
    ):
        _put(entry, AUDIT_MAP[field_name], getattr(record, field_name))
    return entry


def audit_from(attributes: Attributes) -> AuditRecord:
    return AuditRecord(
        id=first(attributes, "iacsAuditId"),
        at=from_generalized_time(first(attributes, "iacsAt")),
        actor=first(attributes, "iacsActor"),
        action=first(attributes, "iacsAction"),
        outcome=first(attributes, "iacsOutcome"),
        organization_id=first(attributes, "iacsOrganizationId"),
        group_id=first(attributes, "iacsGroupId"),
        surrogate_group_id=first(attributes, "iacsSurrogateGroupId"),
        request_id=first(attributes, "iacsRequestId"),
        subject=first(attributes, "iacsSubject"),
        detail=first(attributes, "iacsDetail"),
    )
