"""The sync worker's reads: the whole picture in a snapshot, and the accesslog change feed."""

from __future__ import annotations

import pytest

from iacs.directory import DirectorySnapshot
from iacs.domain import EntityStatus, Person

from .factories import (
    HELP_DESK,
    a_surrogate_group,
    a_user_group,
    an_organization,
    end_user_of,
    practitioner,
    so_of,
    sug_uga_of,
)

pytestmark = pytest.mark.servers


def test_snapshot_holds_people_memberships_and_entities(
    directory, root_directory, sync_directory, make_person
):
    people = {
        name: make_person(name) for name in ("alice", "bob", "carol", "dave", "erin", "frank")
    }
    org = an_organization()
    directory.create_organization(org)
    directory.set_organization_status(org.id, EntityStatus.ACTIVE)
    group = a_user_group(org)
    directory.create_user_group(group)
    sug = a_surrogate_group(associated_organizations=frozenset({org.id}))
    directory.create_surrogate_group(sug)
    directory.create_practitioner_group("1234567893")
    grants = {
        "alice": {so_of(org)},
        "bob": {end_user_of(group)},
        "carol": {sug_uga_of(sug), end_user_of(group)},
        "dave": {practitioner("1234567893")},
        "erin": {HELP_DESK},
        "frank": set(),
    }
    for username, memberships in grants.items():
        for membership in memberships:
            # The help desk is the operator's to grant (root DN), never the portal's.
            writer = root_directory if membership == HELP_DESK else directory
            writer.add_member(membership, username)

    snapshot = sync_directory.snapshot(page_size=2)  # several pages even for a small tree

    assert isinstance(snapshot, DirectorySnapshot)
    assert snapshot.people == {name: frozenset(ms) for name, ms in grants.items()}
    assert snapshot.profiles == people
    assert snapshot.organizations == {org.id: directory.get_organization(org.id)}
    assert snapshot.user_groups == {(org.id, group.id): group}
    assert snapshot.surrogate_groups == {sug.id: sug}
    assert snapshot.memberships_of("nobody") == frozenset()


def test_accesslog_records_a_write_with_req_start(
    directory, sync_directory, make_person, ldap_connect, ldap_settings
):
    before = sync_directory.changes_since(None, limit=100000)
    cursor = before[-1].cursor if before else None
    make_person("alice")
    org = an_organization()
    directory.create_organization(org)
    directory.add_member(so_of(org), "alice")

    changes = sync_directory.changes_since(cursor)

    assert [c.dn for c in changes][:1] == [directory.tree.person("alice")]
    assert all(c.cursor > (cursor or "") for c in changes)
    assert [c.cursor for c in changes] == sorted({c.cursor for c in changes})
    membership_change = changes[-1]
    assert (membership_change.kind, membership_change.membership) == ("modify", so_of(org))
    assert membership_change.usernames == {"alice"}
    assert sync_directory.changes_since(changes[-1].cursor) == []
    assert sync_directory.oldest_change_cursor() <= changes[0].cursor

    sync = ldap_connect(
        ldap_settings.sync_bind_dn, ldap_settings.sync_bind_password.get_secret_value()
    )
    sync.search(
        ldap_settings.accesslog_dn,
        f"(&(reqDN={directory.tree.organization(org.id)})(reqType=add))",
        attributes=["reqStart", "reqResult"],
    )
    assert sync.entries and sync.entries[-1].reqStart.value


def test_people_written_by_keycloak_appear_in_the_feed(keycloak_directory, sync_directory):
    before = sync_directory.changes_since(None, limit=100000)
    keycloak_directory.add_person(Person("newcomer", "New Comer"), "pw-1234567890")
    changes = sync_directory.changes_since(before[-1].cursor if before else None)
    assert {c.kind for c in changes} == {"add", "modify"}
    assert all(c.usernames == {"newcomer"} for c in changes)
