"""The one path to every decision: load facts, ask the policy, write the directory, record it.

Pages and the JSON API both call ``AccessService``; nothing else writes role memberships. Every
method re-reads the actor's memberships from the directory (DEC-2), refuses with a typed
``ServiceError`` that changed nothing, and appends an audit record for every request, decision,
revocation and profile change, including the refused ones (AUD-1).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

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
    Role,
    ScopeKind,
    SurrogateGroup,
    UserGroup,
    organization_id,
    slug,
)
from iacs.enrollment import EnrollmentSource, is_eligible
from iacs.service import inputs
from iacs.service.errors import Conflict, Forbidden, NotFound, RuleRefused, Unavailable
from iacs.service.facts import FactLoader


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """The settings the service needs (a slice of ``PortalSettings``)."""

    request_ttl: timedelta = timedelta(days=30)
    recertification_period: timedelta = timedelta(days=365)
    blocked_provider_types: frozenset[str] = frozenset({ProviderType.DMEPOS.value})


class AccessService:
    """Requests, decisions, revocations and profiles, enforced by ``iacs.policy``."""

    def __init__(
        self,
        directory,
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

    # ------------------------------------------------------------------ who is asking

    def actor(self, username: str) -> policy.Actor:
        """The person with the memberships the directory holds for them now (DEC-2)."""
        username = inputs.username("username", username)
        with _directory_errors():
            return policy.Actor(username, self.directory.memberships_of(username))

    # ------------------------------------------------------------------ submitting requests

    def register_organization(
        self,
        username: str,
        *,
        name: str,
        identifier: str,
        provider_type: str,
        address: str = "",
        phone: str = "",
    ) -> Request:
        """ORG-1: the Security Official's registration creates the (pending) organization."""
        digits = inputs.identifier("identifier", identifier)
        details = {
            "name": inputs.text("name", name),
            "identifier": digits,
            "provider_type": inputs.provider_type("provider_type", provider_type),
            "address": inputs.text("address", address, max_length=300, required=False),
            "phone": inputs.text("phone", phone, max_length=40, required=False),
        }
        org_id = organization_id(digits)
        request = self._new_request(
            username, RequestKind.REGISTER_ORGANIZATION, organization_id=org_id, details=details
        )
        organization = Organization(
            org_id,
            details["name"],
            digits,
            ProviderType(details["provider_type"]),
            EntityStatus.PENDING,
            details["address"],
            details["phone"],
        )
        return self._submit(request, create=lambda: self._create_organization(organization))

    def request_backup_security_official(self, username: str, org_id: str) -> Request:
        request = self._new_request(
            username,
            RequestKind.BACKUP_SECURITY_OFFICIAL,
            organization_id=inputs.entity_id("organization", org_id),
        )
        return self._submit(request)

    def request_user_group_administrator(
        self,
        username: str,
        org_id: str,
        *,
        group_name: str = "",
        group_id: str = "",
        description: str = "",
    ) -> Request:
        """UGA-1: name a new group (``group_name``) or join an existing one (``group_id``)."""
        org_id = inputs.entity_id("organization", org_id)
        if group_name:
            name = inputs.text("group_name", group_name, max_length=80)
            new_id = slug(name)
            if not new_id:
                raise inputs.InvalidInput("group_name", "must contain letters or digits")
            details = {
                "new_group": "true",
                "group_name": name,
                "description": inputs.text(
                    "description", description, max_length=300, required=False
                ),
            }
            request = self._new_request(
                username,
                RequestKind.USER_GROUP_ADMINISTRATOR,
                organization_id=org_id,
                group_id=new_id,
                details=details,
            )
            group = UserGroup(new_id, org_id, name, details["description"])
            return self._submit(request, create=lambda: self._create_user_group(group))
        request = self._new_request(
            username,
            RequestKind.USER_GROUP_ADMINISTRATOR,
            organization_id=org_id,
            group_id=inputs.entity_id("group", group_id),
        )
        return self._submit(request)

    def request_end_user(self, username: str, org_id: str, group_id: str) -> Request:
        request = self._new_request(
            username,
            RequestKind.END_USER,
            organization_id=inputs.entity_id("organization", org_id),
            group_id=inputs.entity_id("group", group_id),
        )
        return self._submit(request)

    def register_surrogate_group(
        self, username: str, org_id: str, *, name: str, description: str = ""
    ) -> Request:
        """SUG-1: the first registrant of a Surrogate User Group is its UGA, for one provider."""
        org_id = inputs.entity_id("organization", org_id)
        name = inputs.text("name", name, max_length=80)
        sug_id = slug(name)
        if not sug_id:
            raise inputs.InvalidInput("name", "must contain letters or digits")
        details = {
            "name": name,
            "description": inputs.text("description", description, max_length=300, required=False),
        }
        request = self._new_request(
            username,
            RequestKind.REGISTER_SURROGATE_GROUP,
            organization_id=org_id,
            surrogate_group_id=sug_id,
            details=details,
        )
        sug = SurrogateGroup(sug_id, name, details["description"])
        return self._submit(request, create=lambda: self._create_surrogate_group(sug))

    def request_surrogate_administrator(self, username: str, sug_id: str) -> Request:
        request = self._new_request(
            username,
            RequestKind.SURROGATE_ADMINISTRATOR,
            surrogate_group_id=inputs.entity_id("surrogate_group", sug_id),
        )
        return self._submit(request)

    def request_surrogate_end_user(self, username: str, sug_id: str) -> Request:
        request = self._new_request(
            username,
            RequestKind.SURROGATE_END_USER,
            surrogate_group_id=inputs.entity_id("surrogate_group", sug_id),
        )
        return self._submit(request)

    def request_surrogate_association(self, username: str, sug_id: str, org_id: str) -> Request:
        request = self._new_request(
            username,
            RequestKind.SURROGATE_ASSOCIATION,
            organization_id=inputs.entity_id("organization", org_id),
            surrogate_group_id=inputs.entity_id("surrogate_group", sug_id),
        )
        return self._submit(request)

    def request_individual_practitioner(self, username: str, npi: str) -> Request:
        npi = inputs.npi("npi", npi)
        request = self._new_request(
            username, RequestKind.INDIVIDUAL_PRACTITIONER, details={"npi": npi}
        )
        return self._submit(request)

    # ------------------------------------------------------------------ deciding

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
        """Exactly the pending requests this person may decide now."""
        actor = self.actor(username)
        now = self.clock()
        with _directory_errors():
            pending = self.directory.find_requests(status=RequestStatus.PENDING)
            queue = []
            for request in pending:
                if not _could_concern(actor, request):
                    continue
                facts = self.facts.for_request(request)
                if policy.may_decide(actor, request, facts, now).allowed:
                    queue.append(request)
        return sorted(queue, key=lambda r: r.created_at)

    def get_request(self, username: str, request_id: str) -> Request:
        """A request, visible to its requester and to whoever may decide or audit it."""
        actor = self.actor(username)
        request = self._get_request(inputs.request_id("request", request_id))
        if request.requester == actor.username or actor.is_help_desk:
            return request
        if request.organization_id and policy.may_view_organization(actor, request.organization_id):
            return request
        if request.surrogate_group_id and actor.is_surrogate_administrator(
            request.surrogate_group_id
        ):
            return request
        raise NotFound("no such request")

    def my_requests(self, username: str) -> list[Request]:
        username = inputs.username("username", username)
        with _directory_errors():
            requests = self.directory.find_requests(requester=username)
        return sorted(requests, key=lambda r: r.created_at, reverse=True)

    # ------------------------------------------------------------------ profiles

    def update_organization_profile(
        self, username: str, org_id: str, **fields: str
    ) -> Organization:
        """ORG-5: the SO (and the help desk) update the organization's profile."""
        org_id = inputs.entity_id("organization", org_id)
        actor = self.actor(username)
        org = self._organization(org_id)
        changes = {
            "name": inputs.text("name", fields.get("name", org.name)),
            "address": inputs.text(
                "address", fields.get("address", org.address), max_length=300, required=False
            ),
            "phone": inputs.text(
                "phone", fields.get("phone", org.phone), max_length=40, required=False
            ),
        }
        decision = policy.may_update_organization_profile(actor, org_id)
        if not decision.allowed:
            self._audit(
                actor.username,
                "update_profile",
                "denied",
                None,
                decision.reason,
                organization_id=org_id,
            )
            raise Forbidden.from_decision(decision)
        with _directory_errors():
            self.directory.update_organization_profile(org_id, **changes)
        self._audit(
            actor.username, "update_profile", "ok", None, _describe(changes), organization_id=org_id
        )
        return replace(org, **changes)

    def update_group_profile(
        self, username: str, org_id: str, group_id: str, **fields: str
    ) -> UserGroup:
        """UGA-3: a UGA of the group, the SO/BSOs and the help desk update its profile."""
        org_id = inputs.entity_id("organization", org_id)
        group_id = inputs.entity_id("group", group_id)
        actor = self.actor(username)
        group = self._user_group(org_id, group_id)
        changes = {
            "name": inputs.text("name", fields.get("name", group.name), max_length=80),
            "description": inputs.text(
                "description",
                fields.get("description", group.description),
                max_length=300,
                required=False,
            ),
        }
        decision = policy.may_update_group_profile(actor, org_id, group_id)
        if not decision.allowed:
            self._audit(
                actor.username,
                "update_group_profile",
                "denied",
                None,
                decision.reason,
                organization_id=org_id,
                group_id=group_id,
            )
            raise Forbidden.from_decision(decision)
        with _directory_errors():
            self.directory.update_user_group_profile(org_id, group_id, **changes)
        self._audit(
            actor.username,
            "update_group_profile",
            "ok",
            None,
            _describe(changes),
            organization_id=org_id,
            group_id=group_id,
        )
        return replace(group, **changes)

    def update_surrogate_profile(self, username: str, sug_id: str, **fields: str) -> SurrogateGroup:
        sug_id = inputs.entity_id("surrogate_group", sug_id)
        actor = self.actor(username)
        sug = self._surrogate_group(sug_id)
        changes = {
            "name": inputs.text("name", fields.get("name", sug.name), max_length=80),
            "description": inputs.text(
                "description",
                fields.get("description", sug.description),
                max_length=300,
                required=False,
            ),
        }
        decision = policy.may_update_surrogate_profile(actor, sug_id)
        if not decision.allowed:
            self._audit(
                actor.username,
                "update_surrogate_profile",
                "denied",
                None,
                decision.reason,
                surrogate_group_id=sug_id,
            )
            raise Forbidden.from_decision(decision)
        with _directory_errors():
            self.directory.update_surrogate_group_profile(sug_id, **changes)
        self._audit(
            actor.username,
            "update_surrogate_profile",
            "ok",
            None,
            _describe(changes),
            surrogate_group_id=sug_id,
        )
        return replace(sug, **changes)

    # ------------------------------------------------------------------ lifecycle

    def revoke(self, username: str, holder: str, membership: Membership, reason: str = "") -> None:
        """LC-1: end a role (revocation, or resignation when ``holder`` is the actor)."""
        holder = inputs.username("holder", holder)
        reason = inputs.reason("reason", reason, required=False)
        actor = self.actor(username)
        decision = policy.may_revoke(actor, holder, membership)
        action = "resign" if holder == actor.username else "revoke"
        if not decision.allowed:
            self._audit(
                actor.username,
                action,
                "denied",
                None,
                decision.reason,
                subject=holder,
                **_scope_fields(membership),
            )
            raise Forbidden.from_decision(decision)
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
        if not decision.allowed:
            self._audit(
                actor.username,
                "end_association",
                "denied",
                None,
                decision.reason,
                organization_id=org_id,
                surrogate_group_id=sug_id,
            )
            raise Forbidden.from_decision(decision)
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
        if not decision.allowed:
            self._audit(actor.username, "recertify", "denied", request, decision.reason)
            raise Forbidden.from_decision(decision)
        with _directory_errors():
            self.directory.set_recertified(request.id, now)
        self._audit(actor.username, "recertify", "ok", request, "")
        return replace(request, recertified_at=now)

    def replace_security_official(self, username: str, org_id: str, successor: str) -> Request:
        """LC-4: the help desk names a new Security Official; the old one's role ends."""
        org_id = inputs.entity_id("organization", org_id)
        successor = inputs.username("successor", successor)
        actor = self.actor(username)
        decision = policy.may_replace_security_official(actor)
        if not decision.allowed:
            self._audit(
                actor.username,
                "replace_security_official",
                "denied",
                None,
                decision.reason,
                organization_id=org_id,
                subject=successor,
            )
            raise Forbidden.from_decision(decision)
        org = self._organization(org_id)
        if org.status is not EntityStatus.ACTIVE:
            raise RuleRefused("the organization is not active", rule="LC-4")
        with _directory_errors():
            if self.directory.get_person(successor) is None:
                raise NotFound("no such person")
            so = Membership(Role.SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, org_id)
            for holder in self.directory.members_of(so):
                self._end_membership(holder, so, EndReason.REPLACED)
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
                reason="replacement of the Security Official by the help desk (LC-4)",
            )
            self.directory.add_request(request)
            self.directory.add_member(so, successor)
        self._audit(
            actor.username, "replace_security_official", "ok", request, "", subject=successor
        )
        self.on_change()
        return request

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

    def lapse_unrecertified(self) -> int:
        """LC-3: end every role whose recertification is overdue; returns how many."""
        now = self.clock()
        period = self.config.recertification_period
        count = 0
        with _directory_errors():
            for request in self.directory.find_requests(status=RequestStatus.APPROVED):
                if request.ended_at is not None:
                    continue
                membership = policy.granted_membership(request)
                if membership is None:
                    continue
                since = request.recertified_at or request.decided_at or request.created_at
                if since + period > now:
                    continue
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

    # ------------------------------------------------------------------ internals

    def _new_request(self, username: str, kind: RequestKind, **fields) -> Request:
        now = self.clock()
        return Request(
            id=uuid.uuid4().hex,
            kind=kind,
            requester=inputs.username("username", username),
            created_at=now,
            expires_at=now + self.config.request_ttl,
            **fields,
        )

    def _submit(self, request: Request, create: Callable[[], None] | None = None) -> Request:
        """Check the policy, claim any new entity atomically, then file the request."""
        with _directory_errors():
            requester = policy.Actor(
                request.requester, self.directory.memberships_of(request.requester)
            )
            facts = self.facts.for_submission(request, requester.memberships, self._eligible)
        decision = policy.may_submit(requester, request, facts)
        if not decision.allowed:
            self._audit(
                request.requester,
                f"request:{request.kind.value}",
                "refused",
                request,
                decision.reason,
            )
            if decision.rule in ("ORG-2", "DEC-3"):
                raise Conflict(decision.reason, rule=decision.rule)
            raise RuleRefused.from_decision(decision)
        with _directory_errors():
            if create is not None:
                create()
            try:
                self.directory.add_request(request)
            except Exception:
                if create is not None:
                    self._discard_pending_entities(request)
                raise
        self._audit(request.requester, f"request:{request.kind.value}", "ok", request, "")
        return request

    def _eligible(self, npi: str) -> bool:
        return is_eligible(self.enrollment.lookup(npi))

    def _create_organization(self, organization: Organization) -> None:
        try:
            self.directory.create_organization(organization)
        except directory_errors.OrganizationExists:
            raise Conflict(
                "this organization is already registered and has its Security Official",
                rule="ORG-2",
                code="organization_exists",
            ) from None

    def _create_user_group(self, group: UserGroup) -> None:
        try:
            self.directory.create_user_group(group)
        except directory_errors.GroupExists:
            raise Conflict(
                "a user group of that name exists; ask to join it instead",
                rule="UGA-1",
                code="group_exists",
            ) from None

    def _create_surrogate_group(self, sug: SurrogateGroup) -> None:
        try:
            self.directory.create_surrogate_group(sug)
        except directory_errors.GroupExists:
            raise Conflict(
                "a Surrogate User Group of that name exists; ask to join it instead",
                rule="SUG-1",
                code="group_exists",
            ) from None

    def _grant(self, request: Request) -> None:
        """DEC-4: the effects of an approval; each step is idempotent so a retry completes it."""
        directory = self.directory
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
            case RequestKind.INDIVIDUAL_PRACTITIONER:
                directory.create_practitioner_group(request.details["npi"])
        membership = policy.granted_membership(request)
        if membership is not None:
            directory.add_member(membership, request.requester)

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

    def _discard_pending_entities(self, request: Request) -> None:
        """After a rejection or expiry, free the pending organization or group it had claimed."""
        directory = self.directory
        if request.kind is RequestKind.REGISTER_ORGANIZATION:
            org = directory.get_organization(request.organization_id)
            if org is not None and org.status is EntityStatus.PENDING:
                directory.delete_organization(request.organization_id)
        elif request.kind is RequestKind.USER_GROUP_ADMINISTRATOR and request.details.get(
            "new_group"
        ):
            group = directory.get_user_group(request.organization_id, request.group_id)
            if group is not None and group.status is EntityStatus.PENDING:
                directory.delete_user_group(request.organization_id, request.group_id)
        elif request.kind is RequestKind.REGISTER_SURROGATE_GROUP:
            sug = directory.get_surrogate_group(request.surrogate_group_id)
            if sug is not None and sug.status is EntityStatus.PENDING:
                directory.delete_surrogate_group(request.surrogate_group_id)

    def _end_membership(self, holder: str, membership: Membership, reason: EndReason) -> None:
        now = self.clock()
        self.directory.remove_member(membership, holder)
        for request in self.directory.find_requests(
            requester=holder, status=RequestStatus.APPROVED
        ):
            if request.ended_at is None and policy.granted_membership(request) == membership:
                self.directory.end_membership_record(request.id, now, reason)

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


def _could_concern(actor: policy.Actor, request: Request) -> bool:
    """Cheap pre-filter for the queue: skip requests outside every scope the actor holds."""
    if actor.is_help_desk:
        return True
    scopes = {m.scope_id for m in actor.memberships} | {
        m.organization_id for m in actor.memberships
    }
    return bool(
        {request.organization_id, request.surrogate_group_id, request.group_id} & scopes
    ) or any(m.scope_kind is ScopeKind.ORGANIZATION for m in actor.memberships)


def _scope_fields(membership: Membership) -> dict[str, str]:
    match membership.scope_kind:
        case ScopeKind.ORGANIZATION:
            return {"organization_id": membership.scope_id}
        case ScopeKind.USER_GROUP:
            return {"organization_id": membership.organization_id, "group_id": membership.scope_id}
        case ScopeKind.SURROGATE_GROUP:
            return {"surrogate_group_id": membership.scope_id}
    return {}


def _describe(changes: dict[str, str]) -> str:
    return "; ".join(f"{key}={value}" for key, value in changes.items())


@contextmanager
def _directory_errors() -> Iterator[None]:
    """Map the directory's errors to the service's: 503 unreachable, 404 gone, 409 raced."""
    try:
        yield
    except directory_errors.DirectoryUnavailable as exc:
        raise Unavailable("the directory is unavailable; nothing was changed") from exc
    except directory_errors.NotFound as exc:
        raise NotFound("no such organization, group, person or request") from exc
    except directory_errors.UnexpectedStatus as exc:
        raise Conflict("the entry changed while you were deciding; reload and try again") from exc
