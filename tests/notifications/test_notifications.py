"""Notifications through the outbox, over the real slapd and a real SMTP server (aiosmtpd).

The service writes as the portal, the notifier as the sync account (the only one that may
write the outbox), both on one controllable clock; the mail is read from the server's Maildir.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import ldap3
import pytest

from iacs.directory import Directory
from iacs.domain import Membership, NoticeState, Role, ScopeKind
from iacs.enrollment import FileEnrollmentSource
from iacs.mailer import SmtpMailer
from iacs.service import AccessService, ServiceConfig
from iacs.service.notifications import Notifier, NotifierConfig
from iacs.service.schedule import SchedulePlan, Scheduler
from iacs.settings import LdapSettings
from iacs.stack.slapd import SlapdInstance
from iacs.stack.smtp import SmtpInstance

PORTAL = "https://portal.iacs.test"


class Clock:
    """Now, moved by the test (never a real sleep)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Mail:
    service: AccessService
    root: Directory
    outbox: Directory
    clock: Clock
    mailbox: SmtpInstance
    make_person: Callable[..., object]

    def notifier(self) -> Notifier:
        """A fresh notifier: a new process (a restart) as far as the outbox is concerned."""
        config = NotifierConfig(
            portal_url=PORTAL, retry_base=timedelta(seconds=30), retry_max=timedelta(minutes=10)
        )
        mailer = SmtpMailer(self.mailbox.mail_settings())
        return Notifier(self.outbox, mailer, config, clock=self.clock)

    def to(self, username: str) -> list[EmailMessage]:
        address = f"{username}@example.test"
        return [m for m in self.mailbox.messages() if m["To"] == address]

    def organization_with_officers(self) -> str:
        """Lakeside (approved), SO sofia and BSO bruno; returns the organization id."""
        return self.officers()[0]

    def officers(self) -> tuple[str, str, str]:
        """``organization_with_officers``: the organization, the SO's and the BSO's requests."""
        for username in ("sofia", "bruno"):
            self.make_person(username)
        registration = self.service.register_organization(
            "sofia", name="Lakeside Hospital", identifier="123456789", provider_type="hospital"
        )
        self.service.decide("helpdesk", registration.id, approve=True)
        bso = self.service.request_backup_security_official("bruno", registration.organization_id)
        self.service.decide("sofia", bso.id, approve=True)
        return registration.organization_id, registration.id, bso.id


@pytest.fixture
def mail(
    directory: Directory,
    root_directory: Directory,
    ldap_settings: LdapSettings,
    make_person: Callable[..., object],
    mailbox: SmtpInstance,
) -> Iterator[Mail]:
    clock = Clock()
    service = AccessService(
        directory,
        FileEnrollmentSource(),
        ServiceConfig(recertification_period=timedelta(days=365)),
        clock=clock,
    )
    make_person("helpdesk")
    root_directory.add_member(Membership(Role.HELP_DESK, ScopeKind.SYSTEM), "helpdesk")
    with Directory(ldap_settings, "sync") as outbox:
        yield Mail(service, root_directory, outbox, clock, mailbox, make_person)


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def _html(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return part.get_content()


def test_new_request_mails_everyone_who_may_decide_it_with_the_link(mail: Mail) -> None:
    """UGA-2 decides who is told: the SO and the BSO, not the help desk, not the requester."""
    org_id = mail.organization_with_officers()
    mail.make_person("carla")
    request = mail.service.request_user_group_administrator(
        "carla", org_id, group_name="Billing & Claims"
    )
    mail.notifier().run_once()

    for decider in ("sofia", "bruno"):
        [notice] = [m for m in mail.to(decider) if "asks to be" in m["Subject"]]
        assert notice["Subject"] == (
            "Test carla asks to be User Group Administrator (the user group Billing & Claims, "
            "Lakeside Hospital)"
        )
        text = _text(notice)
        assert f"{PORTAL}/approvals" in text
        assert "Dear Test " in text
        assert request.id not in text and org_id not in text  # names, not ids
        html = _html(notice)
        assert f'href="{PORTAL}/approvals"' in html
        assert "Billing &amp; Claims" in html  # escaped in HTML
    assert not [m for m in mail.to("helpdesk") if "Test carla" in m["Subject"]]
    assert not [m for m in mail.to("carla") if "asks to be" in m["Subject"]]


def test_decision_mails_the_requester_with_the_reason_of_a_rejection(mail: Mail) -> None:
    mail.make_person("sofia")
    registration = mail.service.register_organization(
        "sofia", name="Lakeside Hospital", identifier="123456789", provider_type="hospital"
    )
    mail.notifier().run_once()
    [asked] = mail.to("helpdesk")  # ORG-3: the help desk decides it
    assert "Security Official" in asked["Subject"]
    mail.service.decide(
        "helpdesk", registration.id, approve=False, reason="the TIN does not match the name"
    )
    mail.notifier().run_once()
    [told] = mail.to("sofia")
    assert told["Subject"].startswith("Not approved:")
    assert "the TIN does not match the name" in _text(told)
    assert f"{PORTAL}/requests/{registration.id}" in _text(told)


def test_relay_down_the_decision_succeeds_and_the_mail_goes_out_once_after(mail: Mail) -> None:
    """Sending never blocks a decision; nothing is lost while the relay is down, nothing doubled."""
    mail.make_person("sofia")
    registration = mail.service.register_organization(
        "sofia", name="Lakeside Hospital", identifier="123456789", provider_type="hospital"
    )
    mail.mailbox.stop()
    decided = mail.service.decide("helpdesk", registration.id, approve=True)
    assert decided.status.value == "approved"

    report = mail.notifier().run_once()
    assert report.sent == 0 and report.retried >= 1
    # the help desk is not told of a request already decided when the notifier reads it
    [owed] = mail.outbox.find_notices(state=NoticeState.PENDING)
    assert (owed.recipient, owed.attempts) == ("sofia", 1)

    mail.mailbox.start()
    assert mail.notifier().run_once().sent == 0  # backing off: not due yet
    mail.clock.advance(minutes=1)
    assert mail.notifier().run_once().sent == 1  # a restarted notifier: nothing lost
    mail.clock.advance(hours=2)
    assert mail.notifier().run_once().sent == 0  # and nothing sent twice
    [approved] = mail.to("sofia")
    assert approved["Subject"].startswith("Approved:")
    assert len(mail.mailbox.messages()) == 1
    assert len(mail.outbox.find_notices(state=NoticeState.SENT)) == 1
    records = mail.outbox.find_audit(subject="sofia", limit=0)
    assert [r.action for r in records if r.action.startswith("notify:")] == ["notify:approved"]


def test_lc_3_reminders_at_30_and_7_days_then_the_lapse_with_a_controllable_clock(
    mail: Mail,
) -> None:
    org_id, registration_id, bso_id = mail.officers()
    mail.make_person("carla")
    request = mail.service.request_user_group_administrator("carla", org_id, group_name="Billing")
    mail.service.decide("sofia", request.id, approve=True)
    scheduler = Scheduler(mail.service, reminder_days=(30, 7), clock=mail.clock)
    notifier = mail.notifier()
    notifier.run_once()
    mail.mailbox.clear()

    def reminders(username: str) -> list[EmailMessage]:
        """The reminders about carla's role (the officers' own roles are due too)."""
        return [m for m in mail.to(username) if m["Subject"].startswith("Recertify Test carla")]

    def planned(plan: SchedulePlan) -> list[int]:
        return [r.days_before for r in plan.remind if r.request.id == request.id]

    mail.clock.advance(days=300)
    assert not planned(scheduler.plan())
    scheduler.run()
    notifier.run_once()
    assert not reminders("sofia")

    mail.clock.advance(days=36)  # 29 days before it is due
    plan = scheduler.plan()
    assert planned(plan) == [30] and not plan.lapse
    scheduler.run()
    assert planned(scheduler.plan()) == []  # written: the next run has nothing to remind
    scheduler.run()  # written once however often the schedule runs
    notifier.run_once()
    for certifier in ("sofia", "bruno"):  # LC-3: whoever could approve it
        [reminder] = reminders(certifier)
        assert "Test carla" in reminder["Subject"]
        assert f"{PORTAL}/requests/{request.id}" in _text(reminder)
    assert not reminders("carla")  # DEC-1: never the holder
    mail.service.recertify("helpdesk", registration_id)  # the officers keep theirs
    mail.service.recertify("sofia", bso_id)

    mail.clock.advance(days=23)  # 6 days before
    scheduler.run()
    notifier.run_once()
    assert len(reminders("sofia")) == 2

    mail.clock.advance(days=7)
    plan = scheduler.plan()
    assert request.id in [r.id for r in plan.lapse]
    assert "lapse" in str(plan)
    scheduler.run()
    notifier.run_once()
    [lapsed] = [m for m in mail.to("carla") if "has lapsed" in m["Subject"]]
    assert f"{PORTAL}/my" in _text(lapsed)
    assert [m for m in mail.to("sofia") if m["Subject"].startswith("Lapsed:")]
    assert not scheduler.plan().lapse


def test_scheduler_tick_runs_once_per_interval_and_lc_2_expires(mail: Mail) -> None:
    mail.make_person("sofia")
    registration = mail.service.register_organization(
        "sofia", name="Lakeside Hospital", identifier="123456789", provider_type="hospital"
    )
    scheduler = Scheduler(mail.service, interval=timedelta(hours=1), clock=mail.clock)
    assert scheduler.tick() is not None
    assert scheduler.tick() is None  # not due again yet
    mail.clock.advance(days=31)
    assert [r.id for r in scheduler.plan().expire] == [registration.id]
    report = scheduler.tick()
    assert report is not None and report.expired == 1
    mail.notifier().run_once()
    [expired] = [m for m in mail.to("sofia") if m["Subject"].startswith("Expired:")]
    assert "expired before anyone decided it" in _text(expired)


def test_sec_portal_cannot_forge_a_notice_or_a_sent_marker(
    mail: Mail, slapd: SlapdInstance, ldap_connect: Callable[..., ldap3.Connection]
) -> None:
    """A compromised portal can neither send mail as the system nor suppress a notice."""
    mail.make_person("sofia")
    mail.service.register_organization(
        "sofia", name="Lakeside Hospital", identifier="123456789", provider_type="hospital"
    )
    mail.mailbox.stop()
    mail.notifier().run_once()
    [owed] = mail.outbox.find_notices(state=NoticeState.PENDING)
    settings = slapd.ldap_settings()
    portal = ldap_connect(settings.portal_bind_dn, settings.portal_bind_password.get_secret_value())
    outbox = f"ou=outbox,{slapd.base_dn}"
    forged = portal.add(
        f"cn=forged,{outbox}",
        ["iacsNotice"],
        {
            "cn": "forged",
            "iacsAuditId": "x",
            "iacsRecipient": "sofia",
            "iacsNoticeKind": "approved",
            "iacsNoticeState": "pending",
            "iacsAttempts": "0",
            "iacsNextAttemptAt": "20260101000000Z",
            "iacsMailAddress": "victim@example.test",
            "iacsMailSubject": "Reset your password here",
            "iacsMailText": "https://evil.example/",
        },
    )
    assert not forged and portal.result["description"] == "insufficientAccessRights"
    marked = portal.modify(
        f"cn={owed.id},{outbox}", {"iacsNoticeState": [(ldap3.MODIFY_REPLACE, ["sent"])]}
    )
    assert not marked
    assert portal.result["description"] in ("insufficientAccessRights", "noSuchObject")
    portal.search(outbox, "(objectClass=iacsNotice)", attributes=["iacsMailText"])
    assert not [e for e in portal.response if e.get("type") == "searchResEntry"]
    sync_account = ldap_connect(
        settings.sync_bind_dn, settings.sync_bind_password.get_secret_value()
    )
    assert not sync_account.delete(f"cn={owed.id},{outbox}")  # a sent marker is kept
    assert mail.outbox.get_notice(owed.id) is not None


def test_lc_1_a_revocation_mails_the_holder_and_a_resignation_nobody(mail: Mail) -> None:
    org_id = mail.organization_with_officers()
    mail.make_person("carla")
    request = mail.service.request_user_group_administrator("carla", org_id, group_name="Billing")
    mail.service.decide("bruno", request.id, approve=True)
    uga = Membership(Role.USER_GROUP_ADMINISTRATOR, ScopeKind.USER_GROUP, request.group_id, org_id)
    bso = Membership(Role.BACKUP_SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, org_id)
    mail.service.revoke("sofia", "carla", uga, reason="left the company")
    mail.service.revoke("bruno", "bruno", bso)  # resigns: he knows
    mail.notifier().run_once()
    [revoked] = [m for m in mail.to("carla") if "revoked" in m["Subject"]]
    assert revoked["Subject"] == (
        "Your role User Group Administrator (the user group Billing, Lakeside Hospital) was revoked"
    )
    assert "Test sofia revoked your role" in _text(revoked)
    assert not [m for m in mail.to("bruno") if "revoked" in m["Subject"]]
    [approved] = [m for m in mail.to("carla") if m["Subject"].startswith("Approved:")]
    assert "Test bruno approved your request" in _text(approved)
