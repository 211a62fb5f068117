"""Least privilege in slapd's ACLs: each service account can do its job and nothing more."""

from __future__ import annotations

import ldap3
import pytest

from iacs.directory import AccessDenied
from iacs.domain import Person

from .factories import HELP_DESK, a_request, an_audit_record, an_organization, so_of

pytestmark = pytest.mark.servers


def secret(settings, account: str) -> str:
    return getattr(settings, f"{account}_bind_password").get_secret_value()


def bind_as(ldap_connect, settings, account: str) -> ldap3.Connection:
    connection = ldap_connect(getattr(settings, f"{account}_bind_dn"), secret(settings, account))
    assert connection.bound, connection.result
    return connection


def test_the_sync_account_reads_but_cannot_write(directory, sync_directory, make_person):
    make_person("alice")
    org = an_organization()
    directory.create_organization(org)
    directory.add_member(so_of(org), "alice")
    assert sync_directory.memberships_of("alice") == {so_of(org)}
    assert sync_directory.get_organization(org.id) == org
    writes = [
        lambda: sync_directory.create_organization(an_organization("987654321")),
        lambda: sync_directory.add_member(HELP_DESK, "alice"),
        lambda: sync_directory.remove_member(so_of(org), "alice"),
        lambda: sync_directory.add_request(a_request()),
        lambda: sync_directory.append_audit(an_audit_record()),
        lambda: sync_directory.update_organization_profile(org.id, name="Hijacked"),
        lambda: sync_directory.add_person(Person("mallory", "Mallory")),
        lambda: sync_directory.delete_person("alice"),
    ]
    for write in writes:
        with pytest.raises(AccessDenied):
            write()
    assert directory.memberships_of("alice") == {so_of(org)}


def test_the_portal_cannot_read_passwords_or_write_people(
    directory, make_person, ldap_settings, ldap_connect
):
    make_person("alice", password="alice-secret")
    portal = bind_as(ldap_connect, ldap_settings, "portal")
    portal.search(directory.tree.person("alice"), "(objectClass=*)", ldap3.BASE, attributes=["*"])
    assert portal.entries and not portal.response[0]["raw_attributes"].get("userPassword")
    portal.search(directory.tree.base, "(userPassword=*)", attributes=["1.1"])
    assert portal.entries == []
    portal.search(directory.tree.services, "(objectClass=*)", attributes=["*"])
    assert portal.entries == []
    with pytest.raises(AccessDenied):
        directory.add_person(Person("mallory", "Mallory"))
    portal.modify(directory.tree.person("alice"), {"mail": [(ldap3.MODIFY_REPLACE, ["x@y.z"])]})
    assert portal.result["result"] == 50


def test_passwords_are_hashed_by_slapd_and_readable_by_nobody(
    directory, make_person, ldap_settings, ldap_connect
):
    make_person("alice", password="alice-secret")
    root = ldap_connect()
    root.search(
        directory.tree.person("alice"), "(objectClass=*)", ldap3.BASE, attributes=["userPassword"]
    )
    assert str(root.entries[0].userPassword.value).startswith("{ARGON2}$argon2")
    for account in ("portal", "sync", "keycloak"):
        connection = bind_as(ldap_connect, ldap_settings, account)
        connection.search(
            directory.tree.person("alice"),
            "(objectClass=*)",
            ldap3.BASE,
            attributes=["userPassword"],
        )
        assert all(not item["raw_attributes"].get("userPassword") for item in connection.response)
    person = ldap_connect(directory.tree.person("alice"), "alice-secret")
    assert person.bound
    assert not ldap_connect(directory.tree.person("alice"), "wrong").bound


def test_keycloak_writes_people_and_passwords_and_sees_nothing_else(
    directory, keycloak_directory, make_person, ldap_settings, ldap_connect
):
    newcomer = Person("newcomer", "New Comer", "new@example.test")
    keycloak_directory.add_person(newcomer, "first-password-1")
    assert ldap_connect(directory.tree.person("newcomer"), "first-password-1").bound
    keycloak = bind_as(ldap_connect, ldap_settings, "keycloak")
    keycloak.extend.standard.modify_password(
        directory.tree.person("newcomer"), new_password="second-password-2"
    )
    assert keycloak.result["result"] == 0
    assert ldap_connect(directory.tree.person("newcomer"), "second-password-2").bound
    # ...but not the password of a service account (that would be an escalation).
    keycloak.extend.standard.modify_password(
        ldap_settings.portal_bind_dn, new_password="owned-portal-password"
    )
    assert keycloak.result["result"] == 50
    org = an_organization()
    directory.create_organization(org)
    directory.add_request(a_request())
    assert keycloak_directory.get_organization(org.id) is None
    assert keycloak_directory.find_requests() == []
    assert keycloak_directory.find_audit() == []
    with pytest.raises(AccessDenied):
        keycloak_directory.create_organization(an_organization("987654321"))
    keycloak.search(ldap_settings.accesslog_dn, "(objectClass=*)", attributes=["1.1"])
    assert keycloak.entries == []
    # Writing people never grants authority: memberOf is kept by slapd, not by clients.
    keycloak.modify(
        directory.tree.person("newcomer"),
        {"memberOf": [(ldap3.MODIFY_ADD, [directory.tree.help_desk])]},
    )
    assert keycloak.result["result"] == 19
    assert directory.memberships_of("newcomer") == frozenset()


def test_a_person_can_change_only_their_own_password(directory, make_person, ldap_connect):
    make_person("alice", password="alice-1")  # the root DN (operator) is not policy-bound
    make_person("bob", password="bob-1")
    alice = ldap_connect(directory.tree.person("alice"), "alice-1")
    alice.extend.standard.modify_password(
        directory.tree.person("alice"), new_password="alice-second-password"
    )
    assert alice.result["result"] == 0
    alice.extend.standard.modify_password(
        directory.tree.person("bob"), new_password="owned-by-alice-now"
    )
    assert alice.result["result"] == 50
    alice.search(directory.tree.organizations, "(objectClass=*)", attributes=["1.1"])
    assert alice.entries == []


def test_anonymous_may_only_bind(directory, make_person, ldap_connect, ldap_settings):
    make_person("alice")
    anonymous = ldap_connect("", "")
    for base in (directory.tree.base, directory.tree.people, "", ldap_settings.accesslog_dn):
        anonymous.search(base, "(objectClass=*)", ldap3.BASE if base == "" else ldap3.SUBTREE)
        assert anonymous.entries == [], base


def test_the_change_feed_is_for_the_sync_account_only_and_never_shows_passwords(
    directory, make_person, ldap_settings, ldap_connect
):
    make_person("feed-reader", password="alice-secret")  # a name no other test writes
    sync = bind_as(ldap_connect, ldap_settings, "sync")
    sync.search(
        ldap_settings.accesslog_dn,
        f"(reqDN={directory.tree.person('feed-reader')})",
        attributes=["reqType", "reqMod"],
    )
    assert {entry.reqType.value for entry in sync.entries} == {"add", "modify"}
    mods = [value for entry in sync.entries for value in entry.reqMod.values]
    assert mods and not [value for value in mods if value.lower().startswith("userpassword")]
    assert not [value for value in mods if "alice-secret" in value]
    portal = bind_as(ldap_connect, ldap_settings, "portal")
    portal.search(ldap_settings.accesslog_dn, "(objectClass=*)", attributes=["1.1"])
    assert portal.entries == []
