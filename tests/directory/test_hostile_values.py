"""Hostile values stay values: escaped in every filter and every DN, never matching others."""

from __future__ import annotations

import pytest

from iacs.directory import InvalidEntry
from iacs.directory.dn import escape_value, split_dn, unescape_value
from iacs.domain import Membership, Person, Role, ScopeKind

from .factories import a_request, a_user_group, an_organization, end_user_of, so_of

pytestmark = pytest.mark.servers

HOSTILE = [
    "*)(uid=*",
    "*",
    "\\",
    ",cn=admin",
    "x,ou=system",
    "a\x00b",
    "zoë-ß-用户-🙂",
    "x)(|(uid=*",
    '"quoted" + <angle>; semi=colon',
    " leading and trailing ",
    "#hash",
    "uid=alice,ou=people",
    "back\\2Cslash",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_dn_escaping_round_trips(value):
    rdn = f"cn={escape_value(value)},ou=x,dc=example"
    assert split_dn(rdn)[0] == ("cn", value)
    assert len(split_dn(rdn)) == 3
    assert unescape_value(escape_value(value)) == value


def test_hostile_usernames_round_trip_and_never_match_other_people(directory, make_person):
    make_person("alice")
    make_person("bob")
    org = an_organization()
    directory.create_organization(org)
    directory.add_member(so_of(org), "alice")
    directory.add_request(a_request("alice"))

    accepted = [value for value in HOSTILE if "\x00" not in value]
    for value in accepted:
        make_person(value, display_name=f"Hostile {value!r}", email="hostile@example.test")
    # slapd would store a NUL but never match it again: refused before writing, typed.
    with pytest.raises(InvalidEntry):
        make_person("a\x00b", email="hostile@example.test")
    assert directory.get_person("a\x00b") is None

    for value in accepted:
        person = directory.get_person(value)
        assert person is not None and person.username == value
        assert directory.memberships_of(value) == frozenset()
        found = {p.username for p in directory.find_people(value)}
        assert value in found and not found & {"alice", "bob"}, value
        assert directory.find_requests(requester=value) == []

    for value in HOSTILE:
        assert directory.find_organizations(value) == []
        assert directory.get_organization(value) is None
        assert directory.get_user_group(org.id, value) is None
        assert directory.get_request(value) is None
    assert directory.get_person("*") is not None  # the person literally named "*"
    assert directory.get_person("al*") is None

    for value in accepted:
        directory.add_member(so_of(org), value)
        assert directory.memberships_of(value) == {so_of(org)}
    assert directory.members_of(so_of(org)) == {"alice", *accepted}
    for value in accepted:
        directory.remove_member(so_of(org), value)
    assert directory.members_of(so_of(org)) == {"alice"}
    assert directory.memberships_of("alice") == {so_of(org)}


def test_hostile_group_ids_stay_inside_their_parent(directory, make_person):
    make_person("alice")
    org = an_organization()
    directory.create_organization(org)
    ids = [value for value in HOSTILE if "\x00" not in value]
    for value in ids:
        directory.create_user_group(a_user_group(org, value, name=f"Group {value}"))
    assert {group.id for group in directory.list_user_groups(org.id)} == set(ids)
    for value in ids:
        group = directory.get_user_group(org.id, value)
        assert group is not None and group.id == value
        dn = directory.tree.user_group(org.id, value)
        assert split_dn(dn)[1:] == split_dn(directory.tree.organization_groups(org.id))
        directory.add_member(end_user_of(group), "alice")
    expected = {end_user_of(a_user_group(org, value)) for value in ids}
    assert directory.memberships_of("alice") == expected
    # The help desk is not reachable through a crafted group id.
    assert Membership(Role.HELP_DESK, ScopeKind.SYSTEM) not in directory.memberships_of("alice")


def test_filter_metacharacters_in_people_search_are_literal(root_directory, make_person):
    make_person("alice")
    root_directory.add_person(Person("star*", "Star Person"))
    assert [p.username for p in root_directory.find_people("*")] == ["star*"]
    assert root_directory.find_people(")(uid=*") == []
    assert root_directory.find_people("\\") == []
