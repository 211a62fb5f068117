"""Loading the directory facts the policy needs for one request, at the moment it is asked.

Kept apart from the service so that exactly the same facts feed submission checks, decisions,
recertification and the approval queue.
"""

from __future__ import annotations

from collections.abc import Callable

from iacs import policy
from iacs.domain import Membership, Request, RequestKind, RequestStatus, Role, ScopeKind
from iacs.service.ports import ServiceDirectory


class FactLoader:
    """Reads organizations, groups and memberships from the directory into ``policy.Facts``."""

    def __init__(self, directory: ServiceDirectory, blocked_provider_types: frozenset[str]) -> None:
        self.directory = directory
        self.blocked = blocked_provider_types

    def for_request(self, request: Request) -> policy.Facts:
        """Facts about the request's target organization, user group or surrogate group."""
        directory = self.directory
        org = (
            directory.get_organization(request.organization_id) if request.organization_id else None
        )
        group = None
        sug = None
        has_admin = False
        if request.group_id and request.organization_id:
            group = directory.get_user_group(request.organization_id, request.group_id)
            if group is not None:
                has_admin = bool(
                    directory.members_of(
                        Membership(
                            Role.USER_GROUP_ADMINISTRATOR,
                            ScopeKind.USER_GROUP,
                            request.group_id,
                            request.organization_id,
                        )
                    )
                )
        if request.surrogate_group_id:
            sug = directory.get_surrogate_group(request.surrogate_group_id)
            if sug is not None:
                has_admin = bool(
                    directory.members_of(
                        Membership(
                            Role.USER_GROUP_ADMINISTRATOR,
                            ScopeKind.SURROGATE_GROUP,
                            request.surrogate_group_id,
                        )
                    )
                )
        return policy.Facts(
            organization=org,
            user_group=group,
            surrogate_group=sug,
            group_has_administrator=has_admin,
            blocked_provider_types=self.blocked,
        )

    def for_submission(
        self,
        request: Request,
        requester_memberships: frozenset[Membership],
        eligible: Callable[[str], bool],
    ) -> policy.Facts:
        """Facts for ``may_submit``: the target, what the requester holds, duplicates, IND-1."""
        facts = self.for_request(request)
        duplicate = any(
            other.kind is request.kind
            and other.organization_id == request.organization_id
            and other.group_id == request.group_id
            and other.surrogate_group_id == request.surrogate_group_id
            and other.details.get("npi") == request.details.get("npi")
            for other in self.directory.find_requests(
                requester=request.requester, status=RequestStatus.PENDING
            )
        )
        practitioner_eligible = None
        if request.kind is RequestKind.INDIVIDUAL_PRACTITIONER:
            practitioner_eligible = eligible(request.details.get("npi", ""))
        return policy.Facts(
            organization=facts.organization,
            user_group=facts.user_group,
            surrogate_group=facts.surrogate_group,
            group_has_administrator=facts.group_has_administrator,
            requester_memberships=requester_memberships,
            duplicate_pending=duplicate,
            practitioner_eligible=practitioner_eligible,
            blocked_provider_types=self.blocked,
        )
