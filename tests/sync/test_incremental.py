"""Incremental runs give what a full projection and diff give, for random sequences of changes."""

from __future__ import annotations

import random

import pytest

from iacs.catalogue import load_catalogue
from sync.apply import ApplyReport
from sync.diff import diff
from sync.incremental import DesiredIndex, advance
from sync.project import project
from sync.reconcile import state_after

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
from .test_diff import as_actual

CATALOGUE = load_catalogue()
ORG_C = "org-333333333"  # still pending: its memberships are skipped, never projected
CHOICES = [
    help_desk(),
    security_official(ORG_A),
    backup_security_official(ORG_B),
    uga(ORG_A, "billing"),
    end_user(ORG_A, "billing"),
    end_user(ORG_B, "billing"),
    end_user(ORG_B, "claims"),
    surrogate_uga("acme"),
    surrogate_end_user("acme"),
    practitioner("1234567893"),
    security_official(ORG_C),
]
PEOPLE = [f"person{n}" for n in range(12)]


def _world(people: dict) -> object:
    return world(
        people,
        organizations=[org(ORG_A), org(ORG_B), org(ORG_C, status="pending")],
        user_groups=[
            user_group(ORG_A, "billing"),
            user_group(ORG_B, "billing"),
            user_group(ORG_B, "claims"),
        ],
        surrogate_groups=[surrogate_group("acme", ORG_A, ORG_B)],
    )


def _random_memberships(rng: random.Random) -> list:
    return rng.sample(CHOICES, rng.choice([0, 0, 1, 1, 2, 3]))


@pytest.mark.parametrize("seed", range(40))
def test_advance_equals_a_full_projection_and_its_scoped_diff_the_full_diff(seed: int) -> None:
    rng = random.Random(seed)
    people = {name: _random_memberships(rng) for name in PEOPLE}
    desired = project(_world(people), CATALOGUE)
    index = DesiredIndex.of(desired)
    for _ in range(15):
        touched = set(rng.sample(PEOPLE, rng.choice([1, 1, 2, 4])))
        for name in touched:
            people[name] = _random_memberships(rng)
        snapshot = _world(people)
        partial = project(_world({name: people[name] for name in touched}), CATALOGUE)
        before = as_actual(desired)

        advanced, scope = advance(desired, index, partial, {name.upper() for name in touched})
        full = project(snapshot, CATALOGUE)

        assert dict(advanced.groups) == dict(full.groups)
        assert dict(advanced.memberships) == dict(full.memberships)
        assert sorted(advanced.skipped, key=repr) == sorted(full.skipped, key=repr)
        rebuilt = DesiredIndex.of(full)
        assert index.members == rebuilt.members
        assert index.leaves_under == rebuilt.leaves_under
        scoped_plan = diff(advanced, before, scope=scope, members=index.members)
        assert scoped_plan == diff(full, before)
        report = ApplyReport(created={g.path: f"id-{g.path}" for g in scoped_plan.create_groups})
        scoped_after = state_after(advanced, before, report, scope=scope, members=index.members)
        full_after = state_after(full, before, report)
        assert dict(scoped_after.groups) == dict(full_after.groups)
        assert dict(scoped_after.members) == dict(full_after.members)
        desired = advanced


def test_a_person_keycloak_lacked_is_retried_when_touched_without_a_change() -> None:
    """The scope holds the touched person's leaves even when their memberships did not change."""
    people = {"eve": [end_user(ORG_A, "billing")]}
    desired = project(_world(people), CATALOGUE)
    index = DesiredIndex.of(desired)
    lacking = as_actual(desired)
    lacking = type(lacking)(groups=lacking.groups, members={}, user_ids={})
    _, scope = advance(desired, index, project(_world(people), CATALOGUE), {"eve"})
    plan = diff(desired, lacking, scope=scope, members=index.members)
    assert [(c.username, c.path) for c in plan.add_members] == [
        ("eve", f"/iacs/{ORG_A}/billing/end-user")
    ]
