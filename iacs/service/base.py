"""What every part of the service shares: the directory, the clock, the audit, the effects.

``AccessService`` (``iacs.service.access``) is assembled from the parts in ``requests``,
``decisions``, ``profiles`` and ``lifecycle``; each part is one meaning, and all of them reach the
directory only through the helpers here, so every write is audited and every error typed.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from iacs import policy
from iacs.directory import errors as directory_errors
from iacs.domain import (
    AuditRecord,
    EndReason,
    EntityStatus,
    Membership,
    Organization,
    ProviderType,
    Request,
    RequestKind,
    RequestStatus,
    ScopeKind,
    SurrogateGroup,
    UserGroup,
)
from iacs.enrollment import EnrollmentSource
from iacs.service import inputs
from iacs.service.errors import Conflict, NotFound, Unavailable, refusal
from iacs.service.facts import FactLoader
from iacs.service.ports import ServiceDirectory

log = logging.getLogger("iacs.service")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """The settings the service needs (a slice of ``PortalSettings``)."""

    request_ttl: timedelta = timedelta(days=30)
    recertification_period: timedelta = timedelta(days=365)
    blocked_provider_types: frozenset[str] = frozenset({ProviderType.DMEPOS.value})
    inactivity_period: timedelta = timedelta(days=60)
    """An account with no sign-in for this long is disabled (issue 10, item 4)."""


@dataclass
class MaintenanceReport:
    """What a maintenance or recovery pass did, and every entry it could not handle."""

    expired: int = 0
    closed: int = 0
    lapsed: int = 0
    completed: int = 0
    undone: int = 0
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = (
            f"expired {self.expired}, closed {self.closed}, lapsed {self.lapsed}, "
            f"completed {self.completed}, "
            f"undone {self.undone}, problems {len(self.problems)}"
        )
        return "\n".join([text, *(f"  problem: {problem}" for problem in self.problems)])


class ServiceBase:
    """The collaborators and the shared steps of every service operation."""

    def __init__(
        self,
        directory: ServiceDirectory,
        enrollment: EnrollmentSource,
        config: ServiceConfig | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.directory = directory
        self.enrollment = enrollment
        self.config = config or ServiceConfig()
        self.clock = clock
        self.on_change = on_change or (lambda: None)
        self.facts = FactLoader(directory, self.config.blocked_provider_types)

    def actor(self, username: str) -> policy.Actor:
        """The person with the memberships the directory holds for them now (DEC-2)."""
        username = inputs.username("username", username)
        with _directory_errors():
            return policy.Actor(username, self.directory.memberships_of(username))

    def _new_request(self, username: str, kind: RequestKind, **fields: Any) -> Request:
        now = self.clock()
        return Request(
            id=uuid.uuid4().hex,
            kind=kind,
            requester=inputs.username("username", username),
            created_at=now,
            expires_at=now + self.config.request_ttl,
            **fields,
        )

    def _grant(self, request: Request) -> None:
        """DEC-4: the effects of an approval; each step is idempotent so a retry completes it.

        The membership is written first: it needs only the scope's role group, which exists
        while the scope is pending, so a target that has gone fails here before anything was
        changed; the activation or association after it touches the same scope (or, for a
        Surrogate User Group, the organization that ``_undo_grant`` covers).
        """
        directory = self.directory
        membership = policy.granted_membership(request)
        if request.kind is RequestKind.INDIVIDUAL_PRACTITIONER:
            directory.create_practitioner_group(request.details["npi"])
        if membership is not None:
            directory.add_member(membership, request.requester)
        match request.kind:
            case RequestKind.REGISTER_ORGANIZATION:
                directory.set_organization_status(request.organization_id, EntityStatus.ACTIVE)
            case RequestKind.USER_GROUP_ADMINISTRATOR:
                directory.set_user_group_status(
                    request.organization_id, request.group_id, EntityStatus.ACTIVE
                )
            case RequestKind.REGISTER_SURROGATE_GROUP:
                directory.associate_surrogate(request.surrogate_group_id, request.organization_id)
                directory.set_surrogate_group_status(
                    request.surrogate_group_id, EntityStatus.ACTIVE
                )
            case RequestKind.SURROGATE_ASSOCIATION:
                directory.associate_surrogate(request.surrogate_group_id, request.organization_id)

    def _undo_grant(self, request: Request) -> bool:
        """Take back what ``_grant`` may have written, then put the request back to pending.

        Only the membership can outlive a failed grant (an activation fails only when its scope,
        and with it every membership in it, has gone). It is kept when another approved request
        grants the same role. True when the request is pending afterwards; False when another
        process completed the approval first (then its membership stays, rightly).
        """
        directory = self.directory
        current = directory.get_request(request.id)
        if current is None or current.grant_pending_since is None:
            return current is not None and current.status is RequestStatus.PENDING
        membership = policy.granted_membership(request)
        if membership is not None and not self._granted_elsewhere(request, membership):
            directory.remove_member(membership, request.requester)
        return directory.undo_approval(request.id)

    def _granted_elsewhere(self, request: Request, membership: Membership) -> bool:
        return any(
            other.id != request.id
            and other.ended_at is None
            and other.grant_pending_since is None
            and policy.granted_membership(other) == membership
            for other in self.directory.find_requests(
                requester=request.requester, status=RequestStatus.APPROVED
            )
        )

    def _discard_pending_entities(self, request: Request) -> None:
        """After a rejection or expiry, free the pending organization or group it had claimed.

        The requests that named the freed entity while it was pending (a BSO or UGA request of a
        pending organization, a UGA asking to join a pending group) can never be granted: they
        are closed too, rejected by the system with the reason, so none of them can later be
        approved against a new registration of the same organization or group. An entity that
        was approved meanwhile (another request's approval won) is kept.
        """
        directory = self.directory
        freed = ""
        dependents: list[Request] = []
        with contextlib.suppress(directory_errors.UnexpectedStatus, directory_errors.NotFound):
            if request.kind is RequestKind.REGISTER_ORGANIZATION:
                org = directory.get_organization(request.organization_id)
                if org is not None and org.status is EntityStatus.PENDING:
                    directory.delete_organization(request.organization_id)
                    freed = "the organization's registration was not approved"
                    dependents = directory.find_requests(
                        status=RequestStatus.PENDING, organization_id=request.organization_id
                    )
            elif request.kind is RequestKind.USER_GROUP_ADMINISTRATOR and request.details.get(
                "new_group"
            ):
                group = directory.get_user_group(request.organization_id, request.group_id)
                if group is not None and group.status is EntityStatus.PENDING:
                    directory.delete_user_group(request.organization_id, request.group_id)
                    freed = "the user group's registration was not approved"
                    dependents = directory.find_requests(
                        status=RequestStatus.PENDING,
                        organization_id=request.organization_id,
                        group_id=request.group_id,
                    )
            elif request.kind is RequestKind.REGISTER_SURROGATE_GROUP:
                sug = directory.get_surrogate_group(request.surrogate_group_id)
                if sug is not None and sug.status is EntityStatus.PENDING:
                    directory.delete_surrogate_group(request.surrogate_group_id)
                    freed = "the Surrogate User Group's registration was not approved"
                    dependents = directory.find_requests(
                        status=RequestStatus.PENDING, surrogate_group_id=request.surrogate_group_id
                    )
        for dependent in dependents:
            if dependent.id != request.id:
                self._close_dependent(dependent, freed)

    def _close_dependent(self, request: Request, why: str) -> bool:
        """Reject, as the system, a pending request whose target was freed (see above).

        False when someone decided it first."""
        reason = f"closed by the system: {why}"
        try:
            self.directory.decide_request(
                request.id,
                expected=RequestStatus.PENDING,
                new_status=RequestStatus.REJECTED,
                decided_by="system",
                decided_at=self.clock(),
                reason=reason,
            )
        except directory_errors.AlreadyDecided:
            return False
        self._audit("system", "close", "ok", request, reason)
        self._discard_pending_entities(request)
        return True

    def _end_membership(self, holder: str, membership: Membership, reason: EndReason) -> None:
        now = self.clock()
        self.directory.remove_member(membership, holder)
        for request in self.directory.find_requests(
            requester=holder, status=RequestStatus.APPROVED
        ):
            if request.ended_at is None and policy.granted_membership(request) == membership:
                self.directory.end_membership_record(request.id, now, reason)

    def _maintained(self, problems: list[str] | None, **criteria: Any) -> list[Request]:
        """The requests a pass works on; unreadable entries are reported and left out."""

        def corrupt(dn: str, error: directory_errors.InvalidEntry) -> None:
            _report(problems, f"{dn}: unreadable request entry skipped: {error}")

        with _directory_errors():
            return self.directory.find_requests(on_corrupt=corrupt, **criteria)

    def _get_request(self, request_id: str) -> Request:
        with _directory_errors():
            request = self.directory.get_request(request_id)
        if request is None:
            raise NotFound("no such request")
        return request

    def _organization(self, org_id: str) -> Organization:
        with _directory_errors():
            org = self.directory.get_organization(org_id)
        if org is None:
            raise NotFound("no such organization")
        return org

    def _user_group(self, org_id: str, group_id: str) -> UserGroup:
        with _directory_errors():
            group = self.directory.get_user_group(org_id, group_id)
        if group is None:
            raise NotFound("no such user group")
        return group

    def _surrogate_group(self, sug_id: str) -> SurrogateGroup:
        with _directory_errors():
            sug = self.directory.get_surrogate_group(sug_id)
        if sug is None:
            raise NotFound("no such surrogate group")
        return sug

    def _require(
        self,
        actor: policy.Actor,
        decision: policy.Decision,
        action: str,
        request: Request | None = None,
        **fields: str,
    ) -> None:
        """Refuse with ``Forbidden`` when the policy denied, after recording the refusal (AUD-1)."""
        if not decision.allowed:
            self._audit(actor.username, action, "denied", request, decision.reason, **fields)
            raise refusal(decision)

    def _audit(
        self,
        actor: str,
        action: str,
        outcome: str,
        request: Request | None,
        detail: str,
        **fields: str,
    ) -> None:
        """AUD-1: append one record; the audit subtree is append-only for the portal."""
        if request is not None:
            fields.setdefault("organization_id", request.organization_id)
            fields.setdefault("group_id", request.group_id)
            fields.setdefault("surrogate_group_id", request.surrogate_group_id)
            fields.setdefault("subject", request.requester)
        record = AuditRecord(
            id=uuid.uuid4().hex,
            at=self.clock(),
            actor=actor,
            action=action,
            outcome=outcome,
            request_id=request.id if request else "",
            detail=detail[:500],
            **fields,
        )
        with _directory_errors():
            self.directory.append_audit(record)


def _scope_fields(membership: Membership) -> dict[str, str]:
    match membership.scope_kind:
        case ScopeKind.ORGANIZATION:
            return {"organization_id": membership.scope_id}
        case ScopeKind.USER_GROUP:
            return {"organization_id": membership.organization_id, "group_id": membership.scope_id}
        case ScopeKind.SURROGATE_GROUP:
            return {"surrogate_group_id": membership.scope_id}
    return {}


def _describe(changes: dict[str, str], before: object | None = None) -> str:
    """A profile change for the audit: each changed field as ``name: "old" → "new"``.

    Without ``before`` (or when nothing changed) every given value is listed as it is now.
    """
    if before is not None:
        changed = [
            f'{key}: "{getattr(before, key, "")}" → "{value}"'
            for key, value in changes.items()
            if getattr(before, key, None) != value
        ]
        return "; ".join(changed) or "no change"
    return "; ".join(f"{key}={value}" for key, value in changes.items())


@contextlib.contextmanager
def _directory_errors() -> Iterator[None]:
    """Map the directory's errors to the service's: 503 unreachable, 404 gone, 409 raced.

    The 503 makes no claim about what was written: a write whose answer was lost may have
    landed. Callers that know better (a decision, see ``decisions``) say so themselves.
    """
    try:
        yield
    except directory_errors.DirectoryUnavailable as exc:
        raise Unavailable(
            "the directory is unavailable; reload to see the current state before trying again"
        ) from exc
    except directory_errors.NotFound as exc:
        raise NotFound("no such organization, group, person or request") from exc
    except directory_errors.UnexpectedStatus as exc:
        raise Conflict("the entry changed while you were deciding; reload and try again") from exc


@contextlib.contextmanager
def _each_entry(request: Request, what: str, problems: list[str] | None) -> Iterator[None]:
    """One entry of a maintenance pass: its failure is reported, and the pass goes on.

    slapd being unreachable is not one entry's problem: it stops the pass (503).
    """
    try:
        yield
    except directory_errors.DirectoryUnavailable as exc:
        raise Unavailable("the directory became unavailable during maintenance") from exc
    except directory_errors.DirectoryError as exc:
        _report(problems, f"request {request.id} ({request.kind.value}): {what} failed: {exc}")


def _report(problems: list[str] | None, problem: str) -> None:
    """Log and collect one problem (once: several passes may meet the same bad entry)."""
    if problems is not None and problem in problems:
        return
    log.error("maintenance problem", extra={"problem": problem})
    if problems is not None:
        problems.append(problem)
