"""Requests with their single decision (DEC-3), and the append-only audit record (AUD-1)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

import ldap3
import pytest

from iacs.directory import AlreadyDecided, AlreadyExists, InvalidEntry, NotFound
from iacs.domain import EndReason, RequestKind, RequestStatus

from .factories import NOW, a_request, an_audit_record

pytestmark = pytest.mark.servers


def test_request_round_trip(directory):
    request = a_request(
        status=RequestStatus.APPROVED,
        decided_by="bob",
        decided_at=NOW + timedelta(hours=1),
        reason="ok",
        ended_at=NOW + timedelta(days=2),
        end_reason=EndReason.RESIGNED,
        recertified_at=NOW + timedelta(days=1),
        surrogate_group_id="acme",
    )
    directory.add_request(request)
    assert directory.get_request(request.id) == request
    minimal = a_request(details={}, organization_id="", group_id="")
    directory.add_request(minimal)
    assert directory.get_request(minimal.id) == minimal
    assert directory.get_request("no-such-request") is None
    with pytest.raises(AlreadyExists):
        directory.add_request(minimal)


def test_invalid_requests_are_refused_before_writing(directory):
    with pytest.raises(InvalidEntry):
        directory.add_request(a_request(kind="make_me_admin"))
    with pytest.raises(InvalidEntry):
        directory.add_request(a_request(requester=""))


def test_find_requests_by_every_criterion(directory):
    mine = a_request("alice", created_at=NOW)
    other_group = a_request("alice", group_id="admissions", created_at=NOW + timedelta(seconds=1))
    bob = a_request(
        "bob",
        kind=RequestKind.BACKUP_SECURITY_OFFICIAL,
        group_id="",
        expires_at=NOW + timedelta(days=1),
        created_at=NOW + timedelta(seconds=2),
    )
    for request in (mine, other_group, bob):
        directory.add_request(request)
    directory.decide_request(
        bob.id, new_status=RequestStatus.APPROVED, decided_by="carol", decided_at=NOW
    )

    def ids(**criteria):
        return [request.id for request in directory.find_requests(**criteria)]

    assert ids() == [mine.id, other_group.id, bob.id]
    assert ids(requester="alice") == [mine.id, other_group.id]
    assert ids(status=RequestStatus.PENDING) == [mine.id, other_group.id]
    assert ids(status=[RequestStatus.APPROVED, RequestStatus.REJECTED]) == [bob.id]
    assert ids(kind=RequestKind.BACKUP_SECURITY_OFFICIAL) == [bob.id]
    assert ids(organization_id="org-123456789", group_id="billing") == [mine.id]
    assert ids(surrogate_group_id="acme") == []
    assert ids(expires_before=NOW + timedelta(days=2)) == [bob.id]
    assert ids(ended=False, status=RequestStatus.APPROVED) == [bob.id]
    directory.end_membership_record(bob.id, NOW + timedelta(days=3), EndReason.REVOKED)
    assert ids(ended=True) == [bob.id]
    assert len(directory.find_requests(limit=2)) == 2


def test_dec_3_a_decision_is_one_compare_and_swap(directory):
    request = a_request()
    directory.add_request(request)
    directory.decide_request(
        request.id,
        new_status=RequestStatus.REJECTED,
        decided_by="bob",
        decided_at=NOW,
        reason="not on staff",
    )
    with pytest.raises(AlreadyDecided):
        directory.decide_request(
            request.id, new_status=RequestStatus.APPROVED, decided_by="carol", decided_at=NOW
        )
    stored = directory.get_request(request.id)
    assert (stored.status, stored.decided_by, stored.reason) == (
        RequestStatus.REJECTED,
        "bob",
        "not on staff",
    )
    with pytest.raises(NotFound):
        directory.decide_request(
            "missing", new_status=RequestStatus.APPROVED, decided_by="bob", decided_at=NOW
        )
    with pytest.raises(InvalidEntry):
        directory.decide_request(
            request.id, new_status=RequestStatus.PENDING, decided_by="bob", decided_at=NOW
        )


def test_dec_3_concurrent_decisions_exactly_one_wins(directory):
    request = a_request()
    directory.add_request(request)
    barrier = threading.Barrier(8)

    def decide(number: int) -> str:
        outcome = RequestStatus.APPROVED if number % 2 else RequestStatus.REJECTED
        barrier.wait()
        try:
            directory.decide_request(
                request.id,
                new_status=outcome,
                decided_by=f"approver-{number}",
                decided_at=NOW + timedelta(seconds=number),
                reason=f"decided by {number}",
            )
        except AlreadyDecided:
            return "refused"
        return f"approver-{number}"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(decide, range(8)))

    winners = [outcome for outcome in outcomes if outcome != "refused"]
    assert len(winners) == 1
    stored = directory.get_request(request.id)
    assert stored.decided_by == winners[0]
    assert stored.reason == f"decided by {winners[0].split('-')[1]}"


def test_dec_3_a_second_identical_decision_is_refused(directory):
    """Two attempts never merge, even by the same person at the same instant (a double click)."""
    request = a_request()
    directory.add_request(request)
    decision = dict(new_status=RequestStatus.APPROVED, decided_by="bob", decided_at=NOW)
    directory.decide_request(request.id, **decision)
    with pytest.raises(AlreadyDecided):
        directory.decide_request(request.id, **decision)


def test_dec_3_a_resent_attempt_that_had_landed_counts_as_done(directory, monkeypatch):
    """The pool resends a modify after a dropped connection; the attempt's own id recognises it."""
    import uuid

    from iacs.directory import records

    request = a_request()
    directory.add_request(request)
    same_attempt = uuid.uuid4()
    monkeypatch.setattr(records.uuid, "uuid4", lambda: same_attempt)
    decision = dict(new_status=RequestStatus.APPROVED, decided_by="bob", decided_at=NOW)
    directory.decide_request(request.id, **decision)
    directory.decide_request(request.id, **decision)  # the same attempt, sent again
    assert directory.get_request(request.id).status is RequestStatus.APPROVED


def test_lifecycle_fields(directory):
    request = a_request(status=RequestStatus.APPROVED, decided_by="bob", decided_at=NOW)
    directory.add_request(request)
    directory.set_recertified(request.id, NOW + timedelta(days=365))
    directory.end_membership_record(
        request.id, ended_at=NOW + timedelta(days=400), reason=EndReason.LAPSED
    )
    assert directory.get_request(request.id) == replace(
        request,
        recertified_at=NOW + timedelta(days=365),
        ended_at=NOW + timedelta(days=400),
        end_reason=EndReason.LAPSED,
    )


def test_audit_is_found_newest_first(directory):
    records = [an_audit_record(at=NOW + timedelta(minutes=index)) for index in range(5)]
    other_org = an_audit_record(organization_id="org-987654321", actor="carol")
    for record in [*records, other_org]:
        directory.append_audit(record)
    assert directory.find_audit("org-123456789") == list(reversed(records))
    assert directory.find_audit("org-123456789", limit=2) == [records[4], records[3]]
    assert directory.find_audit(actor="carol") == [other_org]
    assert directory.find_audit(since=NOW + timedelta(minutes=3)) == [records[4], records[3]]
    assert directory.find_audit(request_id=records[0].request_id) == [records[0]]
    assert len(directory.find_audit()) == 6


def test_aud_1_audit_is_append_only_for_the_portal(directory, ldap_settings, ldap_connect):
    record = an_audit_record(subject="", detail="approved")
    directory.append_audit(record)
    portal = ldap_connect(
        ldap_settings.portal_bind_dn, ldap_settings.portal_bind_password.get_secret_value()
    )
    dn = directory.tree.audit_record(record.id)
    tampering = [
        {"iacsOutcome": [(ldap3.MODIFY_REPLACE, ["denied"])]},
        {"iacsSubject": [(ldap3.MODIFY_ADD, ["mallory"])]},  # adding a value that was absent
        {"iacsDetail": [(ldap3.MODIFY_DELETE, [])]},
        {"iacsDetail": [(ldap3.MODIFY_DELETE, ["approved"])]},
    ]
    for changes in tampering:
        portal.modify(dn, changes)
        assert portal.result["result"] == 50, (changes, portal.result)
    portal.delete(dn)
    assert portal.result["result"] == 50
    portal.modify_dn(dn, "iacsAuditId=renamed")
    assert portal.result["result"] == 50
    portal.delete(directory.tree.audit)
    assert portal.result["result"] == 50
    assert directory.find_audit(request_id=record.request_id) == [record]
    # ...while adding records keeps working, and they can be read back.
    directory.append_audit(an_audit_record())
    assert len(directory.find_audit()) == 2
