"""Organizations, user groups, surrogate groups and practitioners; ORG-2 under concurrency."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import ldap3
import pytest

from iacs.directory import GroupExists, InvalidEntry, NotFound, OrganizationExists, UnexpectedStatus
from iacs.domain import EntityStatus, ProviderType

from .factories import a_surrogate_group, a_user_group, an_organization, so_of

pytestmark = pytest.mark.servers


def test_organization_round_trip_with_its_role_groups(directory, ldap_connect):
    org = an_organization(address="1 Main Street\nSuite $5 \\ back\nSpringfield")
    directory.create_organization(org)
    assert directory.get_organization(org.id) == org
    assert directory.get_organization("org-999999999") is None
    connection = ldap_connect()
    connection.search(directory.tree.organization(org.id), "(objectClass=*)", attributes=["1.1"])
    children = {item["dn"].split(",")[0] for item in connection.response}
    assert children == {
        f"ou={org.id}",
        "cn=security-official",
        "cn=backup-security-officials",
        "ou=groups",
    }


def test_org_2_second_registration_of_the_same_identifier_is_refused(directory):
    directory.create_organization(an_organization("12-3456789"))
    with pytest.raises(OrganizationExists):
        directory.create_organization(an_organization("123456789", name="Someone Else"))
    assert directory.get_organization("org-123456789").name == "Hospital 123456789"


def test_org_2_id_must_be_derived_from_the_identifier(directory):
    with pytest.raises(InvalidEntry):
        directory.create_organization(replace(an_organization(), id="org-my-own-id"))


def test_org_2_concurrent_registrations_exactly_one_wins(directory):
    barrier = threading.Barrier(8)

    def register(number: int) -> str:
        org = an_organization("123456789", name=f"Registrant {number}")
        barrier.wait()
        try:
            directory.create_organization(org)
        except OrganizationExists:
            return "refused"
        return f"won:{number}"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(register, range(8)))

    winners = [outcome for outcome in outcomes if outcome.startswith("won")]
    assert len(winners) == 1
    assert outcomes.count("refused") == 7
    stored = directory.get_organization("org-123456789")
    assert stored.name == f"Registrant {winners[0].split(':')[1]}"
    assert [org.id for org in directory.find_organizations()] == ["org-123456789"]
    assert directory.members_of(so_of(stored)) == frozenset()


def test_profile_status_and_search(directory):
    org = an_organization()
    directory.create_organization(org)
    directory.create_organization(an_organization("987654321", name="Valley Clinic"))
    directory.update_organization_profile(
        org.id, name="General Hospital", phone="", provider_type=ProviderType.AMBULANCE_COMPANY
    )
    updated = directory.get_organization(org.id)
    assert (updated.name, updated.phone, updated.address) == ("General Hospital", "", org.address)
    assert updated.provider_type is ProviderType.AMBULANCE_COMPANY
    directory.set_organization_status(org.id, EntityStatus.ACTIVE, expected=EntityStatus.PENDING)
    with pytest.raises(UnexpectedStatus):
        directory.set_organization_status(
            org.id, EntityStatus.ACTIVE, expected=EntityStatus.PENDING
        )
    assert directory.get_organization(org.id).status is EntityStatus.ACTIVE
    assert [o.id for o in directory.find_organizations("general")] == [org.id]
    assert [o.id for o in directory.find_organizations("98765")] == ["org-987654321"]
    assert [o.id for o in directory.find_organizations(status=EntityStatus.ACTIVE)] == [org.id]
    with pytest.raises(NotFound):
        directory.update_organization_profile("org-999999999", name="Nobody")


def test_only_a_pending_organization_is_deleted(directory):
    org = an_organization()
    directory.create_organization(org)
    directory.set_organization_status(org.id, EntityStatus.ACTIVE)
    with pytest.raises(UnexpectedStatus):
        directory.delete_organization(org.id)
    assert directory.get_organization(org.id) is not None
    pending = an_organization("987654321")
    directory.create_organization(pending)
    directory.create_user_group(a_user_group(pending))
    directory.delete_organization(pending.id)
    assert directory.get_organization(pending.id) is None
    with pytest.raises(NotFound):
        directory.delete_organization(pending.id)


def test_user_groups(directory):
    org = an_organization()
    directory.create_organization(org)
    billing = a_user_group(org, "billing")
    directory.create_user_group(billing)
    directory.create_user_group(a_user_group(org, "admissions", name="Admissions"))
    assert directory.get_user_group(org.id, "billing") == billing
    assert directory.get_user_group(org.id, "nope") is None
    with pytest.raises(GroupExists):
        directory.create_user_group(a_user_group(org, "billing", name="Second Billing"))
    with pytest.raises(NotFound):
        directory.create_user_group(a_user_group(an_organization("987654321")))
    assert [g.id for g in directory.list_user_groups(org.id)] == ["admissions", "billing"]
    directory.update_user_group_profile(org.id, "billing", description="")
    directory.set_user_group_status(org.id, "billing", EntityStatus.ACTIVE)
    assert directory.get_user_group(org.id, "billing") == replace(
        billing, description="", status=EntityStatus.ACTIVE
    )
    assert [g.id for g in directory.list_user_groups(org.id, status=EntityStatus.PENDING)] == [
        "admissions"
    ]
    with pytest.raises(UnexpectedStatus):
        directory.delete_user_group(org.id, "billing")
    directory.delete_user_group(org.id, "admissions")
    assert directory.get_user_group(org.id, "admissions") is None
    assert directory.list_user_groups("org-999999999") == []


def test_surrogate_groups_and_their_associations(directory):
    first, second = an_organization("111111111"), an_organization("222222222")
    directory.create_organization(first)
    directory.create_organization(second)
    sug = a_surrogate_group(associated_organizations=frozenset({first.id}))
    directory.create_surrogate_group(sug)
    assert directory.get_surrogate_group(sug.id) == sug
    with pytest.raises(GroupExists):
        directory.create_surrogate_group(a_surrogate_group())
    with pytest.raises(NotFound):
        directory.create_surrogate_group(
            a_surrogate_group("other", associated_organizations=frozenset({"org-333333333"}))
        )

    directory.associate_surrogate(sug.id, second.id)
    directory.associate_surrogate(sug.id, second.id)
    assert directory.get_surrogate_group(sug.id).associated_organizations == {first.id, second.id}
    assert [s.id for s in directory.list_surrogate_groups(organization_id=second.id)] == [sug.id]
    with pytest.raises(NotFound):
        directory.associate_surrogate(sug.id, "org-333333333")

    directory.dissociate_surrogate(sug.id, second.id)
    directory.dissociate_surrogate(sug.id, second.id)
    assert directory.list_surrogate_groups(organization_id=second.id) == []

    directory.update_surrogate_group_profile(sug.id, name="Acme Claims")
    directory.set_surrogate_group_status(sug.id, EntityStatus.ACTIVE)
    stored = directory.get_surrogate_group(sug.id)
    assert (stored.name, stored.status) == ("Acme Claims", EntityStatus.ACTIVE)
    assert [s.id for s in directory.list_surrogate_groups(status=EntityStatus.ACTIVE)] == [sug.id]


def test_refint_drops_the_association_of_a_deleted_organization(directory):
    org = an_organization()
    directory.create_organization(org)
    sug = a_surrogate_group(associated_organizations=frozenset({org.id}))
    directory.create_surrogate_group(sug)
    directory.delete_organization(org.id)
    deadline_checks = 250
    while directory.get_surrogate_group(sug.id).associated_organizations and deadline_checks:
        deadline_checks -= 1
        threading.Event().wait(0.02)
    assert directory.get_surrogate_group(sug.id).associated_organizations == frozenset()


def test_a_pending_surrogate_group_can_be_deleted(directory):
    sug = a_surrogate_group()
    directory.create_surrogate_group(sug)
    directory.delete_surrogate_group(sug.id)
    assert directory.get_surrogate_group(sug.id) is None


def test_practitioner_groups(directory, ldap_connect):
    assert directory.create_practitioner_group("1234567893") is True
    assert directory.create_practitioner_group("1234567893") is False
    with pytest.raises(GroupExists):
        directory.create_practitioner_group("1234567893", exist_ok=False)
    connection = ldap_connect()
    connection.search(
        directory.tree.practitioner("1234567893"),
        "(objectClass=iacsRoleGroup)",
        ldap3.BASE,
        attributes=["iacsIdentifier", "iacsRole"],
    )
    assert connection.entries[0].iacsIdentifier.value == "1234567893"
    assert connection.entries[0].iacsRole.value == "individual_practitioner"
