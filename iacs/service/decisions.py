"""Deciding requests once (DEC-3) by someone with authority now (DEC-2), and their effects.

An approval either takes full effect or changes nothing (DEC-4). Its compare-and-swap marks the
request approved *and* "grant pending" in one modify; the membership and the activation are
written after it, and the marker removed last. When that sequence is cut short (slapd gone, the
process killed), the request keeps its marker, and ``recover_interrupted_approvals`` (run every
few seconds by each portal process, see ``iacs.wiring.ApprovalRecovery``) finishes the grant, or
puts the request back to pending when its target has gone. Both are idempotent and guarded by
the marker, so any number of portal processes may run the pass at once. A target that has gone
before the decision (a group whose registration was rejected) is found before anything is
written: 422 ``target_gone``, and the request stays pending.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta

from iacs import policy
from iacs.directory import errors as directory_errors
from iacs.domain import (
    Request,
    RequestKind,
    RequestStatus,
    ScopeKind,
)
from iacs.service import inputs
from iacs.service.base import ServiceBase, _directory_errors, _each_entry
from iacs.service.errors import Conflict, NotFound, RuleRefused, Unavailable, refusal

RECOVERY_GRACE = timedelta(seconds=5)
"""How old a "grant pending" marker must be before the recovery pass takes the approval over:
well beyond a decision's own few writes (milliseconds), so a decision in flight finishes itself."""


class DecisionOperations(ServiceBase):
    """Approving and rejecting, the approval queue, expiry and completing cut-short approvals."""

    def decide(self, username: str, request_id: str, *, approve: bool, reason: str = "") -> Request:
        """Approve or reject a pending request, once (DEC-3), by someone with authority (DEC-2).

        Errors say what happened: 409 ``already_decided``, 422 ``target_gone`` (nothing was
        changed, the request is still pending), 503 ``directory_unavailable`` before anything
        was written, 503 ``decision_outcome_unknown`` when the decision's write got no answer,
        503 ``grant_pending`` when the approval was recorded but not all its effects.
        """
        request_id = inputs.request_id("request", request_id)
        reason = inputs.reason("reason", reason, required=not approve)
        actor = self.actor(username)
        request = self._get_request(request_id)
        now = self.clock()
        with _nothing_written():
            facts = self.facts.for_request(request)
        decision = policy.may_decide(actor, request, facts, now)
        outcome = RequestStatus.APPROVED if approve else RequestStatus.REJECTED
        if not decision.allowed:
            self._audit(
                actor.username, f"decide:{outcome.value}", "denied", request, decision.reason
            )
            already = decision.kind is policy.Refusal.CONFLICT
            raise refusal(decision, code="already_decided" if already else None)
        if approve:
            with _nothing_written():
                gone = self._missing_target(request, facts)
            if gone:
                self._audit(actor.username, "decide:approved", "refused", request, gone)
                raise _target_gone(gone)
        decided = replace(
            request,
            status=outcome,
            decided_by=actor.username,
            decided_at=now,
            reason=reason,
            grant_pending_since=now if approve else None,
        )
        self._record_decision(decided)
        if approve:
            self._take_effect(decided)
        else:
            self._after_rejection(decided)
        self.on_change()
        return replace(decided, grant_pending_since=None)

    def _missing_target(self, request: Request, facts: policy.Facts) -> str:
        """Why the approval could not take effect now ("" when it can): checked before any write."""
        if self.directory.get_person(request.requester) is None:
            return "the requester's account no longer exists"
        match request.kind:
            case RequestKind.REGISTER_ORGANIZATION if facts.organization is None:
                return "the organization this registration created no longer exists"
            case RequestKind.USER_GROUP_ADMINISTRATOR if facts.user_group is None:
                return "the user group no longer exists (its registration was not approved)"
            case (
                RequestKind.REGISTER_SURROGATE_GROUP
                | RequestKind.SURROGATE_ADMINISTRATOR
                | RequestKind.SURROGATE_END_USER
                | RequestKind.SURROGATE_ASSOCIATION
            ) if facts.surrogate_group is None:
                return "the Surrogate User Group no longer exists"
        if request.organization_id and facts.organization is None:
            return "the organization it names no longer exists"
        return ""

    def _record_decision(self, decided: Request) -> None:
        """The compare-and-swap (DEC-3), with the marker when it is an approval."""
        assert decided.decided_at is not None  # set by the decision that made ``decided``
        try:
            self.directory.decide_request(
                decided.id,
                expected=RequestStatus.PENDING,
                new_status=decided.status,
                decided_by=decided.decided_by,
                decided_at=decided.decided_at,
                reason=decided.reason,
                grant_pending=decided.grant_pending_since is not None,
            )
        except directory_errors.AlreadyDecided:
            raise Conflict(
                "this request was decided by someone else a moment ago",
                rule="DEC-3",
                code="already_decided",
            ) from None
        except directory_errors.DirectoryUnavailable as exc:
            raise Unavailable(
                "the directory failed while the decision was being recorded, so it may or may "
                "not have been recorded; an approval that was recorded is completed by the "
                "system within seconds. Reload the request to see its status before deciding "
                "again",
                code="decision_outcome_unknown",
            ) from exc
        except directory_errors.DirectoryError as exc:
            with _directory_errors():
                raise exc

    def _take_effect(self, decided: Request) -> None:
        """Write the approval's effects, record it, remove the marker; or undo it (DEC-4)."""
        try:
            self._grant(decided)
        except directory_errors.NotFound as exc:
            # The target went between the check and the grant (a concurrent rejection).
            try:
                undone = self._undo_grant(decided)
            except directory_errors.DirectoryError:
                undone = False
            if not undone:
                raise _grant_pending("its target went meanwhile") from exc
            with contextlib.suppress(Unavailable):  # the refusal stands even if its record fails
                self._audit(
                    decided.decided_by, "decide:approved", "refused", decided, "target gone"
                )
            raise _target_gone("its target went while it was being approved") from exc
        except directory_errors.DirectoryError as exc:
            raise _grant_pending(str(exc)) from exc
        try:
            self._audit(decided.decided_by, "decide:approved", "ok", decided, decided.reason)
            self.directory.finish_grant(decided.id)
        except (directory_errors.DirectoryError, Unavailable) as exc:
            raise Unavailable(
                "the approval and its membership were written, but the directory failed before "
                "the decision's record was finished; the system finishes it within seconds",
                code="grant_pending",
            ) from exc

    def _after_rejection(self, decided: Request) -> None:
        try:
            self._discard_pending_entities(decided)
            self._audit(decided.decided_by, "decide:rejected", "ok", decided, decided.reason)
        except (directory_errors.DirectoryError, Unavailable) as exc:
            raise Unavailable(
                "the request was rejected, but the directory failed before the pending "
                "organization or group it had claimed was freed, or before the decision was "
                "recorded in the audit: reload the request; a pending organization or group it "
                "had claimed may be left for an operator to remove",
                code="directory_unavailable",
            ) from exc

    def approval_queue(self, username: str) -> list[Request]:
        """Exactly the pending requests this person may decide now.

        Candidates are read per scope the person holds (an index lookup each), never the whole
        pending pile; the policy then decides each candidate exactly as ``decide`` would.
        """
        actor = self.actor(username)
        now = self.clock()
        with _directory_errors():
            candidates = {r.id: r for r in self._queue_candidates(actor)}
            queue = [
                request
                for request in candidates.values()
                if policy.may_decide(actor, request, self.facts.for_request(request), now).allowed
            ]
        return sorted(queue, key=lambda r: r.created_at)

    def _queue_candidates(self, actor: policy.Actor) -> Iterator[Request]:
        """Pending requests in the scopes of the actor's memberships: a superset of the queue."""
        find = self.directory.find_requests
        pending = RequestStatus.PENDING
        if actor.is_help_desk:
            yield from find(
                status=pending,
                kind=(RequestKind.REGISTER_ORGANIZATION, RequestKind.INDIVIDUAL_PRACTITIONER),
            )
        for membership in actor.memberships:
            match membership.scope_kind:
                case ScopeKind.ORGANIZATION:
                    org_id = membership.scope_id
                    yield from find(status=pending, organization_id=org_id)
                    for sug in self.directory.list_surrogate_groups(organization_id=org_id):
                        yield from find(
                            status=pending,
                            surrogate_group_id=sug.id,
                            kind=RequestKind.SURROGATE_ADMINISTRATOR,
                        )
                case ScopeKind.USER_GROUP:
                    yield from find(
                        status=pending,
                        kind=RequestKind.END_USER,
                        organization_id=membership.organization_id,
                        group_id=membership.scope_id,
                    )
                case ScopeKind.SURROGATE_GROUP:
                    yield from find(
                        status=pending,
                        kind=RequestKind.SURROGATE_END_USER,
                        surrogate_group_id=membership.scope_id,
                    )

    def get_request(self, username: str, request_id: str) -> Request:
        """A request, visible to its requester and to whoever may decide or audit it."""
        actor = self.actor(username)
        request = self._get_request(inputs.request_id("request", request_id))
        with _directory_errors():
            facts = self.facts.for_request(request)
        if policy.may_view_request(actor, request, facts).allowed:
            return request
        raise NotFound("no such request")

    def my_requests(self, username: str) -> list[Request]:
        username = inputs.username("username", username)
        with _directory_errors():
            requests = self.directory.find_requests(requester=username)
        return sorted(requests, key=lambda r: r.created_at, reverse=True)

    def expire_pending(self, problems: list[str] | None = None) -> int:
        """LC-2: mark pending requests past their expiry as expired; returns how many.

        One request that cannot be handled is reported in ``problems`` (and logged); the
        others are still handled.
        """
        now = self.clock()
        count = 0
        for request in self._maintained(problems, status=RequestStatus.PENDING):
            if request.expires_at > now:
                continue
            with _each_entry(request, "expire", problems):
                try:
                    self.directory.decide_request(
                        request.id,
                        expected=RequestStatus.PENDING,
                        new_status=RequestStatus.EXPIRED,
                        decided_by="system",
                        decided_at=now,
                        reason="expired unanswered",
                    )
                except directory_errors.AlreadyDecided:
                    continue
                self._discard_pending_entities(request)
                self._audit("system", "expire", "ok", request, "")
                count += 1
        return count

    def recover_interrupted_approvals(
        self, older_than: timedelta = RECOVERY_GRACE, problems: list[str] | None = None
    ) -> tuple[int, int]:
        """Finish, or undo, every approval still marked "grant pending" since before
        ``older_than`` ago; returns (completed, undone).

        Completing re-runs the idempotent grant and removes the marker; the process whose
        removal wins writes the audit record, so several portal processes running this at once
        complete each approval once. An approval whose target has gone is undone: its
        membership (if written) removed and the request put back to pending, decidable again.
        """
        completed = undone = 0
        cutoff = self.clock() - older_than
        marked = self._maintained(
            problems, status=RequestStatus.APPROVED, grant_pending_before=cutoff
        )
        for request in marked:
            with _each_entry(request, "recover", problems):
                try:
                    self._grant(request)
                except directory_errors.NotFound as exc:
                    if self._undo_grant(request):
                        undone += 1
                        self._audit(
                            "system",
                            "undo_approval",
                            "ok",
                            request,
                            f"approved by {request.decided_by}, but its target has gone "
                            f"({exc}); the request is pending again",
                        )
                    continue
                if self.directory.finish_grant(request.id):
                    completed += 1
                    self._audit(
                        "system",
                        "complete_approval",
                        "ok",
                        request,
                        f"approved by {request.decided_by}; its effects were completed after "
                        "an interruption",
                    )
        if completed or undone:
            self.on_change()
        return completed, undone

    def close_orphaned_requests(self, problems: list[str] | None = None) -> int:
        """Close, as the system, pending requests whose target has gone; returns how many.

        A rejection closes the requests that named what it freed (``_discard_pending_entities``),
        but one cut short, a request filed at that very moment, or an operator's deletion can
        leave some behind. They could never be approved (``decide`` answers 422 ``target_gone``),
        so they are rejected with the reason rather than left in the queues until they expire.
        """
        count = 0
        for request in self._maintained(problems, status=RequestStatus.PENDING):
            with _each_entry(request, "close", problems):
                gone = self._missing_target(request, self.facts.for_request(request))
                if gone and self._close_dependent(request, gone):
                    count += 1
        return count

    def complete_interrupted_approvals(self, problems: list[str] | None = None) -> int:
        """Nothing approved is lost: re-apply the effects of approvals a failure cut short.

        Covers approvals made before the "grant pending" marker existed (the marked ones are
        the recovery pass's); one that cannot be completed is reported, and the rest go on.
        """
        count = 0
        for request in self._maintained(problems, status=RequestStatus.APPROVED):
            membership = policy.granted_membership(request)
            if (
                request.ended_at is not None
                or request.grant_pending_since is not None
                or membership is None
            ):
                continue
            with _each_entry(request, "complete", problems):
                if membership not in self.directory.memberships_of(request.requester):
                    self._grant(request)
                    count += 1
        return count


def _target_gone(why: str) -> RuleRefused:
    return RuleRefused(
        f"this request cannot be approved: {why}. Nothing was changed; the request is still "
        "pending (reject it, or let it expire)",
        rule="DEC-4",
        code="target_gone",
    )


def _grant_pending(detail: str) -> Unavailable:
    return Unavailable(
        "the approval was recorded, but the directory failed before all its effects were "
        "written; the system completes it (or, if its target has gone, puts the request back "
        f"to pending) within seconds. Reload the request to see the outcome ({detail})",
        code="grant_pending",
    )


@contextmanager
def _nothing_written() -> Iterator[None]:
    """Reads before a decision's first write: a 503 here truthfully says nothing changed."""
    try:
        with _directory_errors():
            yield
    except Unavailable as exc:
        raise Unavailable(
            "the directory is unavailable; nothing was changed", code="directory_unavailable"
        ) from exc.__cause__
