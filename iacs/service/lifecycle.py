"""A role's lifecycle: revocation and resignation (LC-1), recertification (LC-3), LC-4."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from iacs import policy
from iacs.domain import (
    EndReason,
    EntityStatus,
    Membership,
    Request,
    RequestKind,
    RequestStatus,
    Role,
    ScopeKind,
)
from iacs.service import inputs
from iacs.service.base import ServiceBase, _directory_errors, _each_entry, _scope_fields
from iacs.service.errors import NotFound, RuleRefused
from iacs.service.inactivity import InactivityOperations, InactivityReport


class LifecycleOperations(ServiceBase):
    """Ending, recertifying and replacing roles."""

    def revoke(self, username: str, holder: str, membership: Membership, reason: str = "") -> None:
        """LC-1: end a role (revocation, or resignation when ``holder`` is the actor)."""
        holder = inputs.username("holder", holder)
        reason = inputs.reason("reason", reason, required=False)
        actor = self.actor(username)
        decision = policy.may_revoke(actor, holder, membership)
        action = "resign" if holder == actor.username else "revoke"
        self._require(actor, decision, action, None, subject=holder, **_scope_fields(membership))
        with _directory_errors():
            if membership not in self.directory.memberships_of(holder):
                raise NotFound("that person does not hold that role")
            end = EndReason.RESIGNED if action == "resign" else EndReason.REVOKED
            self._end_membership(holder, membership, end)
        self._audit(
            actor.username, action, "ok", None, reason, subject=holder, **_scope_fields(membership)
        )
        self.on_change()

    def end_association(self, username: str, sug_id: str, org_id: str) -> None:
        """LC-1/SUG-3: a provider stops working with a surrogate group (or the reverse)."""
        sug_id = inputs.entity_id("surrogate_group", sug_id)
        org_id = inputs.entity_id("organization", org_id)
        actor = self.actor(username)
        sug = self._surrogate_group(sug_id)
        decision = policy.may_end_association(actor, sug, org_id)
        self._require(
            actor, decision, "end_association", organization_id=org_id, surrogate_group_id=sug_id
        )
        with _directory_errors():
            self.directory.dissociate_surrogate(sug_id, org_id)
        self._audit(
            actor.username,
            "end_association",
            "ok",
            None,
            "",
            organization_id=org_id,
            surrogate_group_id=sug_id,
        )
        self.on_change()

    def recertify(self, username: str, request_id: str) -> Request:
        """LC-3: confirm a role is still needed, restarting its recertification period."""
        actor = self.actor(username)
        request = self._get_request(inputs.request_id("request", request_id))
        now = self.clock()
        with _directory_errors():
            facts = self.facts.for_request(request)
        decision = policy.may_recertify(actor, request.requester, request, facts, now)
        self._require(actor, decision, "recertify", request)
        with _directory_errors():
            self.directory.set_recertified(request.id, now)
        self._audit(actor.username, "recertify", "ok", request, "")
        return replace(request, recertified_at=now)

    def replace_security_official(
        self, username: str, org_id: str, successor: str, reason: str = ""
    ) -> Request:
        """LC-4: the help desk names a new Security Official; the old one's role ends.

        A successor who was a Backup Security Official of the organization stops being one:
        BSO-3 draws the BSO's authority inside the SO's, and holding both would leave a BSO
        role behind when they later hand the SO role on.
        """
        org_id = inputs.entity_id("organization", org_id)
        successor = inputs.username("successor", successor)
        reason = inputs.reason("reason", reason, required=False)
        actor = self.actor(username)
        decision = policy.may_replace_security_official(actor)
        self._require(
            actor, decision, "replace_security_official", organization_id=org_id, subject=successor
        )
        org = self._organization(org_id)
        if org.status is not EntityStatus.ACTIVE:
            raise RuleRefused("the organization is not active", rule="LC-4")
        with _directory_errors():
            if self.directory.get_person(successor) is None:
                raise NotFound("no such person")
            so = Membership(Role.SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, org_id)
            for holder in self.directory.members_of(so):
                self._end_membership(holder, so, EndReason.REPLACED)
            bso = Membership(Role.BACKUP_SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, org_id)
            if bso in self.directory.memberships_of(successor):
                self._end_membership(successor, bso, EndReason.REPLACED)
            now = self.clock()
            request = replace(
                self._new_request(
                    successor,
                    RequestKind.REGISTER_ORGANIZATION,
                    organization_id=org_id,
                    details={"replaces_security_official": "true"},
                ),
                status=RequestStatus.APPROVED,
                decided_by=actor.username,
                decided_at=now,
                reason=reason or "replacement of the Security Official by the help desk (LC-4)",
            )
            self.directory.add_request(request)
            self.directory.add_member(so, successor)
        self._audit(
            actor.username, "replace_security_official", "ok", request, reason, subject=successor
        )
        self.on_change()
        return request

    def lapse_unrecertified(self, problems: list[str] | None = None) -> int:
        """LC-3: end every role whose recertification is overdue; returns how many.

        One request that cannot be handled is reported in ``problems`` (and logged); the
        others are still handled.
        """
        now = self.clock()
        period = self.config.recertification_period
        count = 0
        for request in self._maintained(problems, status=RequestStatus.APPROVED):
            if request.ended_at is not None:
                continue
            membership = policy.granted_membership(request)
            if membership is None:
                continue
            since = request.recertified_at or request.decided_at or request.created_at
            if since + period > now:
                continue
            with _each_entry(request, "lapse", problems):
                self.directory.remove_member(membership, request.requester)
                self.directory.end_membership_record(request.id, now, EndReason.LAPSED)
                self._audit(
                    "system",
                    "lapse",
                    "ok",
                    request,
                    "not recertified in time",
                    subject=request.requester,
                )
                count += 1
        if count:
            self.on_change()
        return count


def disable_inactive(
    service: InactivityOperations, *, now: datetime | None = None, dry_run: bool = False
) -> InactivityReport:
    """The scheduler's entry point for inactivity (issue 10, item 4): see
    ``iacs.service.inactivity``. Disables, in Keycloak, every account without a sign-in for the
    configured period and records ``account.disabled_inactive`` in the audit for each."""
    return service.disable_inactive(now=now, dry_run=dry_run)
