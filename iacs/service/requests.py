"""Submitting requests: every kind of request a person can file, checked by ``may_submit``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from iacs import policy
from iacs.directory import errors as directory_errors
from iacs.domain import (
    EntityStatus,
    Organization,
    ProviderType,
    Request,
    RequestKind,
    RequestStatus,
    SurrogateGroup,
    UserGroup,
    organization_id,
    slug,
)
from iacs.enrollment import is_eligible
from iacs.service import inputs
from iacs.service.base import ServiceBase, _directory_errors
from iacs.service.errors import Conflict, InvalidInput, refusal


class RequestOperations(ServiceBase):
    """Filing requests: validate the input, ask the policy, claim new entities atomically."""

    def register_organization(
        self,
        username: str,
        *,
        name: str,
        identifier: str,
        provider_type: str,
        address: str = "",
        phone: str = "",
        dry_run: bool = False,
    ) -> Request:
        """ORG-1: the Security Official's registration creates the (pending) organization.

        With ``dry_run``, every check runs (the input, then the policy) and nothing is written,
        audited or created: the request returned was not filed (bulk onboarding's dry run).
        """
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
        return self._submit(
            request, create=lambda: self._create_organization(organization), dry_run=dry_run
        )

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
        dry_run: bool = False,
    ) -> Request:
        """UGA-1: name a new group (``group_name``) or join an existing one (``group_id``).

        ``dry_run`` as for ``register_organization``: checked, not filed."""
        org_id = inputs.entity_id("organization", org_id)
        if group_name:
            name = inputs.text("group_name", group_name, max_length=80)
            new_id = slug(name)
            if not new_id:
                raise InvalidInput("group_name", "must contain letters or digits")
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
            return self._submit(
                request, create=lambda: self._create_user_group(group), dry_run=dry_run
            )
        request = self._new_request(
            username,
            RequestKind.USER_GROUP_ADMINISTRATOR,
            organization_id=org_id,
            group_id=inputs.entity_id("group", group_id),
        )
        return self._submit(request, dry_run=dry_run)

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
            raise InvalidInput("name", "must contain letters or digits")
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

    def withdraw(self, username: str, request_id: str, reason: str = "") -> Request:
        """The requester takes back a pending request; audited, and decided once like any other.

        Uses the same compare-and-swap as a decision (DEC-3): a withdrawal racing an approval
        either wins (the request is withdrawn, nothing granted) or is refused as already decided.
        A pending organization or group the request had claimed is freed, as after a rejection.
        """
        request_id = inputs.request_id("request", request_id)
        reason = inputs.reason("reason", reason, required=False)
        actor = self.actor(username)
        request = self._get_request(request_id)
        decision = policy.may_withdraw(actor, request)
        if not decision.allowed:
            self._audit(actor.username, "withdraw", "denied", request, decision.reason)
            conflict = decision.kind is policy.Refusal.CONFLICT
            raise refusal(decision, code="already_decided" if conflict else None)
        now = self.clock()
        with _directory_errors():
            try:
                self.directory.decide_request(
                    request.id,
                    expected=RequestStatus.PENDING,
                    new_status=RequestStatus.WITHDRAWN,
                    decided_by=actor.username,
                    decided_at=now,
                    reason=reason or "withdrawn by the requester",
                )
            except directory_errors.AlreadyDecided:
                raise Conflict(
                    "this request was decided a moment ago", rule="DEC-3", code="already_decided"
                ) from None
            self._discard_pending_entities(request)
        self._audit(actor.username, "withdraw", "ok", request, reason)
        self.on_change()
        return replace(
            request, status=RequestStatus.WITHDRAWN, decided_by=actor.username, decided_at=now
        )

    def _submit(
        self,
        request: Request,
        create: Callable[[], None] | None = None,
        *,
        dry_run: bool = False,
    ) -> Request:
        """Check the policy, claim any new entity atomically, then file the request.

        ``dry_run`` stops after the policy's answer: a refusal is raised (not audited, since
        nothing was asked of anyone), an acceptance returns the request unfiled.
        """
        with _directory_errors():
            requester = policy.Actor(
                request.requester, self.directory.memberships_of(request.requester)
            )
            facts = self.facts.for_submission(request, requester.memberships, self._eligible)
        decision = policy.may_submit(requester, request, facts)
        if dry_run:
            if not decision.allowed:
                raise refusal(decision)
            return request
        if not decision.allowed:
            self._audit(
                request.requester,
                f"request:{request.kind.value}",
                "refused",
                request,
                decision.reason,
            )
            raise refusal(decision)
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
