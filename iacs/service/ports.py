"""The directory as the service sees it: the port the service is written against.

``iacs.directory.Directory`` satisfies it structurally (the type checker proves it where the
composition root passes one in); tests may pass anything else that does. Listing what the
service reads and writes here tells a reader, and mypy, what the service asks of LDAP.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from iacs.directory.records import OnCorrupt
from iacs.domain import (
    AuditRecord,
    EndReason,
    EntityStatus,
    Membership,
    Organization,
    Person,
    ProviderType,
    Request,
    RequestKind,
    RequestStatus,
    SurrogateGroup,
    UserGroup,
)


class ServiceDirectory(Protocol):
    """People, memberships, organizations, groups, requests and audit records."""

    def add_member(self, membership: Membership, username: str) -> None: ...
    def add_request(self, request: Request) -> None: ...
    def append_audit(self, record: AuditRecord) -> None: ...
    def associate_surrogate(self, surrogate_group_id: str, organization_id: str) -> None: ...
    def create_organization(self, org: Organization) -> None: ...
    def create_practitioner_group(self, npi: str, *, exist_ok: bool = ...) -> bool: ...
    def create_surrogate_group(self, group: SurrogateGroup) -> None: ...
    def create_user_group(self, group: UserGroup) -> None: ...
    def decide_request(
        self,
        request_id: str,
        *,
        new_status: RequestStatus,
        decided_by: str,
        decided_at: datetime,
        reason: str = ...,
        expected: RequestStatus = ...,
        grant_pending: bool = ...,
    ) -> None: ...
    def finish_grant(self, request_id: str) -> bool: ...
    def undo_approval(self, request_id: str) -> bool: ...
    def delete_organization(self, organization_id: str, *, only_if_pending: bool = ...) -> None: ...
    def delete_surrogate_group(self, surrogate_group_id: str) -> None: ...
    def delete_user_group(self, organization_id: str, group_id: str) -> None: ...
    def dissociate_surrogate(self, surrogate_group_id: str, organization_id: str) -> None: ...
    def end_membership_record(
        self, request_id: str, ended_at: datetime, reason: EndReason
    ) -> None: ...
    def find_audit(
        self,
        organization_id: str | None = ...,
        *,
        limit: int = ...,
        actor: str | None = ...,
        request_id: str | None = ...,
        group_id: str | None = ...,
        surrogate_group_id: str | None = ...,
        subject: str | None = ...,
        since: datetime | None = ...,
        until: datetime | None = ...,
    ) -> list[AuditRecord]: ...
    def page_audit(
        self,
        *,
        organization_id: str | None = ...,
        actor: str | None = ...,
        action: str | None = ...,
        outcome: str | None = ...,
        exclude_outcome: str | None = ...,
        since: datetime | None = ...,
        until: datetime | None = ...,
        offset: int = ...,
        limit: int = ...,
    ) -> tuple[list[AuditRecord], int]: ...
    def find_organizations(
        self, text: str = ..., *, status: EntityStatus | None = ..., limit: int = ...
    ) -> list[Organization]: ...
    def find_people(self, text: str = ..., limit: int = ...) -> list[Person]: ...
    def find_requests(
        self,
        *,
        status: RequestStatus | Iterable[RequestStatus] | None = ...,
        kind: RequestKind | Iterable[RequestKind] | None = ...,
        organization_id: str | None = ...,
        group_id: str | None = ...,
        surrogate_group_id: str | None = ...,
        requester: str | None = ...,
        expires_before: datetime | None = ...,
        ended: bool | None = ...,
        grant_pending_before: datetime | None = ...,
        limit: int = ...,
        on_corrupt: OnCorrupt = ...,
    ) -> list[Request]: ...
    def get_organization(self, organization_id: str) -> Organization | None: ...
    def get_person(self, username: str) -> Person | None: ...
    def get_request(self, request_id: str) -> Request | None: ...
    def get_surrogate_group(self, surrogate_group_id: str) -> SurrogateGroup | None: ...
    def get_user_group(self, organization_id: str, group_id: str) -> UserGroup | None: ...
    def list_surrogate_groups(
        self, *, organization_id: str | None = ..., status: EntityStatus | None = ...
    ) -> list[SurrogateGroup]: ...
    def list_user_groups(
        self, organization_id: str, *, status: EntityStatus | None = ...
    ) -> list[UserGroup]: ...
    def members_of(self, membership: Membership) -> frozenset[str]: ...
    def memberships_of(self, username: str) -> frozenset[Membership]: ...
    def ping(self) -> bool: ...
    def remove_member(self, membership: Membership, username: str) -> None: ...
    def set_organization_status(
        self, organization_id: str, status: EntityStatus, *, expected: EntityStatus | None = ...
    ) -> None: ...
    def set_recertified(self, request_id: str, at: datetime) -> None: ...
    def set_surrogate_group_status(
        self, surrogate_group_id: str, status: EntityStatus, *, expected: EntityStatus | None = ...
    ) -> None: ...
    def set_user_group_status(
        self,
        organization_id: str,
        group_id: str,
        status: EntityStatus,
        *,
        expected: EntityStatus | None = ...,
    ) -> None: ...
    def update_organization_profile(
        self,
        organization_id: str,
        *,
        name: str | None = ...,
        address: str | None = ...,
        phone: str | None = ...,
        provider_type: ProviderType | None = ...,
    ) -> None: ...
    def update_surrogate_group_profile(
        self, surrogate_group_id: str, *, name: str | None = ..., description: str | None = ...
    ) -> None: ...
    def update_user_group_profile(
        self,
        organization_id: str,
        group_id: str,
        *,
        name: str | None = ...,
        description: str | None = ...,
    ) -> None: ...
