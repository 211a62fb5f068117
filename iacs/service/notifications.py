"""Notifications by e-mail: a transactional outbox derived from the audit record.

A decision never waits for mail and never fails because of it: the decision writes only what
it always wrote, its audit record (AUD-1). The notifier (a step of the sync worker) reads the
audit record since its cursor, turns each record that tells someone something into one notice
per recipient in the directory's outbox (``iacs.directory.outbox``), and sends what is owed:

- a new request (``request:*``) -> everyone who may decide it, asked of ``policy.may_decide``;
- a decision (``decide:*``, ``complete_approval``, ``close``) and an expiry -> the requester,
  with the reason of a rejection;
- a certification coming due (``remind``, written by ``iacs.service.schedule``) -> those who
  may certify the role (``policy.may_recertify``); a lapse -> the holder and those certifiers;
- a revocation -> the holder.

Nothing is lost: a notice is derived again from its record until it is in the outbox (its id
comes from the record and the recipient, so deriving twice finds the first). Nothing is sent
twice: a notice is claimed (``pending`` -> ``sending``, atomically) before it is sent and
marked ``sent`` once the relay accepted it; a relay that is down puts it back with an
exponential backoff. Only a process killed between the relay's answer and the marker (a
window of one LDAP modify) sends a notice again, after ``SENDING_LEASE``, with the same
``Message-ID``. Every notice sent (or given up) is recorded in the audit (``notify:<kind>``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import smtplib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from jinja2 import Environment, select_autoescape
from markupsafe import Markup

from iacs import policy
from iacs.directory import AlreadyExists, Directory, DirectoryError, DirectoryUnavailable
from iacs.domain import (
    AuditRecord,
    EndReason,
    Notice,
    NoticeState,
    Person,
    ProviderType,
    Request,
    RequestKind,
    RequestStatus,
)
from iacs.service.facts import FactLoader

log = logging.getLogger("iacs.notifications")

OVERLAP = timedelta(minutes=10)
"""The audit record is re-read this far before the cursor: a portal whose clock lags by less
than this still has its records found (re-reading is harmless: notice ids are derived)."""
SENDING_LEASE = timedelta(minutes=5)
"""A notice claimed this long ago and not marked sent was cut short: it is tried again."""

KIND_LABELS = {
    RequestKind.REGISTER_ORGANIZATION: "Security Official of the organization",
    RequestKind.BACKUP_SECURITY_OFFICIAL: "Backup Security Official",
    RequestKind.USER_GROUP_ADMINISTRATOR: "User Group Administrator",
    RequestKind.END_USER: "End User",
    RequestKind.REGISTER_SURROGATE_GROUP: "User Group Administrator of a new Surrogate User Group",
    RequestKind.SURROGATE_ADMINISTRATOR: "User Group Administrator of a Surrogate User Group",
    RequestKind.SURROGATE_END_USER: "End User of a Surrogate User Group",
    RequestKind.SURROGATE_ASSOCIATION: "association of a Surrogate User Group",
    RequestKind.INDIVIDUAL_PRACTITIONER: "individual practitioner",
}
"""What each kind of request asks for, in the words of the reader (presentation only)."""


class Mailer(Protocol):
    """Hands one notice to the relay; raises ``OSError`` (``smtplib`` errors are) on failure."""

    def send(self, notice: Notice) -> None: ...


@dataclass(frozen=True, slots=True)
class NotifierConfig:
    portal_url: str = "http://127.0.0.1:5000"
    recertification_period: timedelta = timedelta(days=365)
    blocked_provider_types: frozenset[str] = frozenset({ProviderType.DMEPOS.value})
    max_attempts: int = 12
    retry_base: timedelta = timedelta(seconds=30)
    retry_max: timedelta = timedelta(hours=1)


@dataclass
class DeliveryReport:
    derived: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0

    def __str__(self) -> str:
        return (
            f"notices derived {self.derived}, sent {self.sent}, "
            f"to retry {self.retried}, given up {self.failed}"
        )


def notice_id(audit_id: str, recipient: str) -> str:
    """The id of the notice of one audit record to one person: the same at every derivation."""
    return hashlib.sha256(f"{audit_id}\0{recipient.lower()}".encode()).hexdigest()[:40]


class Notifier:
    """Fills the outbox from the audit record and sends what it owes (see the module)."""

    def __init__(
        self,
        directory: Directory,
        mailer: Mailer | None,
        config: NotifierConfig | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.directory = directory
        self.mailer = mailer
        self.config = config or NotifierConfig()
        self.clock = clock or _utcnow
        self.facts = FactLoader(directory, self.config.blocked_provider_types)
        self._seen: OrderedDict[str, None] = OrderedDict()
        """Audit records this process has turned into notices (bounded): not derived again."""
        self._templates = Environment(autoescape=select_autoescape(default=True))
        self._plain_templates = Environment(autoescape=False)  # noqa: S701 - the text/plain part

    # -- the worker's step -------------------------------------------------------------------

    def run_once(self) -> DeliveryReport:
        """Derive what the audit record owes, then send what is due."""
        report = DeliveryReport(derived=self.derive())
        if self.mailer is not None:
            self.deliver(report)
        return report

    # -- deriving ----------------------------------------------------------------------------

    def derive(self) -> int:
        """Add the notices of the audit records since the cursor; returns how many were new."""
        now = self.clock()
        cursor = self.directory.outbox_cursor()
        since = (cursor or now) - OVERLAP
        records = sorted(
            self.directory.find_audit(since=since, limit=0), key=lambda r: (r.at, r.id)
        )
        fresh = [r for r in records if r.id not in self._seen and _tells_someone(r)]
        # after a restart the window is read again: what is in the outbox is not derived again
        done = self.directory.audit_ids_with_notices([r.id for r in fresh])
        added = 0
        for record in fresh:
            if record.id in done:
                self._remember(record.id)
                continue
            try:
                notices = self.notices_for(record)
            except DirectoryUnavailable:
                raise  # the whole pass is tried again
            except DirectoryError as exc:  # one unreadable entry never stalls the others
                log.error("notice not derived", extra={"audit": record.id, "error": repr(exc)})
                self._remember(record.id)
                continue
            for notice in notices:
                if self.directory.add_notice(notice, now):
                    added += 1
            self._remember(record.id)
        newest = max((r.at for r in records), default=None)
        if newest is not None and (cursor is None or newest > cursor):
            self.directory.set_outbox_cursor(newest)
        elif cursor is None:
            self.directory.set_outbox_cursor(now)
        return added

    def _remember(self, audit_id: str) -> None:
        self._seen[audit_id] = None
        while len(self._seen) > 100_000:
            self._seen.popitem(last=False)

    def notices_for(self, record: AuditRecord) -> list[Notice]:
        """The notices one audit record owes (none for most records)."""
        if record.outcome != "ok":
            return []
        action = record.action
        if action == "revoke" and record.subject:
            revoked = self._revoked_request(record)
            if revoked is None:
                return []
            return self._compose(record, "revoked", [record.subject], revoked, "/my")
        if not record.request_id:
            return []
        request = self.directory.get_request(record.request_id)
        if request is None:
            return []
        at = record.at
        if action.startswith("request:"):
            if request.status is not RequestStatus.PENDING:
                return []
            people = self._deciders(request, at)
            return self._compose(record, "new_request", people, request, "/approvals")
        if action in ("decide:approved", "decide:rejected", "complete_approval", "close"):
            kind = "approved" if action in ("decide:approved", "complete_approval") else "rejected"
            # one decision, one mail: an approval completed by the recovery pass may have
            # both records (decide:approved, complete_approval); they share the notice's key
            return self._compose(
                record,
                kind,
                [request.requester],
                request,
                f"/requests/{request.id}",
                key=f"decided\0{request.id}",
            )
        if action == "expire":
            return self._compose(
                record, "expired", [request.requester], request, f"/requests/{request.id}"
            )
        if action == "lapse":
            holder = [request.requester]
            certifiers = self._certifiers(request, at, lapsed=True)
            return self._compose(record, "lapsed", holder, request, "/my") + self._compose(
                record, "lapsed_certifier", certifiers, request, "/approvals"
            )
        if action == "remind":
            certifiers = self._certifiers(request, at, lapsed=False)
            return self._compose(
                record, "certification_due", certifiers, request, f"/requests/{request.id}"
            )
        return []

    def _revoked_request(self, record: AuditRecord) -> Request | None:
        """The approved request whose role a ``revoke`` record ended (the record names the
        holder and the scope, not the request): the one of that scope ended nearest to it."""
        ended = [
            r
            for r in self.directory.find_requests(
                requester=record.subject, status=RequestStatus.APPROVED, ended=True
            )
            if r.end_reason is EndReason.REVOKED
            and r.ended_at is not None
            and (r.organization_id, r.group_id, r.surrogate_group_id)
            == (record.organization_id, record.group_id, record.surrogate_group_id)
        ]
        return min(
            ended,
            key=lambda r: abs((r.ended_at or record.at) - record.at),
            default=None,
        )

    def _candidates(self, request: Request) -> tuple[policy.Facts, list[str]]:
        facts = self.facts.for_request(request)
        people: set[str] = set()
        for membership in policy.decider_candidates(request, facts):
            people |= self.directory.members_of(membership)
        return facts, sorted(people)

    def _deciders(self, request: Request, at: datetime) -> list[str]:
        """Everyone the policy lets decide ``request`` now (``policy.may_decide``)."""
        facts, people = self._candidates(request)
        return [
            username
            for username in people
            if policy.may_decide(
                policy.Actor(username, self.directory.memberships_of(username)), request, facts, at
            ).allowed
        ]

    def _certifiers(self, request: Request, at: datetime, *, lapsed: bool) -> list[str]:
        """Those the policy lets recertify the role (for a lapse: as it was before it ended)."""
        view = replace(request, ended_at=None, end_reason=None) if lapsed else request
        facts, people = self._candidates(view)
        return [
            username
            for username in people
            if policy.may_recertify(
                policy.Actor(username, self.directory.memberships_of(username)),
                request.requester,
                view,
                facts,
                at,
            ).allowed
        ]

    # -- composing ---------------------------------------------------------------------------

    def _compose(
        self,
        record: AuditRecord,
        kind: str,
        recipients: Iterable[str],
        request: Request,
        path: str,
        *,
        key: str = "",
    ) -> list[Notice]:
        """One notice per recipient with an address; ``key`` (default: the record) names the
        event, so two records of one event owe one notice."""
        notices = []
        for username in dict.fromkeys(recipients):
            person = self.directory.get_person(username)
            if person is None or not person.email:
                log.warning("no e-mail address: notice not owed", extra={"username": username})
                continue
            subject, text, html = self._render(kind, person, record, request, path)
            notices.append(
                Notice(
                    id=notice_id(key or record.id, username),
                    audit_id=record.id,
                    recipient=username,
                    kind=kind,
                    address=person.email,
                    subject=subject,
                    text=text,
                    html=html,
                )
            )
        return notices

    def _name(self, username: str) -> str:
        if username == "system":
            return "the system"
        person = self.directory.get_person(username)
        return (person.display_name or username) if person else username

    def _scope_name(self, request: Request) -> str:
        """The organization, group or surrogate group the request is about, by name."""
        parts = []
        if request.surrogate_group_id:
            sug = self.directory.get_surrogate_group(request.surrogate_group_id)
            parts.append(f"the Surrogate User Group {sug.name if sug else ''}".strip())
        if request.group_id and request.organization_id:
            group = self.directory.get_user_group(request.organization_id, request.group_id)
            parts.append(f"the user group {group.name if group else request.group_id}")
        if request.organization_id:
            org = self.directory.get_organization(request.organization_id)
            parts.append(org.name if org else "an organization")
        if request.kind is RequestKind.INDIVIDUAL_PRACTITIONER:
            parts.append(f"NPI {request.details.get('npi', '')}".strip())
        return ", ".join(parts) or "IACS"

    def _render(
        self, kind: str, person: Person, record: AuditRecord, request: Request, path: str
    ) -> tuple[str, str, str]:
        values = {
            "reader": person.display_name or person.username,
            "requester": self._name(request.requester),
            "holder": self._name(record.subject or request.requester),
            "actor": self._name(record.actor),
            "role": KIND_LABELS.get(request.kind, request.kind.value),
            "scope": self._scope_name(request),
            "reason": request.reason if kind == "rejected" else record.detail,
            "link": self.config.portal_url.rstrip("/") + path,
            "due": _due_text(record.detail),
        }
        subject_template, body = _MESSAGES[kind]
        subject = self._plain_templates.from_string(subject_template).render(values)
        subject = " ".join(subject.split())[:200]
        lines = [self._plain(line, values) for line in body]
        text = "\n\n".join([f"Dear {values['reader']},", *lines, values["link"]]) + "\n"
        # each line was rendered with autoescape on: Markup keeps it from being escaped twice
        escaped = [self._templates.from_string(line).render(values) for line in body]
        html = self._templates.from_string(_HTML).render(
            lines=[Markup(line) for line in escaped],  # noqa: S704
            **values,
        )
        return subject, text, html

    def _plain(self, line: str, values: dict[str, str]) -> str:
        return self._plain_templates.from_string(line).render(values)

    # -- delivering --------------------------------------------------------------------------

    def deliver(self, report: DeliveryReport | None = None) -> DeliveryReport:
        """Send every notice that is due; a relay that is down leaves them for later."""
        report = report or DeliveryReport()
        assert self.mailer is not None
        now = self.clock()
        due = self.directory.find_notices(state=NoticeState.PENDING, due_before=now)
        cut_short = self.directory.find_notices(
            state=NoticeState.SENDING, due_before=now - SENDING_LEASE
        )
        for notice in [*due, *cut_short]:
            if not self.directory.claim_notice(notice, now):
                continue  # another process has it
            try:
                self.mailer.send(notice)
            except OSError as exc:
                self._failed(notice, exc, report)
                if _relay_down(exc):
                    break  # the other due notices stay pending and due: the next pass
                continue
            self.directory.mark_notice_sent(notice.id, self.clock())
            self._record(notice, "ok", f"e-mail to {notice.address}: {notice.subject}")
            report.sent += 1
        return report

    def _failed(self, notice: Notice, exc: OSError, report: DeliveryReport) -> None:
        attempts = notice.attempts + 1
        wait = min(self.config.retry_max, self.config.retry_base * 2 ** min(attempts - 1, 20))
        failed = attempts >= self.config.max_attempts
        self.directory.retry_notice(
            notice.id,
            attempts=attempts,
            next_at=self.clock() + wait,
            error=f"{type(exc).__name__}: {exc}",
            failed=failed,
        )
        log.warning(
            "notice not sent",
            extra={"notice": notice.id, "attempts": attempts, "error": repr(exc)},
        )
        if failed:
            self._record(notice, "failed", f"gave up after {attempts} tries: {exc}")
            report.failed += 1
        else:
            report.retried += 1

    def _record(self, notice: Notice, outcome: str, detail: str) -> None:
        """AUD-1: each notification, sent or given up, in the audit (once per notice)."""
        source = self.directory.get_audit_record(notice.audit_id)
        record = AuditRecord(
            id=hashlib.sha256(f"notify\0{notice.id}\0{outcome}".encode()).hexdigest()[:32],
            at=self.clock(),
            actor="system",
            action=f"notify:{notice.kind}",
            outcome=outcome,
            organization_id=source.organization_id if source else "",
            group_id=source.group_id if source else "",
            surrogate_group_id=source.surrogate_group_id if source else "",
            request_id=source.request_id if source else "",
            subject=notice.recipient,
            detail=detail[:500],
        )
        with contextlib.suppress(AlreadyExists):  # recorded by a pass cut short after it
            self.directory.append_audit(record)


_TELLING_ACTIONS = frozenset(
    {
        "decide:approved",
        "decide:rejected",
        "complete_approval",
        "close",
        "expire",
        "revoke",
        "lapse",
        "remind",
    }
)


def _tells_someone(record: AuditRecord) -> bool:
    """Whether a record may owe a notice (read before any lookup: most records owe none)."""
    if record.outcome != "ok":
        return False
    return record.action in _TELLING_ACTIONS or record.action.startswith("request:")


def _relay_down(exc: OSError) -> bool:
    """True when the relay could not be reached at all (not a refusal of one message)."""
    return not isinstance(exc, smtplib.SMTPRecipientsRefused | smtplib.SMTPDataError)


def _due_text(detail: str) -> str:
    return detail.split("due ", 1)[-1] if "due " in detail else ""


def _utcnow() -> datetime:
    return datetime.now(UTC)


_HTML = """<!doctype html>
<html><body style="font-family: sans-serif; line-height: 1.4">
<p>Dear {{ reader }},</p>
{% for line in lines %}<p>{{ line }}</p>
{% endfor %}<p><a href="{{ link }}">{{ link }}</a></p>
<p style="color: #555; font-size: smaller">IACS delegated access</p>
</body></html>
"""

_MESSAGES: dict[str, tuple[str, list[str]]] = {
    "new_request": (
        "{{ requester }} asks to be {{ role }} ({{ scope }})",
        [
            "{{ requester }} asks to be {{ role }} for {{ scope }}, and you may decide it.",
            "Approve or reject it on your approvals page:",
        ],
    ),
    "approved": (
        "Approved: {{ role }} ({{ scope }})",
        [
            "{{ actor }} approved your request to be {{ role }} for {{ scope }}.",
            "See the request:",
        ],
    ),
    "rejected": (
        "Not approved: {{ role }} ({{ scope }})",
        [
            "{{ actor }} rejected your request to be {{ role }} for {{ scope }}.",
            "The reason given: {{ reason }}",
            "See the request:",
        ],
    ),
    "expired": (
        "Expired: your request to be {{ role }} ({{ scope }})",
        [
            "Your request to be {{ role }} for {{ scope }} expired before anyone decided it.",
            "You may ask again. See the request:",
        ],
    ),
    "revoked": (
        "Your role {{ role }} ({{ scope }}) was revoked",
        [
            "{{ actor }} revoked your role {{ role }} for {{ scope }}.",
            "Your roles now:",
        ],
    ),
    "lapsed": (
        "Your role {{ role }} ({{ scope }}) has lapsed",
        [
            "Your role {{ role }} for {{ scope }} was not recertified in time and has lapsed.",
            "Ask for it again if you still need it. Your roles now:",
        ],
    ),
    "lapsed_certifier": (
        "Lapsed: {{ holder }}, {{ role }} ({{ scope }})",
        [
            "The role {{ role }} of {{ holder }} for {{ scope }} was not recertified in time "
            "and has lapsed.",
            "Your approvals page:",
        ],
    ),
    "certification_due": (
        "Recertify {{ holder }} as {{ role }} ({{ scope }}) by {{ due }}",
        [
            "The role {{ role }} of {{ holder }} for {{ scope }} must be recertified by "
            "{{ due }}, or it lapses.",
            "Recertify it (or revoke it) here:",
        ],
    ),
}
