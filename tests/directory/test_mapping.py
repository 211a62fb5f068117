"""The codecs of ``iacs.directory.mapping``: one map per type drives both directions (pure)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from iacs.directory.dn import Tree
from iacs.directory.errors import InvalidEntry
from iacs.directory.mapping import (
    AUDIT,
    NOTICE,
    ORGANIZATION,
    PERSON,
    REQUEST,
    SURROGATE_GROUP,
    USER_GROUP,
    Codec,
)
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
    SurrogateGroup,
    UserGroup,
)

TREE = Tree("dc=example,dc=org")
NOW = datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC)

FULL = [
    (PERSON, Person(username="ann", display_name="Ann Lee Smith", email="ann@example.org")),
    (
        ORGANIZATION,
        Organization(
            id="o1",
            name="Mercy Home Health",
            identifier="123456789",
            provider_type=next(iter(ProviderType)),
            status=EntityStatus.ACTIVE,
            address="1 Main St\nSuite $5 \\ back",
            phone="555-0100",
        ),
    ),
    (USER_GROUP, UserGroup(id="g1", organization_id="o1", name="Billing", description="d")),
    (
        SURROGATE_GROUP,
        SurrogateGroup(id="s1", name="Clearing", associated_organizations=frozenset({"o1", "o2"})),
    ),
    (
        REQUEST,
        Request(
            id="r1",
            kind=next(iter(RequestKind)),
            requester="ann",
            created_at=NOW,
            expires_at=NOW + timedelta(days=30),
            organization_id="o1",
            group_id="g1",
            status=list(RequestStatus)[1],
            decided_by="bob",
            decided_at=NOW,
            reason="why",
            details={"tin": "123", "note": "é"},
            ended_at=NOW,
            end_reason=next(iter(EndReason)),
            recertified_at=NOW,
            grant_pending_since=NOW,
        ),
    ),
    (
        AUDIT,
        AuditRecord(id="a1", at=NOW, actor="bob", action="approve", outcome="ok", request_id="r1"),
    ),
    (
        NOTICE,
        Notice(
            id="n1",
            audit_id="a1",
            recipient="ann",
            kind="decided",
            address="ann@example.org",
            subject="Approved: Backup Security Official",
            text="Your request was approved.",
            html="<p>Your request was approved.</p>",
            state=NoticeState.SENT,
            attempts=2,
            next_attempt_at=NOW,
            sent_at=NOW,
            detail="421 try later",
        ),
    ),
]


def _as_read(entry: dict[str, list[str]]) -> dict[str, list[str]]:
    """An entry as the directory returns it: lower-case attribute names."""
    return {name.lower(): values for name, values in entry.items()}


@pytest.mark.parametrize(("codec", "item"), FULL, ids=lambda v: type(v).__name__)
def test_every_type_round_trips_through_its_one_map(codec: Codec, item: object) -> None:
    assert codec.decode(_as_read(codec.encode(item, TREE)), "dn", TREE) == item


@pytest.mark.parametrize(("codec", "item"), FULL, ids=lambda v: type(v).__name__)
def test_each_codec_maps_every_field_of_its_type(codec: Codec, item: object) -> None:
    """A field added to a domain type without its attribute fails here, not in production."""
    assert set(codec.attribute_map) == {f.name for f in dataclasses.fields(item)}  # type: ignore[arg-type]
    assert set(codec.attribute_map.values()) <= set(codec.attributes)


def test_empty_optional_values_are_left_out_and_read_back_empty() -> None:
    request = Request(
        id="r2", kind=next(iter(RequestKind)), requester="ann", created_at=NOW, expires_at=NOW
    )
    entry = REQUEST.encode(request)
    assert "iacsDecidedAt" not in entry and "iacsDetails" not in entry
    assert "iacsEndReason" not in entry and "iacsOrganizationId" not in entry
    assert REQUEST.decode(_as_read(entry)) == request


def test_a_person_gets_the_names_keycloak_maps() -> None:
    entry = PERSON.encode(Person(username="zed", display_name="", email=""))
    assert (entry["cn"], entry["givenName"], entry["sn"]) == (["zed"], ["zed"], ["zed"])
    assert "displayName" not in entry and "mail" not in entry
    read = PERSON.decode({"uid": ["zed"], "cn": ["Zed Q"]})
    assert read.display_name == "Zed Q"  # displayName absent: the full name


@pytest.mark.parametrize(
    "write",
    [
        lambda: ORGANIZATION.encode(dataclasses.replace(FULL[1][1], identifier="")),
        lambda: PERSON.encode(Person(username="", display_name="x", email="")),
        lambda: PERSON.encode(Person(username="a\x00b", display_name="x", email="")),
        lambda: USER_GROUP.encode(dataclasses.replace(FULL[2][1], description="x" * 1025)),
        lambda: REQUEST.encode(dataclasses.replace(FULL[4][1], details={"a": 1})),
        lambda: ORGANIZATION.encode(dataclasses.replace(FULL[1][1], status="nope")),
    ],
    ids=["required-empty", "no-username", "nul", "too-long", "details-not-text", "bad-enum"],
)
def test_a_value_that_cannot_be_written_is_refused(write) -> None:
    with pytest.raises(InvalidEntry):
        write()


def test_a_count_must_be_a_non_negative_integer() -> None:
    notice = FULL[-1][1]
    with pytest.raises(InvalidEntry):
        NOTICE.encode(dataclasses.replace(notice, attempts=-1))
    with pytest.raises(InvalidEntry, match="cn=n"):
        NOTICE.decode({**_as_read(NOTICE.encode(notice)), "iacsattempts": ["x"]}, "cn=n")


def test_a_bad_value_read_names_its_entry() -> None:
    with pytest.raises(InvalidEntry, match="cn=x"):
        REQUEST.decode({"iacsrequestid": ["r"], "iacsrequestkind": ["nope"]}, "cn=x")
    with pytest.raises(InvalidEntry, match="GeneralizedTime"):
        AUDIT.decode({"iacsauditid": ["a"], "iacsat": ["yesterday"]})
