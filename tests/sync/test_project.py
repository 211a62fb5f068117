"""Table tests of the pure projection: directory snapshot + catalogue -> desired Keycloak state."""

from __future__ import annotations

import json

import pytest

from iacs.catalogue import load_catalogue
from iacs.domain import EntityStatus, Membership, Role, ScopeKind
from sync.model import TOP_PATH, affiliation_attribute
from sync.project import project

from .factories import (
    ORG_A,
    ORG_B,
    backup_security_official,
    end_user,
    help_desk,
    org,
    practitioner,
    security_official,
    surrogate_end_user,
    surrogate_group,
    surrogate_uga,
    uga,
    user_group,
    world,
)

CATALOGUE = load_catalogue()
PQRI, PSR = "pqri-feedback-reports", "psr"


def claims(state, path: str, client_id: str) -> dict:
    (value,) = state.groups[path].attributes[affiliation_attribute(client_id)]
    return json.loads(value)


# membership, leaf path, PQRI roles, PS&R roles
CASES = [
    (help_desk(), "/iacs/help-desk", set(), set()),
    (security_official(ORG_A), f"/iacs/{ORG_A}/security-official", set(), set()),
    (backup_security_official(ORG_A), f"/iacs/{ORG_A}/backup-security-official", set(), set()),
    (
        uga(ORG_A, "billing"),
        f"/iacs/{ORG_A}/billing/user-group-administrator",
        {"report-viewer"},
        {"report-viewer"},
    ),
    (
        end_user(ORG_A, "billing"),
        f"/iacs/{ORG_A}/billing/end-user",
        {"report-viewer"},
        {"report-viewer", "report-requester"},
    ),
    (surrogate_uga("acme"), "/iacs/sug-acme/user-group-administrator", {"report-viewer"}, set()),
    (surrogate_end_user("acme"), "/iacs/sug-acme/end-user", {"report-viewer"}, set()),
    (
        practitioner("1234567893"),
        "/iacs/npi-1234567893/individual-practitioner",
        {"report-viewer"},
        set(),
    ),
]


@pytest.mark.parametrize(("membership", "path", "pqri", "psr"), CASES)
def test_app_1_each_affiliation_projects_to_its_leaf_with_catalogue_roles(
    membership: Membership, path: str, pqri: set[str], psr: set[str]
) -> None:
    """APP-1: the catalogue decides the client roles of each kind of affiliation."""
    state = project(world({"pat": [membership]}), CATALOGUE)
    assert state.memberships == {"pat": frozenset({path})}
    group = state.groups[path]
    assert group.client_roles.get(PQRI, frozenset()) == pqri
    assert group.client_roles.get(PSR, frozenset()) == psr
    assert claims(state, path, PQRI)["app_roles"] == sorted(pqri)
    assert claims(state, path, PSR)["app_roles"] == sorted(psr)
    assert claims(state, path, PQRI)["role"] == membership.role.value


def test_intermediate_groups_are_created_without_attributes_or_roles() -> None:
    state = project(world({"pat": [end_user(ORG_A, "billing")]}), CATALOGUE)
    assert set(state.groups) == {
        TOP_PATH,
        f"/iacs/{ORG_A}",
        f"/iacs/{ORG_A}/billing",
        f"/iacs/{ORG_A}/billing/end-user",
    }
    for path in (TOP_PATH, f"/iacs/{ORG_A}", f"/iacs/{ORG_A}/billing"):
        assert not state.groups[path].attributes
        assert not state.groups[path].client_roles


def test_nobody_projects_only_the_top_group() -> None:
    state = project(world({}), CATALOGUE)
    assert set(state.groups) == {TOP_PATH}
    assert state.memberships == {}


@pytest.mark.parametrize("membership", [security_official(ORG_A), backup_security_official(ORG_A)])
def test_org_6_security_officials_get_no_application_roles(membership: Membership) -> None:
    """ORG-6: SO and BSO affiliations are in the tokens but give no application roles."""
    state = project(world({"so": [membership]}), CATALOGUE)
    (path,) = state.memberships["so"]
    assert state.groups[path].client_roles == {}
    for client_id in (PQRI, PSR):
        claim = claims(state, path, client_id)
        assert claim["app_roles"] == []
        assert claim["organization"] == ORG_A
        assert claim["surrogate"] is False


def test_sug_6_surrogate_end_user_gets_no_psr_roles() -> None:
    """SUG-6: no PS&R role flows through a surrogate membership, End User or UGA."""
    state = project(world({"sue": [surrogate_end_user("acme"), surrogate_uga("acme")]}), CATALOGUE)
    for path in state.memberships["sue"]:
        assert PSR not in state.groups[path].client_roles
        assert claims(state, path, PSR)["app_roles"] == []
        assert claims(state, path, PSR)["surrogate"] is True
        assert claims(state, path, PQRI)["app_roles"] == ["report-viewer"]


def test_sug_6_provider_end_user_keeps_psr_and_the_affiliation_shows_which() -> None:
    """SUG-6: a surrogate who is also an End User of a provider's own group keeps PS&R via it."""
    state = project(
        world({"sue": [surrogate_end_user("acme"), end_user(ORG_B, "billing")]}), CATALOGUE
    )
    surrogate_path = "/iacs/sug-acme/end-user"
    provider_path = f"/iacs/{ORG_B}/billing/end-user"
    assert state.memberships["sue"] == {surrogate_path, provider_path}
    assert claims(state, surrogate_path, PSR)["app_roles"] == []
    provider = claims(state, provider_path, PSR)
    assert provider["app_roles"] == ["report-requester", "report-viewer"]
    assert provider["surrogate"] is False
    assert provider["organization"] == ORG_B
    assert provider["group"] == "billing"


def test_surrogate_affiliation_names_its_active_associated_organizations() -> None:
    snapshot = world(
        {"sue": [surrogate_end_user("acme")]},
        organizations=[org(ORG_A), org(ORG_B, EntityStatus.PENDING)],
        surrogate_groups=[surrogate_group("acme", ORG_A, ORG_B)],
    )
    claim = claims(project(snapshot, CATALOGUE), "/iacs/sug-acme/end-user", PQRI)
    assert claim == {
        "role": "end_user",
        "organization": None,
        "organizations": [ORG_A],
        "group": "acme",
        "surrogate": True,
        "npi": None,
        "app_roles": ["report-viewer"],
    }


def test_app_2_each_client_attribute_carries_only_that_clients_roles() -> None:
    """APP-2: the PQRI attribute never names a PS&R role and vice versa."""
    state = project(world({"eve": [end_user(ORG_A, "billing")]}), CATALOGUE)
    path = f"/iacs/{ORG_A}/billing/end-user"
    group = state.groups[path]
    assert set(group.attributes) == {affiliation_attribute(PQRI), affiliation_attribute(PSR)}
    for client_id in (PQRI, PSR):
        declared = set(CATALOGUE.applications[client_id].roles)
        assert set(claims(state, path, client_id)["app_roles"]) <= declared
        assert group.client_roles[client_id] <= declared
    assert claims(state, path, PQRI)["app_roles"] == ["report-viewer"]


@pytest.mark.parametrize(
    ("membership", "extra"),
    [
        (end_user(ORG_A, "billing"), {"organizations": [org(ORG_A, EntityStatus.PENDING)]}),
        (end_user(ORG_A, "billing"), {"user_groups": [user_group(ORG_A, "billing", "pending")]}),
        (end_user(ORG_A, "unknown"), {}),
        (security_official("org-999999999"), {}),
        (
            surrogate_end_user("acme"),
            {"surrogate_groups": [surrogate_group("acme", status="rejected")]},
        ),
        (Membership(Role.SECURITY_OFFICIAL, ScopeKind.USER_GROUP, "billing", ORG_A), {}),
    ],
)
def test_app_2_nothing_unapproved_or_inactive_projects(membership: Membership, extra: dict) -> None:
    """APP-2: a membership in an inactive or unknown scope gives no group and is reported."""
    state = project(world({"pat": [membership]}, **extra), CATALOGUE)
    assert state.memberships == {}
    assert set(state.groups) == {TOP_PATH}
    assert [skip.username for skip in state.skipped] == ["pat"]


def test_shared_leaf_is_one_group_with_every_member() -> None:
    state = project(
        world({"a": [end_user(ORG_A, "billing")], "b": [end_user(ORG_A, "billing")]}), CATALOGUE
    )
    assert state.members_of() == {f"/iacs/{ORG_A}/billing/end-user": {"a", "b"}}


def test_projection_is_deterministic() -> None:
    people = {f"u{i}": [end_user(ORG_A, "billing"), surrogate_uga("acme")] for i in range(20)}
    assert project(world(people), CATALOGUE) == project(world(people), CATALOGUE)


def test_memo_of_earlier_leaves_never_changes_the_projection() -> None:
    """The worker's memo only saves work: after a change, the result equals a fresh projection."""
    memo: dict = {}
    before = {"eve": [end_user(ORG_A, "billing")], "sam": [surrogate_end_user("acme")]}
    after = {"eve": [uga(ORG_A, "billing")], "sam": [], "ann": [end_user(ORG_B, "billing")]}
    assert project(world(before), CATALOGUE, memo) == project(world(before), CATALOGUE)
    assert memo
    assert project(world(after), CATALOGUE, memo) == project(world(after), CATALOGUE)
