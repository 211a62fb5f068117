"""The drift check's view of Keycloak: a long read with the worker's own writes replayed on top."""

from __future__ import annotations

from sync.apply import ApplyReport
from sync.model import ActualGroup, ActualState, DesiredGroup, MemberChange, Plan
from sync.reconcile import Written, overlay

ORG = "/iacs/org-1"
EU = f"{ORG}/billing/end-user"
UGA = f"{ORG}/billing/user-group-administrator"
NEW = f"{ORG}/claims/end-user"


def _state(groups: dict[str, str], members: dict[str, set[str]]) -> ActualState:
    return ActualState(
        groups={path: ActualGroup(id=group_id, path=path) for path, group_id in groups.items()},
        members={path: frozenset(names) for path, names in members.items()},
    )


def test_members_written_meanwhile_are_replayed_and_drift_in_the_same_group_kept() -> None:
    read = _state({ORG: "o", EU: "e"}, {EU: {"eve"}})  # cal was removed by hand before the read
    known = _state({ORG: "o", EU: "e"}, {EU: {"bob", "cal"}})
    written = Written()
    plan = Plan(add_members=(MemberChange("bob", EU),), remove_members=(MemberChange("eve", EU),))
    written.record(plan, ApplyReport())
    assert overlay(read, known, written).members == {EU: {"bob"}}


def test_a_user_keycloak_lacked_is_not_counted_as_added() -> None:
    read = _state({EU: "e"}, {})
    written = Written()
    written.record(Plan(add_members=(MemberChange("ann", EU),)), ApplyReport(missing_users=["ann"]))
    assert overlay(read, read, written).members == {}


def test_groups_created_or_deleted_meanwhile_come_from_the_workers_state() -> None:
    read = _state({ORG: "o", EU: "e", UGA: "u"}, {EU: {"eve"}, UGA: {"ada"}})
    known = _state({ORG: "o", EU: "e", NEW: "n"}, {EU: {"eve"}, NEW: {"nia"}})
    written = Written()
    plan = Plan(
        create_groups=(DesiredGroup(path=NEW),),
        add_members=(MemberChange("nia", NEW),),
        delete_groups=(f"{ORG}/billing/user-group-administrator",),
    )
    written.record(plan, ApplyReport())
    seen = overlay(read, known, written)
    assert set(seen.groups) == {ORG, EU, NEW}
    assert seen.members == {EU: {"eve"}, NEW: {"nia"}}


def test_a_group_deleted_and_created_again_keeps_none_of_the_old_members() -> None:
    read = _state({EU: "old"}, {EU: {"eve", "cal"}})
    known = _state({EU: "new"}, {EU: {"bob"}})
    written = Written()
    written.record(Plan(delete_groups=(EU,)), ApplyReport())
    written.record(
        Plan(create_groups=(DesiredGroup(path=EU),), add_members=(MemberChange("bob", EU),)),
        ApplyReport(),
    )
    seen = overlay(read, known, written)
    assert seen.groups[EU].id == "new"
    assert seen.members == {EU: {"bob"}}
