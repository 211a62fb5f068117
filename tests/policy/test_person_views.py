"""Table tests of who sees whom (issue 9): ``may_view_person``, ``may_view_membership``,
``may_withdraw``. Every actor of the policy table is listed for every target, so a new actor
shows up as a missing row, not a silent pass."""

from __future__ import annotations

from dataclasses import replace

import pytest

from iacs import policy
from iacs.domain import Membership, RequestKind, RequestStatus, Role, ScopeKind
from tests.policy.test_policy_table import (
    ACTORS,
    GROUP_A1,
    GROUP_A2,
    ORG_A,
    SUG,
    SUG_ACTIVE,
    make_request,
)

PEOPLE: dict[str, frozenset[Membership]] = {
    "so_of_a": frozenset({Membership(Role.SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, ORG_A)}),
    "eu_of_a1": frozenset({Membership(Role.END_USER, ScopeKind.USER_GROUP, GROUP_A1, ORG_A)}),
    "eu_of_a2": frozenset({Membership(Role.END_USER, ScopeKind.USER_GROUP, GROUP_A2, ORG_A)}),
    "eu_of_sug": frozenset({Membership(Role.END_USER, ScopeKind.SURROGATE_GROUP, SUG)}),
    "nobody": frozenset(),
}

VIEWERS: dict[str, set[str]] = {
    "so_of_a": {"help_desk", "so_a", "bso_a"},
    "eu_of_a1": {"help_desk", "so_a", "bso_a", "uga_a1"},
    "eu_of_a2": {"help_desk", "so_a", "bso_a", "uga_a2"},
    "eu_of_sug": {"help_desk", "sug_uga"},
    "nobody": {"help_desk"},
}


@pytest.mark.parametrize(("target", "actor"), [(t, a) for t in PEOPLE for a in ACTORS if a != t])
def test_aud_2_officials_see_the_people_of_their_scope_only(target: str, actor: str) -> None:
    decision = policy.may_view_person(policy.Actor(actor, ACTORS[actor]), target, PEOPLE[target])
    assert decision.allowed is (actor in VIEWERS[target]), decision


@pytest.mark.parametrize("target", list(PEOPLE))
def test_aud_2_everyone_sees_their_own_person_page(target: str) -> None:
    assert policy.may_view_person(policy.Actor(target), target, PEOPLE[target]).allowed


def test_dec_2_an_official_sees_the_person_asking_them_something() -> None:
    so_b = policy.Actor("so_b", ACTORS["so_b"])
    assert not policy.may_view_person(so_b, "nobody", PEOPLE["nobody"]).allowed
    assert policy.may_view_person(so_b, "nobody", PEOPLE["nobody"], requests_in_view=1).allowed


def test_aud_2_an_official_sees_only_the_roles_within_their_scope() -> None:
    uga = policy.Actor("uga_a1", ACTORS["uga_a1"])
    in_group = Membership(Role.END_USER, ScopeKind.USER_GROUP, GROUP_A1, ORG_A)
    other_group = Membership(Role.END_USER, ScopeKind.USER_GROUP, GROUP_A2, ORG_A)
    assert policy.may_view_membership(uga, in_group).allowed
    assert not policy.may_view_membership(uga, other_group).allowed
    so_b = policy.Actor("so_b", ACTORS["so_b"])
    assert not policy.may_view_membership(so_b, in_group).allowed


def test_dec_1_only_the_requester_withdraws_a_pending_request() -> None:
    pending = make_request(RequestKind.END_USER)
    requester = policy.Actor(pending.requester)
    assert policy.may_withdraw(requester, pending).allowed
    for name, memberships in ACTORS.items():
        assert not policy.may_withdraw(policy.Actor(name, memberships), pending).allowed


@pytest.mark.parametrize("status", [s for s in RequestStatus if s is not RequestStatus.PENDING])
def test_dec_3_a_decided_request_cannot_be_withdrawn(status: RequestStatus) -> None:
    decided = replace(make_request(RequestKind.END_USER), status=status)
    decision = policy.may_withdraw(policy.Actor(decided.requester), decided)
    assert not decision.allowed and decision.kind is policy.Refusal.CONFLICT


@pytest.mark.parametrize("actor", list(ACTORS))
def test_org_3_only_the_help_desk_reaches_the_console(actor: str) -> None:
    """The help-desk console (its search included) is asked of the policy, for every actor."""
    decision = policy.may_use_help_desk_console(policy.Actor(actor, ACTORS[actor]))
    assert decision.allowed is (actor == "help_desk")
    assert decision.rule == "ORG-3"


SUG_VIEWERS = {"help_desk", "so_a", "bso_a", "sug_uga", "sug_eu"}


@pytest.mark.parametrize("actor", list(ACTORS))
def test_sug_2_a_surrogate_group_is_seen_by_its_members_the_providers_it_serves_and_the_help_desk(
    actor: str,
) -> None:
    """Officials of an organization it does not serve (ORG B), and the provider's UGAs and End
    Users, learn nothing of it."""
    decision = policy.may_view_surrogate_group(policy.Actor(actor, ACTORS[actor]), SUG_ACTIVE)
    assert decision.allowed is (actor in SUG_VIEWERS), decision.reason
