"""DEC-4: an approval grants fully or changes nothing; cut-short approvals finish by themselves.

Against the session's real slapd. The "process died after the compare-and-swap" state is made
exactly as a crash leaves it: the decision's own modify (status and marker) without the writes
after it.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import ldap3
import pytest

from iacs.directory import Directory
from iacs.domain import Membership, RequestStatus, Role, ScopeKind
from iacs.enrollment import FileEnrollmentSource
from iacs.service import AccessService, Conflict, RuleRefused
from iacs.settings import Settings
from iacs.wiring import ApprovalRecovery, build_service

from .conftest import ORG_ID, World

UGA_BILLING = Membership(Role.USER_GROUP_ADMINISTRATOR, ScopeKind.USER_GROUP, "billing", ORG_ID)
BSO = Membership(Role.BACKUP_SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, ORG_ID)


def _audit(world: World, request_id: str) -> list[tuple[str, str, str]]:
    return sorted(
        (r.actor, r.action, r.outcome) for r in world.root.find_audit(request_id=request_id)
    )


def _crashed_after_the_swap(directory: Directory, request_id: str, decider: str) -> None:
    """What a portal process killed right after the decision's modify leaves behind."""
    directory.decide_request(
        request_id,
        new_status=RequestStatus.APPROVED,
        decided_by=decider,
        decided_at=datetime.now(UTC) - timedelta(seconds=30),
        grant_pending=True,
    )


def test_dec_4_approving_a_join_request_whose_group_was_rejected_changes_nothing(world: World):
    """The group a UGA asked to join was rejected: the join request is closed with the
    reason, a later approval is refused, and nobody gets a membership."""
    world.people("sofia", "uma", "ugo")
    world.organization()
    service = world.service
    creator = service.request_user_group_administrator("uma", ORG_ID, group_name="Billing")
    joiner = service.request_user_group_administrator("ugo", ORG_ID, group_id="billing")
    service.decide("sofia", creator.id, approve=False, reason="no such department")

    closed = service.directory.get_request(joiner.id)
    assert closed.status is RequestStatus.REJECTED and closed.decided_by == "system"
    assert "not approved" in closed.reason
    with pytest.raises(Conflict) as refused:
        service.decide("sofia", joiner.id, approve=True)
    assert refused.value.code == "already_decided"
    assert service.directory.get_user_group(ORG_ID, "billing") is None
    assert UGA_BILLING not in service.directory.memberships_of("ugo")
    assert service.run_maintenance().problems == []


def test_dec_4_requests_of_a_rejected_organization_cannot_be_approved_after_it_registers_anew(
    world: World,
):
    """The organization a BSO and a UGA request named was rejected and registered anew by
    someone else: the old requests were closed with it and cannot be approved in the new one."""
    world.people("sofia", "ben", "uma", "carl")
    service = world.service
    first = service.register_organization(
        "sofia", name="Lakeside", identifier="123456789", provider_type="hospital"
    )
    bso = service.request_backup_security_official("ben", ORG_ID)
    uga = service.request_user_group_administrator("uma", ORG_ID, group_name="Billing")
    service.decide("helpdesk", first.id, approve=False, reason="not a real hospital")
    for request in (bso, uga):
        closed = service.directory.get_request(request.id)
        assert (closed.status, closed.decided_by) == (RequestStatus.REJECTED, "system")
        assert ("system", "close", "ok") in _audit(world, request.id)

    world.organization("carl")  # the same identifier, registered anew and approved
    for request in (bso, uga):
        with pytest.raises(Conflict) as refused:
            service.decide("carl", request.id, approve=True)
        assert refused.value.code == "already_decided"
    assert service.directory.memberships_of("ben") == frozenset()
    assert service.directory.memberships_of("uma") == frozenset()
    assert service.run_maintenance().problems == []


def test_sec_approving_a_request_whose_target_has_gone_changes_nothing(world: World):
    """DEC-4: A group removed behind the service's back (an operator, a half-done rejection): the
    approval is refused with 422 ``target_gone`` before anything is written; the request stays
    pending and can still be rejected."""
    world.people("sofia", "uma", "ugo")
    world.organization()
    service = world.service
    service.request_user_group_administrator("uma", ORG_ID, group_name="Billing")
    joiner = service.request_user_group_administrator("ugo", ORG_ID, group_id="billing")
    world.root.delete_user_group(ORG_ID, "billing")

    with pytest.raises(RuleRefused) as refused:
        service.decide("sofia", joiner.id, approve=True)
    assert refused.value.code == "target_gone"  # the portal answers 422 (RuleRefused)
    assert "Nothing was changed" in refused.value.message
    after = service.directory.get_request(joiner.id)
    assert after.status is RequestStatus.PENDING and after.grant_pending_since is None
    assert service.directory.memberships_of("ugo") == frozenset()
    report = service.run_maintenance()  # the operator's pass closes what can never be granted
    assert (report.closed, report.problems) == (2, [])  # the group's creator's and the joiner's
    closed = service.directory.get_request(joiner.id)
    assert (closed.status, closed.decided_by) == (RequestStatus.REJECTED, "system")
    assert "no longer exists" in closed.reason


class _GroupVanishesAtTheGrant:
    """The portal's directory, where a concurrent rejection removes the group just as the
    grant writes the membership (the delete is real, in slapd, by the root account)."""

    def __init__(self, directory: Directory, root: Directory) -> None:
        self._directory = directory
        self._root = root

    def __getattr__(self, name: str):
        return getattr(self._directory, name)

    def add_member(self, membership: Membership, username: str) -> None:
        self._root.delete_user_group(membership.organization_id, membership.scope_id)
        self._directory.add_member(membership, username)


def test_dec_4_a_target_that_goes_during_the_grant_is_undone(world: World):
    world.people("sofia", "uma", "ugo")
    world.organization()
    world.service.request_user_group_administrator("uma", ORG_ID, group_name="Billing")
    joiner = world.service.request_user_group_administrator("ugo", ORG_ID, group_id="billing")
    racing = AccessService(
        _GroupVanishesAtTheGrant(world.service.directory, world.root), FileEnrollmentSource()
    )
    with pytest.raises(RuleRefused) as refused:
        racing.decide("sofia", joiner.id, approve=True)
    assert refused.value.code == "target_gone"
    after = world.service.directory.get_request(joiner.id)
    assert (after.status, after.decided_by, after.grant_pending_since) == (
        RequestStatus.PENDING,
        "",
        None,
    )
    assert world.service.directory.memberships_of("ugo") == frozenset()


def test_dec_4_an_approval_cut_short_is_completed_once_by_several_recovery_passes(
    world: World, directory: Directory
):
    """Four portal processes run the recovery pass at once: the membership is written, the
    marker removed, and exactly one completion is recorded."""
    world.people("sofia", "ben")
    world.organization()
    request = world.service.request_backup_security_official("ben", ORG_ID)
    _crashed_after_the_swap(directory, request.id, "sofia")
    assert BSO not in directory.memberships_of("ben")

    services = [AccessService(directory, FileEnrollmentSource()) for _ in range(4)]
    start = threading.Barrier(len(services))
    results: list[tuple[int, int]] = []

    def recover(service: AccessService) -> None:
        start.wait()
        results.append(ApprovalRecovery(service, older_than=timedelta(seconds=5)).run_once())

    threads = [threading.Thread(target=recover, args=(s,)) for s in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(completed for completed, _ in results) == 1
    assert BSO in directory.memberships_of("ben")
    after = directory.get_request(request.id)
    assert after.status is RequestStatus.APPROVED and after.grant_pending_since is None
    assert _audit(world, request.id).count(("system", "complete_approval", "ok")) == 1
    assert world.service.recover_interrupted_approvals(timedelta(0)) == (0, 0)  # idempotent


def test_dec_4_a_fresh_marker_is_left_to_the_decision_in_flight(world: World, directory):
    world.people("sofia", "ben")
    world.organization()
    request = world.service.request_backup_security_official("ben", ORG_ID)
    directory.decide_request(
        request.id,
        new_status=RequestStatus.APPROVED,
        decided_by="sofia",
        decided_at=datetime.now(UTC),
        grant_pending=True,
    )
    assert world.service.recover_interrupted_approvals() == (0, 0)  # younger than the grace
    assert BSO not in directory.memberships_of("ben")


def test_dec_4_an_approval_cut_short_whose_target_went_is_put_back_to_pending(
    world: World, directory: Directory
):
    world.people("sofia", "uma", "ugo")
    world.organization()
    world.service.request_user_group_administrator("uma", ORG_ID, group_name="Billing")
    joiner = world.service.request_user_group_administrator("ugo", ORG_ID, group_id="billing")
    _crashed_after_the_swap(directory, joiner.id, "sofia")
    world.root.delete_user_group(ORG_ID, "billing")

    assert world.service.recover_interrupted_approvals() == (0, 1)
    after = directory.get_request(joiner.id)
    assert after.status is RequestStatus.PENDING and after.grant_pending_since is None
    assert ("system", "undo_approval", "ok") in _audit(world, joiner.id)
    assert directory.memberships_of("ugo") == frozenset()
    rejected = world.service.decide("sofia", joiner.id, approve=False, reason="group is gone")
    assert rejected.status is RequestStatus.REJECTED  # decidable again


def test_maintenance_handles_every_other_entry_when_one_is_corrupt_or_stuck(
    world: World, directory: Directory, slapd
):
    """A hand-edited request entry nobody can read, and an old approval whose group is gone
    (the state earlier versions left): both are reported, and the rest is maintained."""
    world.people("sofia", "ben", "uma", "eve")
    world.organization()
    service = world.service
    # Corrupt: a kind no version of the service knows.
    corrupt_dn = f"iacsRequestId=corrupt1,ou=requests,{slapd.base_dn}"
    world.root._pool.add(
        corrupt_dn,
        {
            "objectClass": ["iacsRequest"],
            "iacsRequestId": ["corrupt1"],
            "iacsRequestKind": ["teleport"],
            "iacsRequester": ["ben"],
            "iacsRequestStatus": ["approved"],
            "iacsCreatedAt": ["20250101000000Z"],
            "iacsExpiresAt": ["20250201000000Z"],
        },
    )
    # Stuck: approved (before the marker existed) for a group that no longer exists.
    service.request_user_group_administrator("uma", ORG_ID, group_name="Billing")
    uga = service.directory.find_requests(requester="uma")[0]
    directory.decide_request(
        uga.id, new_status=RequestStatus.APPROVED, decided_by="sofia", decided_at=datetime.now(UTC)
    )
    world.root.delete_user_group(ORG_ID, "billing")
    # Good ones: an old approval whose membership is missing, and an expired request.
    legacy = service.request_backup_security_official("ben", ORG_ID)
    directory.decide_request(
        legacy.id,
        new_status=RequestStatus.APPROVED,
        decided_by="sofia",
        decided_at=datetime.now(UTC),
    )
    expiring = AccessService(
        directory, FileEnrollmentSource(), clock=lambda: datetime.now(UTC) - timedelta(days=60)
    ).request_backup_security_official("eve", ORG_ID)

    report = service.run_maintenance()
    assert report.expired == 1 and report.completed == 1, str(report)
    assert BSO in directory.memberships_of("ben")
    assert directory.get_request(expiring.id).status is RequestStatus.EXPIRED
    assert len(report.problems) == 2, report.problems
    assert any("corrupt1" in problem for problem in report.problems)
    assert any(uga.id in problem for problem in report.problems)
    entries = world.root._pool.search(corrupt_dn, "(objectClass=*)", scope=ldap3.BASE)
    assert entries  # reported, never deleted by the service


def test_dec_4_the_portals_own_recovery_thread_finishes_a_cut_short_approval(
    world: World, directory: Directory, ldap_settings
):
    """``build_service(recover=True)``, as each portal process builds it, completes the
    approval by itself: nobody runs maintenance."""
    world.people("sofia", "ben")
    world.organization()
    request = world.service.request_backup_security_official("ben", ORG_ID)
    _crashed_after_the_swap(directory, request.id, "sofia")
    before = set(threading.enumerate())  # another test's recovery thread may still be ending
    service = build_service(Settings(ldap=ldap_settings), directory=directory, recover=True)
    try:
        assert "approval-recovery" in {t.name for t in set(threading.enumerate()) - before}
        deadline = time.monotonic() + 60
        while directory.get_request(request.id).grant_pending_since is not None:
            assert time.monotonic() < deadline, "the portal's recovery thread did not finish it"
            time.sleep(0.1)
    finally:
        service.recovery.stop()
    assert BSO in directory.memberships_of("ben")
    assert ("system", "complete_approval", "ok") in _audit(world, request.id)
