"""Table tests of the pure diff: desired vs actual managed state -> plan of writes."""

from __future__ import annotations

import dataclasses
import json

from iacs.catalogue import load_catalogue
from sync.diff import diff
from sync.model import (
    TOP_PATH,
    ActualGroup,
    ActualState,
    DesiredState,
    MemberChange,
    RoleMappingChange,
    affiliation_attribute,
)
from sync.project import project

from .factories import ORG_A, ORG_B, end_user, security_official, surrogate_end_user, uga, world

CATALOGUE = load_catalogue()
EU_A = f"/iacs/{ORG_A}/billing/end-user"
UGA_A = f"/iacs/{ORG_A}/billing/user-group-administrator"


def as_actual(desired: DesiredState) -> ActualState:
    """The Keycloak state after a perfect apply of ``desired``."""
    return ActualState(
        groups={
            path: ActualGroup(
                id=f"id-{path}",
                path=path,
                attributes=dict(group.attributes),
                client_roles=dict(group.client_roles),
            )
            for path, group in desired.groups.items()
        },
        members=desired.members_of(),
        user_ids={name: f"uid-{name}" for name in desired.memberships},
    )


PEOPLE = {
    "eve": [end_user(ORG_A, "billing")],
    "ada": [uga(ORG_A, "billing"), end_user(ORG_B, "billing")],
    "sam": [security_official(ORG_A)],
    "sue": [surrogate_end_user("acme")],
}


def test_no_change_plans_nothing() -> None:
    desired = project(world(PEOPLE), CATALOGUE)
    plan = diff(desired, as_actual(desired))
    assert plan.is_empty
    assert set(plan.summary().values()) == {0}


def test_fresh_realm_creates_every_group_parents_first_and_every_membership() -> None:
    desired = project(world(PEOPLE), CATALOGUE)
    plan = diff(desired, ActualState.empty())
    created = [group.path for group in plan.create_groups]
    assert set(created) == set(desired.groups)
    assert created[0] == TOP_PATH
    for index, path in enumerate(created):
        assert path.rsplit("/", 1)[0] in {*created[:index], ""}
    assert {(c.username, c.path) for c in plan.add_members} == {
        (name, path) for name, paths in desired.memberships.items() for path in paths
    }
    granted = {(c.path, c.client_id): c.add for c in plan.role_changes}
    assert granted[(EU_A, "psr")] == {"report-viewer", "report-requester"}
    assert all(not c.remove for c in plan.role_changes)
    assert not plan.logouts and not plan.delete_groups and not plan.remove_members


def test_lc_1_membership_removal_logs_the_user_out() -> None:
    """LC-1: a revoked membership leaves the group and ends the person's sessions."""
    before = project(world(PEOPLE), CATALOGUE)
    after = project(world({**PEOPLE, "ada": [end_user(ORG_B, "billing")]}), CATALOGUE)
    plan = diff(after, as_actual(before))
    # ada was the only UGA of the group: the leaf goes, with her membership, and she is logged out.
    assert plan.delete_groups == (UGA_A,)
    assert plan.logouts == ("ada",)
    assert not plan.add_members and not plan.create_groups


def test_lc_1_removal_from_a_shared_group_removes_the_membership() -> None:
    people = {**PEOPLE, "bob": [end_user(ORG_A, "billing")]}
    before = project(world(people), CATALOGUE)
    after = project(world({**people, "eve": []}), CATALOGUE)
    plan = diff(after, as_actual(before))
    assert plan.remove_members == (MemberChange("eve", EU_A),)
    assert plan.logouts == ("eve",)
    assert not plan.delete_groups


def test_removing_the_last_member_of_an_organization_deletes_only_the_topmost_group() -> None:
    before = project(world(PEOPLE), CATALOGUE)
    after = project(world({"eve": PEOPLE["eve"], "sam": PEOPLE["sam"]}), CATALOGUE)
    plan = diff(after, as_actual(before))
    assert set(plan.delete_groups) == {
        f"/iacs/{ORG_B}",
        f"/iacs/{ORG_A}/billing/user-group-administrator",
        "/iacs/sug-acme",
    }
    assert set(plan.logouts) == {"ada", "sue"}
    assert not plan.remove_members  # they leave with the deleted groups


def test_a_grant_taken_away_by_the_catalogue_logs_the_members_out() -> None:
    desired = project(world(PEOPLE), CATALOGUE)
    actual = as_actual(desired)
    group = actual.groups[EU_A]
    tampered = dataclasses.replace(
        group, client_roles={**group.client_roles, "psr": frozenset({"report-viewer"})}
    )
    plan = diff(desired, dataclasses.replace(actual, groups={**actual.groups, EU_A: tampered}))
    assert plan.role_changes == (
        RoleMappingChange(EU_A, "psr", add=frozenset({"report-requester"})),
    )
    assert plan.logouts == ()  # gaining a role is no revocation

    plan = diff(
        dataclasses.replace(
            desired,
            groups={
                **desired.groups,
                EU_A: dataclasses.replace(
                    desired.groups[EU_A],
                    client_roles={
                        **desired.groups[EU_A].client_roles,
                        "psr": frozenset({"report-viewer"}),
                    },
                ),
            },
        ),
        actual,
    )
    assert plan.role_changes == (
        RoleMappingChange(EU_A, "psr", remove=frozenset({"report-requester"})),
    )
    assert plan.logouts == ("eve",)


def test_lc_1_a_revoked_surrogate_association_updates_the_attribute_and_logs_out() -> None:
    """LC-1: a SUG losing a provider association narrows its affiliation: members re-login."""
    from .factories import org, surrogate_group, user_group

    before = project(world(PEOPLE), CATALOGUE)
    after = project(
        world(
            PEOPLE,
            organizations=[org(ORG_A), org(ORG_B)],
            user_groups=[user_group(ORG_A, "billing"), user_group(ORG_B, "billing")],
            surrogate_groups=[surrogate_group("acme", ORG_A)],
        ),
        CATALOGUE,
    )
    plan = diff(after, as_actual(before))
    assert [u.path for u in plan.update_attributes] == ["/iacs/sug-acme/end-user"]
    new = json.loads(plan.update_attributes[0].attributes[affiliation_attribute("psr")][0])
    assert new["organizations"] == [ORG_A]
    assert plan.logouts == ("sue",)


def test_foreign_attributes_and_members_of_intermediate_groups_are_cleaned_up() -> None:
    desired = project(world(PEOPLE), CATALOGUE)
    actual = as_actual(desired)
    top = dataclasses.replace(actual.groups[TOP_PATH], attributes={"note": ("hand-made",)})
    actual = dataclasses.replace(
        actual,
        groups={**actual.groups, TOP_PATH: top},
        members={**actual.members, f"/iacs/{ORG_A}": frozenset({"mallory"})},
    )
    plan = diff(desired, actual)
    assert [(u.path, dict(u.attributes)) for u in plan.update_attributes] == [(TOP_PATH, {})]
    assert plan.remove_members == (MemberChange("mallory", f"/iacs/{ORG_A}"),)
    assert plan.logouts == ("mallory",)


def test_roles_of_clients_outside_the_catalogue_are_left_alone() -> None:
    desired = project(world(PEOPLE), CATALOGUE)
    actual = as_actual(desired)
    group = actual.groups[EU_A]
    other = dataclasses.replace(
        group, client_roles={**group.client_roles, "other-app": frozenset({"x"})}
    )
    assert diff(
        desired, dataclasses.replace(actual, groups={**actual.groups, EU_A: other})
    ).is_empty
