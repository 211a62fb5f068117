"""Deciding requests once (DEC-3) by someone with authority now (DEC-2), and their effects."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from iacs import policy
from iacs.directory import errors as directory_errors
from iacs.domain import (
    Request,
    RequestKind,
    RequestStatus,
    ScopeKind,
)
from iacs.service import inputs
from iacs.service.base import ServiceBase, _directory_errors
from iacs.service.errors import Conflict, Forbidden, NotFound


class DecisionOperations(ServiceBase):
    """Approving and rejecting, the approval queue, expiry and completing cut-short approvals."""

    def decide(self, username: str, request_id: str, *, approve: bool, reason: str = "") -> Request:
        """Approve or reject a pending request, once (DEC-3), by someone with authority (DEC-2)."""
        request_id = inputs.request_id("request", request_id)
        reason = inputs.reason("reason", reason, required=not approve)
        actor = self.actor(username)
        request = self._get_request(request_id)
        now = self.clock()
        with _directory_errors():
            facts = self.facts.for_request(request)
        decision = policy.may_decide(actor, request, facts, now)
        outcome = RequestStatus.APPROVED if approve else RequestStatus.REJECTED
        if not decision.allowed:
            self._audit(
                actor.username, f"decide:{outcome.value}", "denied", request, decision.reason
            )
            if decision.rule == "DEC-3":
                raise Conflict(decision.reason, rule="DEC-3", code="already_decided")
            raise Forbidden.from_decision(decision)
        with _directory_errors():
            try:
                self.directory.decide_request(
                    request.id,
                    expected=RequestStatus.PENDING,
                    new_status=outcome,
                    decided_by=actor.username,
                    decided_at=now,
                    reason=reason,
                )
            except directory_errors.AlreadyDecided:
                raise Conflict(
                    "this request was decided by someone else a moment ago",
                    rule="DEC-3",
                    code="already_decided",
                ) from None
            decided = replace(
                request, status=outcome, decided_by=actor.username, decided_at=now, reason=reason
            )
            if approve:
                self._grant(decided)
            else:
                self._discard_pending_entities(decided)
        self._audit(actor.username, f"decide:{outcome.value}", "ok", decided, reason)
        self.on_change()
        return decided

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
        if request.requester == actor.username or actor.is_help_desk:
            return request
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

    def expire_pending(self) -> int:
        """LC-2: mark pending requests past their expiry as expired; returns how many."""
        now = self.clock()
        count = 0
        with _directory_errors():
            for request in self.directory.find_requests(status=RequestStatus.PENDING):
                if request.expires_at > now:
                    continue
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

    def complete_interrupted_approvals(self) -> int:
        """Nothing approved is lost: re-apply the effects of approvals a failure cut short."""
        count = 0
        with _directory_errors():
            for request in self.directory.find_requests(status=RequestStatus.APPROVED):
                membership = policy.granted_membership(request)
                if request.ended_at is not None or membership is None:
                    continue
                if membership not in self.directory.memberships_of(request.requester):
                    self._grant(request)
                    count += 1
        return count
