"""The generated community: reproducible from its seed, as large as asked, and consistent.

Consistent means what slapd and the sync worker rely on: every DN is unique and its parent comes
before it, every ``member`` names a generated person, every ``memberOf`` is the inverse of the
``member`` values, every surrogate association names a generated organization, and each entry
uses only the classes and attributes of docs/architecture.md.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter

import pytest

from bench.generate import (
    BENCH_PASSWORD,
    SIZES,
    Community,
    CommunitySize,
    format_entry,
    generate,
)
from iacs.domain import Role, ScopeKind, is_valid_id

SMALL = CommunitySize(
    people=120, organizations=20, user_groups=45, surrogate_groups=6, practitioners=2, seed=7
)


@pytest.fixture(scope="module")
def community() -> Community:
    return generate(SMALL)


@pytest.fixture(scope="module")
def entries(community: Community) -> list[tuple[str, list[tuple[str, str]]]]:
    return list(community.entries(member_of=True))


def ldif(community: Community, tmp_path, **kwargs) -> bytes:
    path = tmp_path / "community.ldif"
    community.write_ldif(path, **kwargs)
    return path.read_bytes()


def test_the_same_seed_gives_the_same_ldif_byte_for_byte(tmp_path):
    first = ldif(generate(SMALL), tmp_path)
    second = ldif(generate(SMALL), tmp_path)
    assert first == second
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()


def test_another_seed_gives_another_community(tmp_path):
    other = CommunitySize(**{**SMALL.__dict__, "seed": 8})
    assert ldif(generate(SMALL), tmp_path) != ldif(generate(other), tmp_path)


def test_counts_are_as_requested(community: Community, entries):
    counts = community.counts()
    assert counts["people"] == SMALL.people
    assert counts["organizations"] == SMALL.organizations
    assert counts["user_groups"] == SMALL.user_groups
    assert counts["surrogate_groups"] == SMALL.surrogate_groups
    assert counts["practitioners"] == SMALL.practitioners
    classes = Counter(
        value for _, attrs in entries for name, value in attrs if name == "objectClass"
    )
    assert classes["inetOrgPerson"] == SMALL.people
    assert classes["iacsOrganization"] == SMALL.organizations
    assert classes["iacsUserGroup"] == SMALL.user_groups
    assert classes["iacsSurrogateGroup"] == SMALL.surrogate_groups
    assert classes["iacsRequest"] == community.membership_count - SMALL.help_desk
    assert len(community.help_desk()) == SMALL.help_desk


def test_the_two_bench_sizes_are_the_issues_sizes():
    assert (SIZES["full"].people, SIZES["full"].organizations) == (10_000, 2_000)
    assert (SIZES["full"].user_groups, SIZES["full"].surrogate_groups) == (5_000, 300)
    assert 200 <= SIZES["ci"].people <= 500


def test_every_dn_is_unique_and_its_parent_comes_first(community: Community, entries):
    dns = [dn.lower() for dn, _ in entries]
    assert len(dns) == len(set(dns))
    bootstrap = {
        f"{ou},{community.base_dn}".lower()
        for ou in (
            "ou=people",
            "ou=organizations",
            "ou=surrogate-groups",
            "ou=practitioners",
            "ou=requests",
        )
    }
    seen = set(bootstrap)
    for dn in dns:
        assert dn.split(",", 1)[1] in seen, dn
        seen.add(dn)


def test_every_id_is_a_valid_id_and_organizations_are_nine_digits(community: Community):
    for org in community.organizations:
        assert org.startswith("org-") and len(org) == 13 and org[4:].isdigit()
    for org, group in community.user_groups:
        assert is_valid_id(group) and org in community.organizations
    assert all(is_valid_id(sug) for sug in community.surrogate_groups)
    assert all(len(npi) == 10 and npi.isdigit() for npi in community.practitioners)


def test_member_values_name_generated_people_and_member_of_is_their_inverse(
    community: Community, entries
):
    people = {community.person_dn(name).lower() for name in community.people}
    member: set[tuple[str, str]] = set()
    member_of: set[tuple[str, str]] = set()
    for dn, attrs in entries:
        for name, value in attrs:
            if name == "member":
                assert value.lower() in people
                member.add((value.lower(), dn.lower()))
            elif name == "memberOf":
                member_of.add((dn.lower(), value.lower()))
    help_desk = f"cn=help-desk,ou=system,{community.base_dn}".lower()
    assert member_of == member  # the help desk is added later, through the overlay
    desk = {(community.person_dn(name).lower(), help_desk) for name in community.help_desk()}
    assert len(member) + len(desk) == community.membership_count


def test_memberships_are_what_the_role_groups_hold(community: Community, entries):
    groups = {dn.lower() for dn, _ in entries}
    for username, memberships in community.memberships.items():
        for membership in memberships:
            if membership.scope_kind is ScopeKind.SYSTEM:
                continue
            assert community.role_group_dn(membership).lower() in groups, (username, membership)


def test_each_organization_has_one_security_official_and_each_group_an_administrator(
    community: Community,
):
    holders = community.members_of()
    officials = [m for m in holders if m.role is Role.SECURITY_OFFICIAL]
    assert len(officials) == SMALL.organizations
    assert all(len(holders[m]) == 1 for m in officials)
    admins = {
        (m.organization_id, m.scope_id)
        for m in holders
        if m.role is Role.USER_GROUP_ADMINISTRATOR and m.scope_kind is ScopeKind.USER_GROUP
    }
    assert admins == set(community.user_groups)
    sug_admins = {
        m.scope_id
        for m in holders
        if m.role is Role.USER_GROUP_ADMINISTRATOR and m.scope_kind is ScopeKind.SURROGATE_GROUP
    }
    assert sug_admins == set(community.surrogate_groups)


def test_people_are_in_several_groups(community: Community):
    end_user = [
        sum(1 for m in ms if m.role is Role.END_USER) for ms in community.memberships.values()
    ]
    assert max(end_user) >= 2
    assert sum(end_user) / len(end_user) > 1.2


def test_surrogate_groups_are_associated_with_several_known_organizations(
    community: Community, entries
):
    low, high = SMALL.sug_associations
    for orgs in community.surrogate_groups.values():
        assert low <= len(orgs) <= high
        assert len(set(orgs)) == len(orgs)
    org_dns = {community.organization_dn(org).lower() for org in community.organizations}
    associations = [v for _, a in entries for n, v in a if n == "iacsAssociatedOrganization"]
    assert associations and all(value.lower() in org_dns for value in associations)


def test_requests_point_at_generated_scopes(community: Community, entries):
    orgs, groups = set(community.organizations), set(community.user_groups)
    for _, attrs in entries:
        values = dict(attrs)
        if values.get("objectClass") != "iacsRequest":
            continue
        assert values["iacsRequestStatus"] == "approved"
        assert values["iacsRequester"] in community.memberships
        if "iacsGroupId" in values:
            assert (values["iacsOrganizationId"], values["iacsGroupId"]) in groups
        elif "iacsOrganizationId" in values:
            assert values["iacsOrganizationId"] in orgs
        if "iacsSurrogateGroupId" in values:
            assert values["iacsSurrogateGroupId"] in community.surrogate_groups
        assert values["iacsDecidedBy"] != values["iacsRequester"]  # DEC-1


def test_every_person_has_the_one_precomputed_ssha_hash(community: Community, entries):
    hashes = {v for _, attrs in entries for n, v in attrs if n == "userPassword"}
    assert len(hashes) == 1
    (value,) = hashes
    raw = base64.b64decode(value.removeprefix("{SSHA}"))
    digest, salt = raw[:20], raw[20:]
    assert hashlib.sha1(BENCH_PASSWORD.encode() + salt).digest() == digest  # noqa: S324


def test_without_member_of_and_requests_for_an_online_load(tmp_path):
    community = generate(SMALL, with_requests=False)
    text = ldif(community, tmp_path, member_of=False).decode()
    assert "memberOf:" not in text
    assert "iacsRequest" not in text
    assert "member: uid=" in text


def test_help_desk_change_is_an_ldapmodify_of_the_bootstrap_group(community: Community):
    change = community.help_desk_ldif()
    assert change.startswith(f"dn: cn=help-desk,ou=system,{community.base_dn}\nchangetype: modify")
    assert change.count("\nmember: ") == SMALL.help_desk


def test_unsafe_values_are_written_base64():
    text = format_entry("cn=x,dc=example", [("description", " leading space"), ("sn", "Müller")])
    assert "description:: IGxlYWRpbmcgc3BhY2U=" in text
    assert "sn:: " in text
    assert text.endswith("\n\n")
