"""The projection applied to a real Keycloak: creation, idempotence, revocation (LC-1)."""

from __future__ import annotations

import json

import pytest

from iacs.catalogue import load_catalogue
from sync.keycloak_state import read_actual
from sync.model import TOP_PATH, affiliation_attribute
from sync.reconcile import reconcile

from .factories import ORG_A, ORG_B, end_user, security_official, surrogate_end_user, uga, world

pytestmark = pytest.mark.servers
CATALOGUE = load_catalogue()
EU_A = f"/iacs/{ORG_A}/billing/end-user"

PEOPLE = {
    "eve": [end_user(ORG_A, "billing")],
    "ada": [uga(ORG_A, "billing"), end_user(ORG_B, "billing")],
    "sam": [security_official(ORG_A)],
    "sue": [surrogate_end_user("acme"), end_user(ORG_B, "billing")],
}


def test_fresh_realm_gets_every_group_role_and_membership(gateway, make_users) -> None:
    make_users(*PEOPLE)
    other = gateway.admin.create_group({"name": "not-managed"})
    result = reconcile(gateway, world(PEOPLE), CATALOGUE)
    assert result.report.problems == [] and result.report.missing_users == []

    actual = read_actual(gateway)
    assert set(actual.groups) == set(result.desired.groups)
    assert {p: set(m) for p, m in actual.members.items()} == {
        p: set(m) for p, m in result.desired.members_of().items()
    }
    eu = actual.groups[EU_A]
    assert eu.client_roles["psr"] == {"report-viewer", "report-requester"}
    claim = json.loads(eu.attributes[affiliation_attribute("psr")][0])
    assert claim["organization"] == ORG_A and claim["surrogate"] is False
    assert gateway.admin.get_group(other)["name"] == "not-managed"  # outside /iacs: untouched


def test_second_sync_writes_nothing(gateway, make_users) -> None:
    """Idempotent by construction: the second run plans nothing and makes 0 admin-API writes."""
    make_users(*PEOPLE)
    first = reconcile(gateway, world(PEOPLE), CATALOGUE)
    assert first.report.total_writes > 0
    writes_before = gateway.total_writes
    second = reconcile(gateway, world(PEOPLE), CATALOGUE)
    assert second.plan.is_empty
    assert second.report.total_writes == 0
    assert gateway.total_writes == writes_before


def test_state_after_an_apply_is_what_keycloak_then_reports(gateway, make_users) -> None:
    """The worker's incremental runs diff against ``after``: it must equal a fresh read."""
    make_users(*PEOPLE)
    reconcile(gateway, world(PEOPLE), CATALOGUE)
    changed = {**PEOPLE, "eve": [], "ada": [end_user(ORG_A, "billing")]}
    result = reconcile(gateway, world(changed), CATALOGUE)
    fresh = read_actual(gateway)
    assert {p: g.id for p, g in fresh.groups.items()} == {
        p: g.id for p, g in result.after.groups.items()
    }
    assert fresh.members == result.after.members
    assert all(
        dict(fresh.groups[p].attributes) == dict(g.attributes)
        and dict(fresh.groups[p].client_roles) == dict(g.client_roles)
        for p, g in result.after.groups.items()
    )
    assert reconcile(gateway, world(changed), CATALOGUE, actual=result.after).plan.is_empty


def test_user_absent_from_keycloak_is_skipped_and_reported(gateway, make_users) -> None:
    make_users("eve")
    result = reconcile(gateway, world({"eve": PEOPLE["eve"], "ghost": PEOPLE["eve"]}), CATALOGUE)
    assert result.report.missing_users == ["ghost"]
    assert read_actual(gateway).members[EU_A] == {"eve"}


def test_removed_memberships_and_emptied_groups_go(gateway, make_users) -> None:
    make_users(*PEOPLE)
    reconcile(gateway, world(PEOPLE), CATALOGUE)
    result = reconcile(gateway, world({"eve": PEOPLE["eve"]}), CATALOGUE)
    assert set(result.plan.logouts) == {"ada", "sam", "sue"}
    actual = read_actual(gateway)
    assert set(actual.groups) == {TOP_PATH, f"/iacs/{ORG_A}", f"/iacs/{ORG_A}/billing", EU_A}
    assert actual.members == {EU_A: {"eve"}}


def test_lc_1_revocation_refuses_refresh_token(gateway, make_users, login, refresh) -> None:
    """LC-1: once a revoked membership is synced, the person's refresh token is refused."""
    make_users("eve", "bob")
    people = {"eve": PEOPLE["eve"], "bob": PEOPLE["eve"]}
    reconcile(gateway, world(people), CATALOGUE)
    eve, bob = login("eve"), login("bob")
    assert refresh(eve["refresh_token"]).status_code == 200

    result = reconcile(gateway, world({**people, "eve": []}), CATALOGUE)
    assert result.plan.logouts == ("eve",)

    refused = refresh(eve["refresh_token"])
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    assert refresh(bob["refresh_token"]).status_code == 200  # nobody else is logged out


def test_read_is_complete_even_when_the_group_search_returns_only_part(gateway, make_users) -> None:
    """The subGroupCount check fetches whatever the flat search left out (pages shifted, or a
    server whose search does not treat % as a wildcard)."""
    make_users(*PEOPLE)
    reconcile(gateway, world(PEOPLE), CATALOGUE)
    complete = read_actual(gateway)

    class PartialSearch(type(gateway)):
        def get(self, path, **params):
            found = super().get(path, **params)
            if path == "groups" and params.get("search") == "%":
                return [node for node in found if node["path"].count("/") < 2]
            return found

    partial = PartialSearch(gateway.admin, workers=2)
    assert read_actual(partial).groups.keys() == complete.groups.keys()
    assert read_actual(partial).members == complete.members
