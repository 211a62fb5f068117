"""The lifecycle that runs itself: LC-2 expiry, LC-3 reminders and lapses, on a schedule.

``Scheduler.tick`` is a step of the sync worker's loop (``sync.worker.SyncWorker``'s
``housekeeping``), so whatever gates the worker (one active instance) gates it too. Every
``interval`` it runs the passes of ``iacs maintenance`` that are safe beside live decisions
(expiry, orphans, lapses; see ``run``) and writes the reminders that are due; ``plan`` says
what the next run would do without doing it (``iacs maintenance --dry-run``). The clock is
injected: the tests move it by days.

Reminders are audit records (``remind``, actor ``system``) whose id is derived from the role,
its due date and the number of days before it, so a reminder is written once however often
the schedule runs; the notifier (``iacs.service.notifications``) turns each into e-mail for
those who may recertify the role. Further steps (inactivity, ``extra_steps``) are called after
the passes; each returns a line for the log.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from iacs import policy
from iacs.directory import AlreadyExists
from iacs.domain import AuditRecord, Request, RequestStatus
from iacs.service.access import AccessService
from iacs.service.base import MaintenanceReport, _directory_errors

log = logging.getLogger("iacs.schedule")


@dataclass(frozen=True, slots=True)
class Reminder:
    request: Request
    due: datetime
    days_before: int

    @property
    def audit_id(self) -> str:
        key = f"remind\0{self.request.id}\0{self.due.isoformat()}\0{self.days_before}"
        return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass
class SchedulePlan:
    """What a run at ``at`` would do."""

    at: datetime
    expire: list[Request] = field(default_factory=list)
    lapse: list[Request] = field(default_factory=list)
    remind: list[Reminder] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"at {self.at.isoformat(timespec='seconds')}: expire {len(self.expire)}, "
            f"lapse {len(self.lapse)}, remind {len(self.remind)}"
        ]
        lines += [
            f"  expire: request {r.id} ({r.kind.value}) of {r.requester}, "
            f"expired {r.expires_at.isoformat(timespec='seconds')}"
            for r in self.expire
        ]
        lines += [
            f"  lapse: {r.kind.value} of {r.requester} (request {r.id}), not recertified"
            for r in self.lapse
        ]
        lines += [
            f"  remind: {m.request.kind.value} of {m.request.requester} (request "
            f"{m.request.id}) due {m.due.date().isoformat()}, {m.days_before} days before"
            for m in self.remind
        ]
        lines += [f"  {line}" for line in self.extra]
        return "\n".join(lines)


class Scheduler:
    """Runs the lifecycle passes every ``interval`` (see the module)."""

    def __init__(
        self,
        service: AccessService,
        *,
        interval: timedelta = timedelta(hours=1),
        reminder_days: Sequence[int] = (30, 7),
        clock: Callable[[], datetime] | None = None,
        extra_steps: Sequence[Callable[[bool], str]] = (),
    ) -> None:
        self.service = service
        self.interval = interval
        self.reminder_days = sorted(set(reminder_days), reverse=True)
        self.clock = clock or service.clock
        self.extra_steps = list(extra_steps)
        """Called with ``dry_run``; e.g. ``iacs.service.lifecycle.disable_inactive``."""
        self._next: datetime | None = None

    def tick(self) -> MaintenanceReport | None:
        """The worker's step: a run when one is due, else nothing."""
        now = self.clock()
        if self._next is not None and now < self._next:
            return None
        self._next = now + self.interval
        report = self.run()
        log.info("scheduled lifecycle run", extra={"report": str(report)})
        return report

    def run(self) -> MaintenanceReport:
        """One run now: LC-2, orphans, LC-3, then the reminders, then the extra steps.

        Not all of ``iacs maintenance``: its recovery of approvals of any age, and its re-grant
        of approvals whose membership is missing, are safe only while nothing else decides (a
        re-grant racing a revocation would give the role back). The portal's own recovery
        thread finishes cut-short approvals; the operator runs the rest.
        """
        service = self.service
        report = MaintenanceReport()
        report.expired = service.expire_pending(report.problems)
        report.closed = service.close_orphaned_requests(report.problems)
        report.lapsed = service.lapse_unrecertified(report.problems)
        reminded = self.write_reminders()
        for step in self.extra_steps:
            log.info("scheduled step", extra={"result": step(False)})
        if reminded:
            log.info("certification reminders written", extra={"count": reminded})
        return report

    # -- what is due -------------------------------------------------------------------------

    def plan(self) -> SchedulePlan:
        """What ``run`` would do now, read only."""
        now = self.clock()
        service = self.service
        plan = SchedulePlan(at=now)
        with _directory_errors():
            pending = service.directory.find_requests(status=RequestStatus.PENDING)
            approved = service.directory.find_requests(status=RequestStatus.APPROVED)
        plan.expire = sorted(
            (r for r in pending if r.expires_at <= now), key=lambda r: r.expires_at
        )
        for request in approved:
            due = self._due(request)
            if due is None:
                continue
            if due <= now:
                plan.lapse.append(request)
        with _directory_errors():
            plan.remind = [
                reminder
                for reminder in self._reminders(approved, now)
                if service.directory.get_audit_record(reminder.audit_id) is None
            ]
        plan.extra = [step(True) for step in self.extra_steps]
        return plan

    def _due(self, request: Request) -> datetime | None:
        """When the role of an approved, current request must be recertified (LC-3)."""
        if request.ended_at is not None or policy.granted_membership(request) is None:
            return None
        since = request.recertified_at or request.decided_at or request.created_at
        return since + self.service.config.recertification_period

    def _reminders(self, approved: list[Request], now: datetime) -> list[Reminder]:
        """The reminder owed now for each role: the nearest threshold passed, before it lapses."""
        owed = []
        for request in approved:
            due = self._due(request)
            if due is None or due <= now:
                continue
            passed = [d for d in self.reminder_days if due - timedelta(days=d) <= now]
            if passed:
                owed.append(Reminder(request, due, min(passed)))
        return owed

    def write_reminders(self) -> int:
        """Write the reminder records that are due and not yet written; returns how many."""
        now = self.clock()
        with _directory_errors():
            approved = self.service.directory.find_requests(status=RequestStatus.APPROVED)
        written = 0
        for reminder in self._reminders(approved, now):
            request = reminder.request
            record = AuditRecord(
                id=reminder.audit_id,
                at=now,
                actor="system",
                action="remind",
                outcome="ok",
                organization_id=request.organization_id,
                group_id=request.group_id,
                surrogate_group_id=request.surrogate_group_id,
                request_id=request.id,
                subject=request.requester,
                detail=(
                    f"certification reminder {reminder.days_before} days before, "
                    f"due {reminder.due.date().isoformat()}"
                ),
            )
            try:
                with _directory_errors():
                    self.service.directory.append_audit(record)
            except AlreadyExists:
                continue
            written += 1
        return written
