"""DEC-4 across a crash: slapd is SIGKILLed while a burst of approvals is in flight.

The module starts its OWN durable slapd on a fixed port (``iacs.stack.slapd.start_slapd``), so
it can kill it and start it again on the same data directory without disturbing the session's
server. Every approval is made through ``AccessService.decide`` from a thread of its own, as
the portal's threads would; slapd is killed as soon as the first approvals have landed. After
the restart, the portal's recovery thread (``iacs.wiring.ApprovalRecovery``, with a short grace
so the test need not wait) takes over. Conditions are polled, never slept on.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from iacs.directory import Directory
from iacs.domain import Membership, Person, RequestStatus, Role, ScopeKind
from iacs.enrollment import FileEnrollmentSource
from iacs.service import AccessService, ServiceError
from iacs.stack.process import free_port
from iacs.stack.slapd import SlapdInstance, start_slapd
from iacs.wiring import ApprovalRecovery

from .conftest import ORG_ID

BURST = 40
BSO = Membership(Role.BACKUP_SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, ORG_ID)
RECOVERY_SECONDS = 60.0
"""Deadline for the recovery after slapd is back (it takes a few seconds; the machine is slow)."""


@pytest.fixture(scope="module")
def own_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[SlapdInstance]]:
    """A durable slapd of this module (a one-item list: a restart replaces the instance)."""
    port = free_port()
    holder = [start_slapd(tmp_path_factory.mktemp("killed-slapd"), port=port, durable=True)]
    try:
        yield holder
    finally:
        holder[0].stop()


def _restart(holder: list[SlapdInstance]) -> None:
    old = holder[0]
    holder[0] = start_slapd(
        old.run_dir, port=old.port, durable=True, service_passwords=old.service_passwords
    )


def _root(instance: SlapdInstance) -> Directory:
    return Directory(
        instance.ldap_settings(), bind_dn=instance.root_dn, password=instance.root_password
    )


def test_sec_no_approval_without_its_grant_when_slapd_is_killed_mid_burst(
    own_slapd: list[SlapdInstance],
) -> None:
    """DEC-4: within seconds of slapd's restart every request is approved with its membership
    or pending (decidable), and no approver whose approval took effect was told otherwise."""
    instance = own_slapd[0]
    applicants = [f"bso{n:02d}" for n in range(BURST)]
    with _root(instance) as root:
        for username in ("helpdesk", "sofia", *applicants):
            root.add_person(Person(username, f"Test {username}", f"{username}@x.test"))
        root.add_member(Membership(Role.HELP_DESK, ScopeKind.SYSTEM), "helpdesk")

    landed = threading.Event()
    approvals = 0
    lock = threading.Lock()

    def counted() -> None:
        nonlocal approvals
        with lock:
            approvals += 1
            if approvals >= 3:
                landed.set()

    directory = Directory(instance.ldap_settings(timeout_seconds=3), "portal")
    service = AccessService(directory, FileEnrollmentSource(), on_change=counted)
    registration = service.register_organization(
        "sofia", name="Lakeside", identifier="123456789", provider_type="hospital"
    )
    service.decide("helpdesk", registration.id, approve=True)
    with lock:
        approvals = 0
    requests = {
        username: service.request_backup_security_official(username, ORG_ID).id
        for username in applicants
    }

    answers: dict[str, ServiceError | None] = {}
    go = threading.Barrier(BURST + 1)

    def approve(username: str) -> None:
        go.wait()
        try:
            service.decide("sofia", requests[username], approve=True)
            answers[username] = None
        except ServiceError as exc:
            answers[username] = exc

    threads = [threading.Thread(target=approve, args=(name,)) for name in applicants]
    for thread in threads:
        thread.start()
    go.wait()
    assert landed.wait(60), "no approval landed"
    os.kill(instance.process.process.pid, signal.SIGKILL)
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()
    failed = {name: exc for name, exc in answers.items() if exc is not None}
    assert failed, "slapd died after every approval was done: the test proved nothing"

    _restart(own_slapd)
    recovery = ApprovalRecovery(service, interval=0.2, older_than=timedelta(seconds=1)).start()
    try:
        with _root(own_slapd[0]) as root:
            deadline = time.monotonic() + RECOVERY_SECONDS
            while root.find_requests(status=RequestStatus.APPROVED, grant_pending_before=_far()):
                assert time.monotonic() < deadline, "approvals still marked after the deadline"
                time.sleep(0.2)
            holders = root.members_of(BSO)
            final = {name: root.get_request(requests[name]) for name in applicants}
    finally:
        recovery.stop()

    for name in applicants:
        request, answer = final[name], answers[name]
        if request.status is RequestStatus.APPROVED:
            assert name in holders, f"{name}: approved without its membership"
            if answer is not None:  # the approver was told the truth: it may have happened
                assert "nothing was changed" not in answer.message.lower(), answer.message
                assert answer.code in ("decision_outcome_unknown", "grant_pending"), answer.code
        else:
            assert request.status is RequestStatus.PENDING, (name, request.status)
            assert name not in holders, f"{name}: a membership without an approval (DEC-4)"
            assert answer is not None, f"{name}: told it was approved, but it is pending"
    # Whoever is still pending is decidable: the approver simply tries again.
    for name in applicants:
        if final[name].status is RequestStatus.PENDING:
            service.decide("sofia", requests[name], approve=True)
    with _root(own_slapd[0]) as root:
        assert root.members_of(BSO) == frozenset(applicants)
    assert service.run_maintenance().problems == []
    directory.close()


def _far() -> datetime:
    """A moment in the future: every marker is older than it."""
    return datetime.now(UTC) + timedelta(days=1)
