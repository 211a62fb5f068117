"""The schedule and the notifier as steps of the sync worker's loop, as ``iacs sync run`` wires
them (``iacs.wiring.build_housekeeping``), and ``iacs maintenance --dry-run``; over the session's
slapd and SMTP server. No Keycloak: nothing here runs a reconcile.
"""

from __future__ import annotations

import smtplib
import ssl
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from iacs.cli import main
from iacs.directory import Directory
from iacs.domain import Membership, Notice, RequestStatus, Role, ScopeKind
from iacs.enrollment import FileEnrollmentSource
from iacs.mailer import SmtpMailer
from iacs.service import AccessService
from iacs.settings import (
    LdapSettings,
    MailSettings,
    PortalSettings,
    ScheduleSettings,
    Settings,
    SyncSettings,
    settings_to_env,
)
from iacs.stack.smtp import SmtpInstance, start_smtp
from iacs.wiring import InBackground, build_housekeeping, build_service
from sync.worker import SyncWorker

pytestmark = pytest.mark.servers


def _no_keycloak():
    raise AssertionError("these tests never reconcile")


@pytest.fixture
def settings(tmp_path: Path, ldap_settings: LdapSettings, mailbox: SmtpInstance) -> Settings:
    return Settings(
        environment="development",
        ldap=ldap_settings,
        portal=PortalSettings(public_url="https://portal.iacs.test"),
        sync=SyncSettings(cursor_file=tmp_path / "cursor.json"),
        mail=mailbox.mail_settings(),
        schedule=ScheduleSettings(interval_seconds=3600, notify_interval_seconds=0.1),
    )


def _help_desk(root_directory: Directory, make_person) -> None:
    make_person("helpdesk")
    root_directory.add_member(Membership(Role.HELP_DESK, ScopeKind.SYSTEM), "helpdesk")


def test_sync_run_steps_expire_and_mail_by_themselves(
    settings: Settings, root_directory: Directory, make_person, mailbox: SmtpInstance
) -> None:
    """LC-2 runs in the worker's loop, and its notice reaches the requester, with no operator."""
    _help_desk(root_directory, make_person)
    make_person("sofia")
    long_ago = AccessService(
        build_service(settings).directory,
        FileEnrollmentSource(),
        clock=lambda: datetime.now(UTC) - timedelta(days=31),
    )
    request = long_ago.register_organization(
        "sofia", name="Lakeside Hospital", identifier="123456789", provider_type="hospital"
    )
    worker = SyncWorker(
        settings,
        directory=Directory(settings.ldap, "sync"),
        gateway_factory=_no_keycloak,
        housekeeping=build_housekeeping(settings),
    )

    def told() -> list:
        return [m for m in mailbox.messages() if m["To"] == "sofia@example.test"]

    deadline = time.monotonic() + 120  # a bound for a stuck test, not a performance claim
    while not told() and time.monotonic() < deadline:
        worker.run_housekeeping()  # each step starts in the background when due
        time.sleep(0.2)
    assert root_directory.get_request(request.id).status is RequestStatus.EXPIRED
    [told] = told()
    assert told["Subject"].startswith("Expired:")
    assert "https://portal.iacs.test/requests/" in told.get_body(("plain",)).get_content()


def test_a_failing_step_never_stops_the_others(tmp_path: Path, sync_directory: Directory) -> None:
    ran = []

    def broken() -> None:
        raise RuntimeError("relay on fire")

    worker = SyncWorker(
        Settings(sync=SyncSettings(cursor_file=tmp_path / "cursor.json")),
        directory=sync_directory,
        gateway_factory=_no_keycloak,
        housekeeping=[broken, lambda: ran.append(1)],
    )
    worker.run_housekeeping()
    worker.run_housekeeping()
    assert ran == [1, 1]


def test_maintenance_dry_run_says_what_the_next_run_would_do_and_changes_nothing(
    settings: Settings,
    root_directory: Directory,
    make_person,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _help_desk(root_directory, make_person)
    make_person("sofia")
    long_ago = AccessService(
        build_service(settings).directory,
        FileEnrollmentSource(),
        clock=lambda: datetime.now(UTC) - timedelta(days=31),
    )
    request = long_ago.register_organization(
        "sofia", name="Lakeside Hospital", identifier="123456789", provider_type="hospital"
    )
    for name, value in settings_to_env(settings).items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["maintenance", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "expire 1, lapse 0, remind 0" in result.output
    assert f"expire: request {request.id} (register_organization) of sofia" in result.output
    assert "inactivity:" in result.output  # INACT-1 is part of every scheduled run
    assert root_directory.get_request(request.id).status is RequestStatus.PENDING


def test_sec_the_mailer_speaks_starttls_and_auth_like_a_production_relay(
    tmp_path: Path, directory_tls
) -> None:
    """The production path of ``iacs.mailer``: verified STARTTLS first, then AUTH from the
    secret file; a relay whose certificate is not trusted is refused before any password."""
    relay = start_smtp(tmp_path / "relay", tls=directory_tls, login=("iacs-relay", "relay-secret"))
    try:
        secret = tmp_path / "smtp-password"
        secret.write_text("relay-secret\n")
        mail = MailSettings(
            host=relay.host,
            port=relay.port,
            starttls=True,
            ca_file=directory_tls.ca_file,
            username="iacs-relay",
            password_file=secret,
            from_address="IACS <iacs@iacs.test>",
        )
        SmtpMailer(mail).send(_NOTICE)
        [message] = relay.messages()
        assert message["Message-ID"] == f"<{_NOTICE.id}@iacs.test>"
        assert message.get_body(("html",)) is not None

        untrusted = mail.model_copy(update={"ca_file": None})  # the system store: not our CA
        with pytest.raises(ssl.SSLError):
            SmtpMailer(untrusted).send(_NOTICE)
        secret.write_text("a wrong password")
        with pytest.raises(smtplib.SMTPAuthenticationError):
            SmtpMailer(mail).send(_NOTICE)
        plain = mail.model_copy(update={"starttls": False, "username": None})
        with pytest.raises(smtplib.SMTPException):  # the relay requires STARTTLS first
            SmtpMailer(plain).send(_NOTICE)
        assert len(relay.messages()) == 1
    finally:
        relay.stop()


_NOTICE = Notice(
    id="0123456789abcdef0123456789abcdef01234567",
    audit_id="a",
    recipient="sofia",
    kind="approved",
    address="sofia@example.test",
    subject="Approved: End User (Billing, Lakeside Hospital)",
    text="Dear Test sofia,\n\nApproved.\n",
    html="<p>Approved.</p>",
)


def test_a_background_step_never_holds_the_loop_and_runs_one_at_a_time() -> None:
    release, runs = threading.Event(), []

    def slow() -> None:
        runs.append(1)
        release.wait(60)

    step = InBackground("slow", slow)
    assert step() is True
    assert step() is False  # the previous run is still going: skipped, not queued
    release.set()
    step.join(60)
    assert step() is True
    step.join(60)
    assert runs == [1, 1]
