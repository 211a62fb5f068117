"""Inactivity (issue 10, item 4): an account unused for the configured period is disabled.

The source of the last sign-in is Keycloak's own login events (``LOGIN``, kept by the realm for
``eventsExpiration``: 90 days in ``keycloak_config/realm.json``, longer than the 60-day default
period), read through the ``IdentityAccounts`` port. A person is inactive when none of these is
within the period: their last recorded sign-in, the creation of their account, their last
re-enabling by the help desk (so a re-enabled person gets a whole period to sign in).

It fails closed: when the oldest login record Keycloak still keeps is younger than the period
(events just enabled, retention shorter than the period, a realm just created), the absence of
a sign-in proves nothing, so nobody is disabled and the pass says why.

The flag in the directory is the audit record ``account.disabled_inactive`` (actor ``system``,
subject the person; AUD-1's append-only record), and ``account.reenabled`` when the help desk
re-enables the account; the latest of the two says the account's state. The mail helper's
notifier tells the holder from the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from iacs import policy
from iacs.service import inputs
from iacs.service.base import ServiceBase, _directory_errors
from iacs.service.errors import NotFound, Unavailable
from iacs.service.ports import IdentityAccounts

DISABLED_ACTION = "account.disabled_inactive"
REENABLED_ACTION = "account.reenabled"


@dataclass
class InactivityReport:
    """Who was (or, in a dry run, would be) disabled, and what could not be judged or done."""

    dry_run: bool = False
    disabled: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        verb = "would disable" if self.dry_run else "disabled"
        lines = [f"inactivity: {verb} {len(self.disabled)}: {', '.join(self.disabled) or '-'}"]
        return "\n".join([*lines, *(f"  problem: {p}" for p in self.problems)])


class InactivityOperations(ServiceBase):
    """Disabling unused accounts and re-enabling them (the help desk)."""

    accounts: IdentityAccounts | None = None
    """The identity provider's accounts; the composition root attaches it (``iacs.wiring``)."""

    def disable_inactive(
        self, *, now: datetime | None = None, dry_run: bool = False
    ) -> InactivityReport:
        """Disable every enabled account with no sign-in within the period; the scheduler's call.

        Each disabled account gets an ``account.disabled_inactive`` audit record; one account
        that cannot be disabled is a problem in the report, the others are still handled.
        """
        accounts = self._identity_accounts()
        now = now or self.clock()
        cutoff = now - self.config.inactivity_period
        report = InactivityReport(dry_run=dry_run)
        recorded_since = accounts.sign_ins_recorded_since()
        if recorded_since is None or recorded_since > cutoff:
            report.problems.append(
                "Keycloak's login records go back only to "
                f"{recorded_since.isoformat() if recorded_since else 'nothing'}, not to "
                f"{cutoff.isoformat()}: nobody can be judged inactive yet"
            )
            return report
        with _directory_errors():
            reenabled, _ = self.directory.page_audit(
                action=REENABLED_ACTION, outcome="ok", since=cutoff, limit=10000
            )
        recently_reenabled = {record.subject for record in reenabled}
        for account in accounts.accounts(cutoff):
            if not account.enabled or account.username in recently_reenabled:
                continue
            latest = max(
                (t for t in (account.last_sign_in, account.created_at) if t is not None),
                default=None,
            )
            if latest is None or latest >= cutoff:
                continue
            if dry_run:
                report.disabled.append(account.username)
                continue
            try:
                accounts.set_enabled(account.username, False)
            except Unavailable as exc:
                report.problems.append(f"{account.username}: not disabled: {exc.message}")
                continue
            self._audit(
                "system",
                DISABLED_ACTION,
                "ok",
                None,
                f"no sign-in since {latest.date().isoformat()} "
                f"({self.config.inactivity_period.days} days allowed)",
                subject=account.username,
            )
            report.disabled.append(account.username)
        return report

    def reenable_account(self, username: str, holder: str) -> None:
        """The help desk re-enables an account disabled for inactivity (or any disabled one)."""
        actor = self.actor(username)
        holder = inputs.username("username", holder)
        self._require(actor, policy.may_reenable_account(actor), REENABLED_ACTION, subject=holder)
        with _directory_errors():
            if self.directory.get_person(holder) is None:
                raise NotFound("no such person")
        self._identity_accounts().set_enabled(holder, True)
        self._audit(actor.username, REENABLED_ACTION, "ok", None, "", subject=holder)

    def disabled_for_inactivity(self, username: str) -> list[tuple[str, datetime]]:
        """For the help desk: who is disabled for inactivity now (the latest record says so)."""
        actor = self.actor(username)
        self._require(actor, policy.may_reenable_account(actor), "list_inactive")
        with _directory_errors():
            disabled, _ = self.directory.page_audit(
                action=DISABLED_ACTION, outcome="ok", limit=10000
            )
            reenabled, _ = self.directory.page_audit(
                action=REENABLED_ACTION, outcome="ok", limit=10000
            )
        latest: dict[str, tuple[datetime, bool]] = {}
        for record, is_disabled in [(r, True) for r in disabled] + [(r, False) for r in reenabled]:
            if record.subject not in latest or latest[record.subject][0] < record.at:
                latest[record.subject] = (record.at, is_disabled)
        return sorted((who, at) for who, (at, is_disabled) in latest.items() if is_disabled)

    def _identity_accounts(self) -> IdentityAccounts:
        if self.accounts is None:
            raise Unavailable("no identity provider is configured for account lifecycle")
        return self.accounts
