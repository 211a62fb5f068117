"""People and role memberships: memberOf maintained by slapd, parsed back into Membership."""

from __future__ import annotations

import time

import pytest

from iacs.directory import InvalidEntry, NotFound, PersonExists
from iacs.domain import Person

from .factories import (
    HELP_DESK,
    a_surrogate_group,
    a_user_group,
    an_organization,
    bso_of,
    end_user_of,
    practitioner,
    so_of,
    sug_end_user_of,
    sug_uga_of,
    uga_of,
)

pytestmark = pytest.mark.servers


def wait_until(condition, timeout: float = 5.0) -> bool:
    """refint works in a background thread of slapd: poll instead of sleeping blindly."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_person_round_trip_and_search(directory, make_person):
    alice = make_person("alice", display_name="Alice Liddell", email="alice@example.test")
    make_person("bob", display_name="Bob Builder")
    assert directory.get_person("alice") == alice
    assert directory.get_person("nobody") is None
    assert [p.username for p in directory.find_people("liddell")] == ["alice"]
    assert [p.username for p in directory.find_people("")] == ["alice", "bob"]
    assert len(directory.find_people("", limit=1)) == 1


def test_adding_a_person_twice_is_refused(root_directory, make_person):
    make_person("alice")
    with pytest.raises(PersonExists):
        root_directory.add_person(Person("alice", "Alice Again"))


def test_over_long_values_are_refused_before_writing(root_directory):
    with pytest.raises(InvalidEntry):
        root_directory.add_person(Person("x" * 300, "Too Long"))


def test_every_kind_of_membership_round_trips_through_member_of(
    directory, root_directory, make_person
):
    make_person("alice")
    org = an_organization()
    directory.create_organization(org)
    group = a_user_group(org)
    directory.create_user_group(group)
    sug = a_surrogate_group(associated_organizations=frozenset({org.id}))
    directory.create_surrogate_group(sug)
    directory.create_practitioner_group("1234567893")
    expected = {
        HELP_DESK,
        so_of(org),
        bso_of(org),
        uga_of(group),
        end_user_of(group),
        sug_uga_of(sug),
        sug_end_user_of(sug),
        practitioner("1234567893"),
    }
    for membership in expected:
        # The help desk is the operator's to grant (root DN), never the portal's.
        (root_directory if membership == HELP_DESK else directory).add_member(membership, "alice")
    assert directory.memberships_of("alice") == expected
    for membership in expected:
        assert directory.members_of(membership) == {"alice"}


def test_add_and_remove_member_are_idempotent(directory, make_person):
    make_person("alice")
    org = an_organization()
    directory.create_organization(org)
    directory.add_member(so_of(org), "alice")
    directory.add_member(so_of(org), "alice")
    assert directory.members_of(so_of(org)) == {"alice"}
    directory.remove_member(so_of(org), "alice")
    directory.remove_member(so_of(org), "alice")
    assert directory.members_of(so_of(org)) == frozenset()
    assert directory.memberships_of("alice") == frozenset()


def test_membership_of_unknown_person_or_scope_is_not_found(directory, make_person):
    make_person("alice")
    org = an_organization()
    directory.create_organization(org)
    with pytest.raises(NotFound):
        directory.add_member(so_of(org), "ghost")
    with pytest.raises(NotFound):
        directory.add_member(so_of(an_organization("987654321")), "alice")
    with pytest.raises(NotFound):
        directory.members_of(so_of(an_organization("987654321")))
    assert directory.memberships_of("ghost") == frozenset()


def test_member_of_appears_and_refint_drops_a_deleted_person(
    directory, root_directory, make_person
):
    make_person("alice")
    make_person("bob")
    org = an_organization()
    directory.create_organization(org)
    directory.add_member(so_of(org), "alice")
    directory.add_member(bso_of(org), "alice")
    directory.add_member(bso_of(org), "bob")
    assert directory.memberships_of("alice") == {so_of(org), bso_of(org)}

    root_directory.delete_person("alice")

    assert wait_until(lambda: directory.members_of(so_of(org)) == frozenset())
    assert wait_until(lambda: directory.members_of(bso_of(org)) == {"bob"})
    assert directory.memberships_of("alice") == frozenset()


def test_member_of_disappears_when_the_scope_is_deleted(directory, make_person):
    make_person("alice")
    org = an_organization()
    directory.create_organization(org)
    group = a_user_group(org)
    directory.create_user_group(group)
    directory.add_member(end_user_of(group), "alice")
    directory.add_member(so_of(org), "alice")
    directory.delete_user_group(org.id, group.id)
    assert directory.memberships_of("alice") == {so_of(org)}
    directory.delete_organization(org.id)
    assert directory.memberships_of("alice") == frozenset()
