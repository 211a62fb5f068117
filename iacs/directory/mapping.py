"""One codec per domain type: the one map, field -> (attribute, kind of value), that writes
an entry and reads it back (as Canaille's ``attribute_map`` does).

Domain types stay LDAP-free (``iacs.domain``); this module is the only place that knows which
LDAP attribute holds which field; the attribute lists the searches ask for come from the same
codecs. Entries are read as ``{lower-case attribute: [str, ...]}``.
Values are checked before writing (enumerations, lengths, no empty strings), because OpenLDAP
does not enforce the ``{n}`` bounds of the schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, Literal, Protocol, TypeVar, cast

from iacs.directory.dn import Tree
from iacs.directory.errors import InvalidEntry
from iacs.domain import (
    AuditRecord,
    EndReason,
    EntityStatus,
    Notice,
    NoticeState,
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

# The maps (``*_MAP``: field -> attribute) and the attributes to read (``*_ATTRIBUTES``) are
# derived from the codecs below, which are the one definition of each type's entry.

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
T = TypeVar("T")


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


def _put(entry: dict[str, list[str]], attribute: str, value: str) -> None:
    """Set ``attribute`` when ``value`` is not empty (LDAP has no empty strings)."""
    if value:
        entry[attribute] = [checked(attribute, value)]


def _values(attributes: Mapping[str, Sequence[str]], attribute: str) -> Sequence[str]:
    return attributes.get(attribute.lower(), ())


# -- how one field is held: each kind of value both ways ------------------------------------


class Value(Protocol):
    """How one field's value is written to its attribute and read back."""

    def encode(self, attribute: str, value: Any, tree: Tree | None) -> list[str]:
        """The attribute's values (none: the attribute is left out)."""
        ...

    def decode(self, attribute: str, attributes: Attributes, dn: str, tree: Tree | None) -> Any:
        """The field's value from the entry's attributes."""
        ...


@dataclass(frozen=True)
class Text:
    """A string; ``required``: it may not be empty; ``fallback``: read from that attribute when
    the field's own is absent."""

    required: bool = False
    fallback: str = ""

    def encode(self, attribute: str, value: Any, tree: Tree | None) -> list[str]:
        return [checked(attribute, value)] if value or self.required else []

    def decode(self, attribute: str, attributes: Attributes, dn: str, tree: Tree | None) -> str:
        value = first(attributes, attribute)
        return value or (first(attributes, self.fallback) if self.fallback else "")


@dataclass(frozen=True)
class Choice(Generic[E]):
    """A member of an enumeration, written as its value; ``optional``: None when absent."""

    kind: type[E]
    optional: bool = False

    def encode(self, attribute: str, value: Any, tree: Tree | None) -> list[str]:
        if value is None and self.optional:
            return []
        return [enum_value(self.kind, value, attribute)]

    def decode(
        self, attribute: str, attributes: Attributes, dn: str, tree: Tree | None
    ) -> E | None:
        value = first(attributes, attribute)
        if not value and self.optional:
            return None
        return _read_enum(self.kind, value, dn)


@dataclass(frozen=True)
class Moment:
    """A datetime as GeneralizedTime in UTC; ``optional``: None when absent."""

    optional: bool = False

    def encode(self, attribute: str, value: Any, tree: Tree | None) -> list[str]:
        if value is None and self.optional:
            return []
        return [to_generalized_time(value)]

    def decode(
        self, attribute: str, attributes: Attributes, dn: str, tree: Tree | None
    ) -> datetime | None:
        value = first(attributes, attribute)
        if not value and self.optional:
            return None
        return from_generalized_time(value)


@dataclass(frozen=True)
class Count:
    """A non-negative integer (0 when absent)."""

    def encode(self, attribute: str, value: Any, tree: Tree | None) -> list[str]:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidEntry(f"{attribute}: {value!r} is not a count")
        return [str(value)]

    def decode(self, attribute: str, attributes: Attributes, dn: str, tree: Tree | None) -> int:
        value = first(attributes, attribute, "0")
        if not value.isdigit():
            raise InvalidEntry(f"{dn}: {attribute} {value!r} is not a count", dn=dn)
        return int(value)


@dataclass(frozen=True)
class Postal:
    """A multi-line address as an RFC 4517 PostalAddress."""

    def encode(self, attribute: str, value: Any, tree: Tree | None) -> list[str]:
        encoded = encode_postal_address(value)
        return [checked(attribute, encoded)] if encoded else []

    def decode(self, attribute: str, attributes: Attributes, dn: str, tree: Tree | None) -> str:
        return decode_postal_address(first(attributes, attribute))


@dataclass(frozen=True)
class Details:
    """A string-to-string mapping as one compact JSON object (none when empty)."""

    def encode(self, attribute: str, value: Any, tree: Tree | None) -> list[str]:
        return [checked(attribute, encode_details(value))] if value else []

    def decode(
        self, attribute: str, attributes: Attributes, dn: str, tree: Tree | None
    ) -> dict[str, str]:
        return decode_details(first(attributes, attribute), dn)


@dataclass(frozen=True)
class OrganizationRefs:
    """A set of organization ids, written as the organizations' DNs (the tree knows them)."""

    def encode(self, attribute: str, value: Any, tree: Tree | None) -> list[str]:
        assert tree is not None, "organization references need the tree"
        return [tree.organization(org_id) for org_id in sorted(value)]

    def decode(
        self, attribute: str, attributes: Attributes, dn: str, tree: Tree | None
    ) -> frozenset[str]:
        assert tree is not None, "organization references need the tree"
        found = (tree.organization_id_of(value) for value in _values(attributes, attribute))
        return frozenset(org_id for org_id in found if org_id)


# -- one codec per type: the map that drives both directions --------------------------------


@dataclass(frozen=True)
class Codec(Generic[T]):
    """A domain type's entry: its object classes and, for each field, its attribute and how
    the value is held. ``derived`` adds attributes computed from the whole object (a person's
    ``cn``/``givenName``/``sn``); ``read_also`` names attributes read beside the fields'."""

    kind: Callable[..., T]
    object_classes: tuple[str, ...]
    fields: Mapping[str, tuple[str, Value]]
    derived: Callable[[T], dict[str, list[str]]] | None = None
    read_also: tuple[str, ...] = ()
    attribute_map: dict[str, str] = field(init=False)
    attributes: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        names = {name: attribute for name, (attribute, _) in self.fields.items()}
        object.__setattr__(self, "attribute_map", names)
        read = tuple(dict.fromkeys((*names.values(), *self.read_also)))
        object.__setattr__(self, "attributes", read)

    def encode(self, item: T, tree: Tree | None = None) -> dict[str, list[str]]:
        """The entry's attributes for ``item``; ``InvalidEntry`` for a value that cannot be
        written (empty where required, too long, not a member of its enumeration)."""
        entry: dict[str, list[str]] = {"objectClass": list(self.object_classes)}
        for name, (attribute, value) in self.fields.items():
            encoded = value.encode(attribute, getattr(item, name), tree)
            if encoded:
                entry[attribute] = encoded
        if self.derived is not None:
            entry.update(self.derived(item))
        return entry

    def decode(self, attributes: Attributes, dn: str = "", tree: Tree | None = None) -> T:
        """The object an entry holds; ``InvalidEntry`` (naming ``dn``) for a bad value."""
        return self.kind(
            **{
                name: value.decode(attribute, attributes, dn, tree)
                for name, (attribute, value) in self.fields.items()
            }
        )


def _person_names(person: Person) -> dict[str, list[str]]:
    """``cn`` (the full name) and the first and last names Keycloak's federation maps; without
    ``givenName`` Keycloak would stop the person at an "update profile" page."""
    username = person.username
    words = person.display_name.split()
    given = words[0] if words else username
    family = " ".join(words[1:]) if len(words) > 1 else given
    return {
        "cn": [checked("cn", person.display_name.strip() or username)],
        "givenName": [checked("givenName", given)],
        "sn": [checked("sn", family)],
    }


PERSON: Codec[Person] = Codec(
    Person,
    ("inetOrgPerson",),
    {
        "username": ("uid", Text(required=True)),
        "display_name": ("displayName", Text(fallback="cn")),
        "email": ("mail", Text()),
    },
    derived=_person_names,
    read_also=("cn", "sn"),
)
ORGANIZATION: Codec[Organization] = Codec(
    Organization,
    ("organizationalUnit", "iacsOrganization"),
    {
        "id": ("ou", Text(required=True)),
        "name": ("displayName", Text()),
        "identifier": ("iacsIdentifier", Text(required=True)),
        "provider_type": ("iacsProviderType", Choice(ProviderType)),
        "status": ("iacsStatus", Choice(EntityStatus)),
        "address": ("postalAddress", Postal()),
        "phone": ("telephoneNumber", Text()),
    },
)
USER_GROUP: Codec[UserGroup] = Codec(
    UserGroup,
    ("iacsUserGroup",),
    {
        "id": ("cn", Text(required=True)),
        "organization_id": ("iacsOrganizationId", Text(required=True)),
        "name": ("displayName", Text()),
        "description": ("description", Text()),
        "status": ("iacsStatus", Choice(EntityStatus)),
    },
)
SURROGATE_GROUP: Codec[SurrogateGroup] = Codec(
    SurrogateGroup,
    ("iacsSurrogateGroup",),
    {
        "id": ("cn", Text(required=True)),
        "name": ("displayName", Text()),
        "description": ("description", Text()),
        "status": ("iacsStatus", Choice(EntityStatus)),
        "associated_organizations": ("iacsAssociatedOrganization", OrganizationRefs()),
    },
)
REQUEST: Codec[Request] = Codec(
    Request,
    ("iacsRequest",),
    {
        "id": ("iacsRequestId", Text(required=True)),
        "kind": ("iacsRequestKind", Choice(RequestKind)),
        "requester": ("iacsRequester", Text(required=True)),
        "created_at": ("iacsCreatedAt", Moment()),
        "expires_at": ("iacsExpiresAt", Moment()),
        "organization_id": ("iacsOrganizationId", Text()),
        "group_id": ("iacsGroupId", Text()),
        "surrogate_group_id": ("iacsSurrogateGroupId", Text()),
        "status": ("iacsRequestStatus", Choice(RequestStatus)),
        "decided_by": ("iacsDecidedBy", Text()),
        "decided_at": ("iacsDecidedAt", Moment(optional=True)),
        "reason": ("iacsReason", Text()),
        "details": ("iacsDetails", Details()),
        "ended_at": ("iacsEndedAt", Moment(optional=True)),
        "end_reason": ("iacsEndReason", Choice(EndReason, optional=True)),
        "recertified_at": ("iacsRecertifiedAt", Moment(optional=True)),
        "grant_pending_since": ("iacsGrantPending", Moment(optional=True)),
    },
)
AUDIT: Codec[AuditRecord] = Codec(
    AuditRecord,
    ("iacsAuditRecord",),
    {
        "id": ("iacsAuditId", Text(required=True)),
        "at": ("iacsAt", Moment()),
        "actor": ("iacsActor", Text(required=True)),
        "action": ("iacsAction", Text(required=True)),
        "outcome": ("iacsOutcome", Text(required=True)),
        "organization_id": ("iacsOrganizationId", Text()),
        "group_id": ("iacsGroupId", Text()),
        "surrogate_group_id": ("iacsSurrogateGroupId", Text()),
        "request_id": ("iacsRequestId", Text()),
        "subject": ("iacsSubject", Text()),
        "detail": ("iacsDetail", Text()),
    },
)

NOTICE: Codec[Notice] = Codec(
    Notice,
    ("iacsNotice",),
    {
        "id": ("cn", Text(required=True)),
        "audit_id": ("iacsAuditId", Text(required=True)),
        "recipient": ("iacsRecipient", Text(required=True)),
        "kind": ("iacsNoticeKind", Text(required=True)),
        "address": ("iacsMailAddress", Text(required=True)),
        "subject": ("iacsMailSubject", Text(required=True)),
        "text": ("iacsMailText", Text(required=True)),
        "html": ("iacsMailHtml", Text()),
        "state": ("iacsNoticeState", Choice(NoticeState)),
        "attempts": ("iacsAttempts", Count()),
        "next_attempt_at": ("iacsNextAttemptAt", Moment(optional=True)),
        "sent_at": ("iacsSentAt", Moment(optional=True)),
        "detail": ("iacsDetail", Text()),
    },
)

PERSON_MAP = PERSON.attribute_map
ORGANIZATION_MAP = ORGANIZATION.attribute_map
USER_GROUP_MAP = USER_GROUP.attribute_map
SURROGATE_GROUP_MAP = SURROGATE_GROUP.attribute_map
REQUEST_MAP = REQUEST.attribute_map
AUDIT_MAP = AUDIT.attribute_map
PERSON_ATTRIBUTES = PERSON.attributes
ORGANIZATION_ATTRIBUTES = ORGANIZATION.attributes
USER_GROUP_ATTRIBUTES = USER_GROUP.attributes
SURROGATE_GROUP_ATTRIBUTES = SURROGATE_GROUP.attributes
REQUEST_ATTRIBUTES = REQUEST.attributes
AUDIT_ATTRIBUTES = AUDIT.attributes
NOTICE_ATTRIBUTES = NOTICE.attributes


# -- the entry points the repositories call ------------------------------------------------


def person_entry(person: Person) -> dict[str, list[str]]:
    """An inetOrgPerson for ``person``, shaped as Keycloak's federation writes one."""
    return PERSON.encode(person)


def person_from(attributes: Attributes) -> Person:
    return PERSON.decode(attributes)


def organization_entry(org: Organization) -> dict[str, list[str]]:
    return ORGANIZATION.encode(org)


def organization_from(dn: str, attributes: Attributes) -> Organization:
    return ORGANIZATION.decode(attributes, dn)


def role_group_entry(name: str, role: Role, *, identifier: str = "") -> dict[str, list[str]]:
    """An empty role group (``member`` is optional in ``iacsRoleGroup``); not a domain type."""
    entry = {
        "objectClass": ["iacsRoleGroup"],
        "cn": [checked("cn", name)],
        "iacsRole": [role.value],
    }
    _put(entry, "iacsIdentifier", identifier)
    return entry


def user_group_entry(group: UserGroup) -> dict[str, list[str]]:
    return USER_GROUP.encode(group)


def user_group_from(dn: str, attributes: Attributes) -> UserGroup:
    return USER_GROUP.decode(attributes, dn)


def surrogate_group_entry(group: SurrogateGroup, tree: Tree) -> dict[str, list[str]]:
    return SURROGATE_GROUP.encode(group, tree)


def surrogate_group_from(dn: str, attributes: Attributes, tree: Tree) -> SurrogateGroup:
    return SURROGATE_GROUP.decode(attributes, dn, tree)


def request_entry(request: Request) -> dict[str, list[str]]:
    return REQUEST.encode(request)


def request_from(dn: str, attributes: Attributes) -> Request:
    return REQUEST.decode(attributes, dn)


def audit_entry(record: AuditRecord) -> dict[str, list[str]]:
    return AUDIT.encode(record)


def audit_from(attributes: Attributes) -> AuditRecord:
    return AUDIT.decode(attributes)


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
