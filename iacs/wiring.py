"""The composition root (with ``iacs.cli``): production objects built from settings.

The portal, the maintenance command and the dev stack get their service from here; nothing
below this module builds a collaborator that talks to a server on its own.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import requests
from flask import Flask
from pydantic import SecretStr

from approval_portal import create_app
from iacs.directory import Account, Directory
from iacs.enrollment import FileEnrollmentSource
from iacs.mailer import SmtpMailer
from iacs.service import AccessService, ServiceConfig
from iacs.service.errors import Unavailable
from iacs.service.lifecycle import disable_inactive
from iacs.service.notifications import Notifier, NotifierConfig
from iacs.service.schedule import Scheduler
from iacs.settings import Settings
from sync.accounts import KeycloakAccounts

log = logging.getLogger("iacs.wiring")


def build_service(
    settings: Settings, directory: Directory | None = None, *, recover: bool = False
) -> AccessService:
    """The service over the directory (portal bind account) and the enrollment source.

    With ``recover`` (each portal process), an ``ApprovalRecovery`` thread finishes or undoes
    approvals that a failure cut short, within seconds.
    """
    portal = settings.portal
    config = ServiceConfig(
        request_ttl=timedelta(days=portal.request_ttl_days),
        recertification_period=timedelta(days=portal.recertification_days),
        blocked_provider_types=frozenset(portal.blocked_provider_types),
        inactivity_period=timedelta(days=portal.inactivity_days),
    )
    directory = directory or Directory(settings.ldap, account="portal")
    service = AccessService(
        directory,
        FileEnrollmentSource(portal.enrollment_file),
        config,
        on_change=sync_nudge(settings.portal.sync_nudge_url, settings.sync.nudge_token),
    )
    service.accounts = KeycloakAccounts(settings.keycloak)  # inactivity; connects on first use
    if recover:
        service.recovery = ApprovalRecovery(service).start()  # stop() ends it (tests)
    return service


def check_directory(settings: Settings, account: Account = "portal") -> None:
    """Bind as ``account`` once, so a command fails at start with the directory's typed error."""
    with Directory(settings.ldap, account=account) as directory:
        directory.check()


def build_portal(settings: Settings) -> Flask:
    """The portal over the production service (``iacs portal serve``, once per process)."""
    return create_app(settings, service=build_service(settings, recover=True))


class ApprovalRecovery:
    """Every ``interval`` seconds, the service's recovery pass over approvals cut short.

    It runs in every portal process: the portal's account holds the write rights (the sync
    account is read-only by design), and the pass is idempotent and guarded by the request's
    "grant pending" marker (``iacs.service.decisions``), so several processes may run it at
    once. The pass costs one indexed search (presence of the marker) when there is nothing to
    do. A failing pass (slapd down) is logged and tried again at the next tick.
    """

    def __init__(
        self,
        service: Any,
        interval: float = 2.0,
        older_than: timedelta | None = None,
    ) -> None:
        self.service = service
        self.interval = interval
        self.older_than = older_than
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ApprovalRecovery:
        self._thread = threading.Thread(target=self._loop, name="approval-recovery", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_once(self) -> tuple[int, int]:
        """One pass: (completed, undone)."""
        problems: list[str] = []
        if self.older_than is None:
            done = self.service.recover_interrupted_approvals(problems=problems)
        else:
            done = self.service.recover_interrupted_approvals(self.older_than, problems)
        if any(done):
            log.warning(
                "approvals cut short were recovered",
                extra={"completed": done[0], "undone": done[1]},
            )
        return done

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception as exc:  # a pass that failed is tried again at the next tick
                log.warning("approval recovery pass failed", extra={"error": repr(exc)})


def sync_nudge(url: str | None, token: SecretStr | str | None = None) -> Callable[[], None] | None:
    """After each decision, poke the sync worker so the change reaches Keycloak at once.

    The worker's poll of the change feed is the safety net when a nudge is lost. ``token`` is
    ``IACS_SYNC__NUDGE_TOKEN``, sent as a bearer token (``sync.http``).
    """
    return SyncNudge(url, token=token) if url else None


class SyncNudge:
    """Posts ``/nudge`` to the sync worker from a thread of its own, never on a request's path.

    A decision must not wait for the worker: under a burst of approvals the worker's listen
    queue fills and a synchronous post costs a connect timeout (the benchmark's 1.1 s p95
    decisions). Calls while a post is in flight collapse into one more post, so a burst of
    decisions costs the worker a nudge or two. The thread starts on first use (after a forking
    server has forked).
    """

    def __init__(
        self, url: str, timeout: float = 2.0, token: SecretStr | str | None = None
    ) -> None:
        self.url = url
        self.timeout = timeout
        secret = token.get_secret_value() if isinstance(token, SecretStr) else token
        self._headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        self._pending = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def __call__(self) -> None:
        self._pending.set()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="sync-nudge", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        session = requests.Session()
        while True:
            self._pending.wait()
            self._pending.clear()
            with contextlib.suppress(requests.RequestException):
                answer = session.post(self.url, headers=self._headers, timeout=self.timeout)
                if answer.status_code == 401:
                    log.error("the sync worker refused the nudge: check IACS_SYNC__NUDGE_TOKEN")


def build_notifier(settings: Settings, directory: Directory | None = None) -> Notifier:
    """The outbox's notifier, as the sync account (the only one that may write the outbox).

    Without ``IACS_MAIL__HOST`` it fills the outbox and sends nothing.
    """
    mail = settings.mail
    portal = settings.portal
    config = NotifierConfig(
        portal_url=portal.public_url,
        recertification_period=timedelta(days=portal.recertification_days),
        blocked_provider_types=frozenset(portal.blocked_provider_types),
        max_attempts=mail.max_attempts,
        retry_base=timedelta(seconds=mail.retry_base_seconds),
        retry_max=timedelta(seconds=mail.retry_max_seconds),
    )
    mailer = SmtpMailer(mail) if mail.host else None
    return Notifier(directory or Directory(settings.ldap, account="sync"), mailer, config)


def build_scheduler(
    settings: Settings,
    service: AccessService | None = None,
    extra_steps: Sequence[Callable[[bool], str]] = (),
) -> Scheduler:
    """The lifecycle schedule over the portal's service (LC-2 and LC-3 write as the portal),
    then inactivity (INACT-1, ``inactivity_step``).

    ``extra_steps`` are called with ``dry_run`` after those and return a line for the log.
    """
    schedule = settings.schedule
    service = service or build_service(settings)
    return Scheduler(
        service,
        interval=timedelta(seconds=schedule.interval_seconds),
        reminder_days=schedule.reminder_days,
        extra_steps=[inactivity_step(service), *extra_steps],
    )


class Every:
    """Call ``step`` at most once per ``seconds`` (monotonic), from the worker's loop."""

    def __init__(self, seconds: float, step: Callable[[], object]) -> None:
        self.seconds = seconds
        self.step = step
        self._next = 0.0

    def __call__(self) -> object:
        now = time.monotonic()
        if now < self._next:
            return None
        self._next = now + self.seconds
        return self.step()

    def __repr__(self) -> str:
        return f"Every({self.seconds}, {self.step!r})"


class InBackground:
    """Run ``step`` on a thread of its own, one run at a time, so the worker's loop never waits.

    A lifecycle run reads every request (seconds at scale) and a burst of mail takes as long as
    the relay does; on the loop's own thread either would hold up the sync of roles. The loop
    still decides when a run starts (and whatever gates the loop gates that); a call while the
    previous run is still going is skipped.
    """

    def __init__(self, name: str, step: Callable[[], object]) -> None:
        self.name = name
        self.step = step
        self._thread: threading.Thread | None = None

    def __call__(self) -> bool:
        """True when a run was started."""
        if self._thread is not None and self._thread.is_alive():
            return False
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return True

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self.step()
        except Exception as exc:  # tried again at the next start
            log.warning("background step failed", extra={"step": self.name, "error": repr(exc)})

    def __repr__(self) -> str:
        return f"InBackground({self.name!r})"


def inactivity_step(service: AccessService) -> Callable[[bool], str]:
    """The schedule's inactivity pass (INACT-1): a line for the log; Keycloak away is a line
    too, never a failed schedule (the next run tries again)."""

    def step(dry_run: bool) -> str:
        try:
            return str(disable_inactive(service, dry_run=dry_run))
        except Unavailable as exc:
            return f"inactivity: not run now: {exc}"

    return step


def build_housekeeping(settings: Settings) -> list[Callable[[], object]]:
    """The steps ``iacs sync run`` adds to the worker's loop: the schedule, then the mail.

    Each runs in the background (``InBackground``). Without ``IACS_MAIL__HOST`` there is no
    notifier: nothing would send what it derived.
    """
    steps: list[Callable[[], object]] = []
    if settings.schedule.enabled:
        scheduler = build_scheduler(settings)
        steps.append(Every(1.0, InBackground("lifecycle-schedule", scheduler.tick)))
    if settings.mail.host:
        notifier = build_notifier(settings)
        interval = settings.schedule.notify_interval_seconds
        steps.append(Every(interval, InBackground("notifier", notifier.run_once)))
    else:
        log.warning("IACS_MAIL__HOST is not set: no notification is sent")
    return steps
