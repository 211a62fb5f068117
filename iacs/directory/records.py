"""Requests (with their single decision, DEC-3) and the append-only audit record (AUD-1)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

import ldap3

from iacs.directory import filters
from iacs.directory.connection import NO_SUCH_ATTRIBUTE, ConnectionPool
from iacs.directory.dn import Tree
from iacs.directory.errors import AlreadyDecided, InvalidEntry, NotFound
from iacs.directory.mapping import (
    AUDIT_ATTRIBUTES,
    REQUEST_ATTRIBUTES,
    audit_entry,
    audit_from,
    checked,
    enum_value,
    first,
    from_generalized_time,
    request_entry,
    request_from,
    to_generalized_time,
)
from iacs.domain import AuditRecord, EndReason, Request, RequestKind, RequestStatus

_DECISIONS = frozenset({RequestStatus.APPROVED, RequestStatus.REJECTED, RequestStatus.EXPIRED})


def _values(kind: type, values: object, attribute: str) -> str | list[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        return enum_value(kind, values, attribute)
    return [enum_value(kind, item, attribute) for item in values]  # type: ignore[attr-defined]


class RecordStore:
    """The part of ``Directory`` that manages requests and audit records (see ``Directory``)."""

    _pool: ConnectionPool
    tree: Tree

    # -- requests ------------------------------------------------------------------------------

    def add_request(self, request: Request) -> None:
        """Store a new request (``AlreadyExists`` if its id is taken)."""
        self._pool.add(self.tree.request(request.id), request_entry(request))

    def get_request(self, request_id: str) -> Request | None:
        """The request, or None."""
        dn = self.tree.request(request_id)
        found = self._pool.search(
            dn, "(objectClass=iacsRequest)", scope=ldap3.BASE, attributes=REQUEST_ATTRIBUTES
        )
        return request_from(dn, found[0][1]) if found else None

    def find_requests(
        self,
        *,
        status: RequestStatus | Iterable[RequestStatus] | None = None,
        kind: RequestKind | Iterable[RequestKind] | None = None,
        organization_id: str | None = None,
        group_id: str | None = None,
        surrogate_group_id: str | None = None,
        requester: str | None = None,
        expires_before: datetime | None = None,
        ended: bool | None = None,
        limit: int = 0,
    ) -> list[Request]:
        """Requests matching every given criterion, oldest first.

        ``status`` and ``kind`` take one value or several (any of them); ``expires_before``
        finds requests whose ``expires_at`` is at or before the moment (LC-2); ``ended`` True
        or False selects approved memberships that have or have not ended.
        """
        search = filters.all_of(
            filters.eq("objectClass", "iacsRequest"),
            filters.one_or_many(
                "iacsRequestStatus", _values(RequestStatus, status, "iacsRequestStatus")
            ),
            filters.one_or_many("iacsRequestKind", _values(RequestKind, kind, "iacsRequestKind")),
            filters.one_or_many("iacsOrganizationId", organization_id),
            filters.one_or_many("iacsGroupId", group_id),
            filters.one_or_many("iacsSurrogateGroupId", surrogate_group_id),
            filters.one_or_many("iacsRequester", requester),
            filters.at_most("iacsExpiresAt", expires_before) if expires_before else "",
            ""
            if ended is None
            else (
                filters.present("iacsEndedAt")
                if ended
                else filters.negate(filters.present("iacsEndedAt"))
            ),
        )
        found = self._pool.search(
            self.tree.requests,
            search,
            scope=ldap3.LEVEL,
            attributes=REQUEST_ATTRIBUTES,
            size_limit=limit,
        )
        requests = [request_from(dn, attributes) for dn, attributes in found]
        return sorted(requests, key=lambda request: (request.created_at, request.id))

    def decide_request(
        self,
        request_id: str,
        *,
        new_status: RequestStatus,
        decided_by: str,
        decided_at: datetime,
        reason: str = "",
        expected: RequestStatus = RequestStatus.PENDING,
    ) -> None:
        """DEC-3: decide once, as ONE modify that deletes ``expected`` and adds ``new_status``.

        A second decision finds no ``expected`` value and the whole modify fails with
        noSuchAttribute (16): ``AlreadyDecided``. Each attempt writes a unique
        ``iacsDecisionId``; when the pool resent the modify after a dropped connection and the
        stored id is this attempt's own, the first send did land and it counts as done. Two
        different attempts never share an id, so exactly one decision wins.
        """
        if RequestStatus(new_status) not in _DECISIONS:
            raise InvalidEntry(f"{new_status!r} is not a decision")
        dn = self.tree.request(request_id)
        status = enum_value(RequestStatus, new_status, "iacsRequestStatus")
        when = to_generalized_time(decided_at)
        attempt = uuid.uuid4().hex
        changes = {
            "iacsRequestStatus": [
                (ldap3.MODIFY_DELETE, [enum_value(RequestStatus, expected, "iacsRequestStatus")]),
                (ldap3.MODIFY_ADD, [status]),
            ],
            "iacsDecidedBy": [(ldap3.MODIFY_REPLACE, [checked("iacsDecidedBy", decided_by)])],
            "iacsDecidedAt": [(ldap3.MODIFY_REPLACE, [when])],
            "iacsDecisionId": [(ldap3.MODIFY_REPLACE, [attempt])],
        }
        if reason:
            changes["iacsReason"] = [(ldap3.MODIFY_REPLACE, [checked("iacsReason", reason)])]
        code = self._pool.modify(dn, changes, allow=(NO_SUCH_ATTRIBUTE,))
        if code == NO_SUCH_ATTRIBUTE:
            current = self.get_request(request_id)
            if current is None:
                raise NotFound(f"no request {request_id}", result_code=32, dn=dn)
            if self._decision_id(request_id) == attempt:
                return
            raise AlreadyDecided(
                f"request {request_id} is already {current.status}", result_code=code, dn=dn
            )

    def _decision_id(self, request_id: str) -> str:
        entries = self._pool.search(
            self.tree.request(request_id),
            "(objectClass=iacsRequest)",
            scope=ldap3.BASE,
            attributes=("iacsDecisionId",),
        )
        return first(entries[0][1], "iacsDecisionId") if entries else ""

    def end_membership_record(self, request_id: str, ended_at: datetime, reason: EndReason) -> None:
        """Record on the approved request that the membership it granted has ended."""
        self._pool.modify(
            self.tree.request(request_id),
            {
                "iacsEndedAt": [(ldap3.MODIFY_REPLACE, [to_generalized_time(ended_at)])],
                "iacsEndReason": [
                    (ldap3.MODIFY_REPLACE, [enum_value(EndReason, reason, "iacsEndReason")])
                ],
            },
        )

    def set_recertified(self, request_id: str, at: datetime) -> None:
        """LC-3: the membership granted by this request was recertified at ``at``."""
        self._pool.modify(
            self.tree.request(request_id),
            {"iacsRecertifiedAt": [(ldap3.MODIFY_REPLACE, [to_generalized_time(at)])]},
        )

    # -- audit ---------------------------------------------------------------------------------

    def append_audit(self, record: AuditRecord) -> None:
        """Add one audit record. The portal account can add records, never change them (AUD-1)."""
        self._pool.add(self.tree.audit_record(record.id), audit_entry(record))

    def page_audit(
        self,
        *,
        organization_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        exclude_outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[AuditRecord], int]:
        """One page of the matching audit records, newest first, and how many match in all.

        Every criterion is a server-side filter (escaped); ``action`` matches the action or its
        ``action:*`` family. slapd here has no sort control, so the page is cut in two
        searches: the matching entries' ``iacsAt`` only (cheap to decode), sorted and counted
        here; then the full records of just that page.
        """
        criteria = filters.all_of(
            filters.eq("objectClass", "iacsAuditRecord"),
            filters.one_or_many("iacsOrganizationId", organization_id),
            filters.one_or_many("iacsActor", actor),
            filters.any_of(
                [filters.eq("iacsAction", action), filters.starts_with("iacsAction", action + ":")]
            )
            if action
            else "",
            filters.one_or_many("iacsOutcome", outcome),
            filters.negate(filters.eq("iacsOutcome", exclude_outcome)) if exclude_outcome else "",
            filters.at_least("iacsAt", since) if since else "",
            filters.at_most("iacsAt", until) if until else "",
        )
        stamps = self._pool.search(
            self.tree.audit, criteria, scope=ldap3.LEVEL, attributes=("iacsAt", "iacsAuditId")
        )
        ordered = sorted(
            (
                (from_generalized_time(first(attrs, "iacsAt")), first(attrs, "iacsAuditId"))
                for _, attrs in stamps
            ),
            reverse=True,
        )
        page_ids = [audit_id for _, audit_id in ordered[offset : offset + limit]]
        if not page_ids:
            return [], len(ordered)
        found = self._pool.search(
            self.tree.audit,
            filters.all_of(criteria, filters.one_or_many("iacsAuditId", page_ids)),
            scope=ldap3.LEVEL,
            attributes=AUDIT_ATTRIBUTES,
        )
        records = sorted(
            (audit_from(attributes) for _, attributes in found),
            key=lambda record: (record.at, record.id),
            reverse=True,
        )
        return records, len(ordered)

    def find_audit(
        self,
        organization_id: str | None = None,
        *,
        limit: int = 100,
        actor: str | None = None,
        request_id: str | None = None,
        group_id: str | None = None,
        surrogate_group_id: str | None = None,
        subject: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[AuditRecord]:
        """Audit records matching every given criterion, newest first, at most ``limit`` (AUD-2)."""
        search = filters.all_of(
            filters.eq("objectClass", "iacsAuditRecord"),
            filters.one_or_many("iacsOrganizationId", organization_id),
            filters.one_or_many("iacsActor", actor),
            filters.one_or_many("iacsRequestId", request_id),
            filters.one_or_many("iacsGroupId", group_id),
            filters.one_or_many("iacsSurrogateGroupId", surrogate_group_id),
            filters.one_or_many("iacsSubject", subject),
            filters.at_least("iacsAt", since) if since else "",
            filters.at_most("iacsAt", until) if until else "",
        )
        found = self._pool.search(
            self.tree.audit, search, scope=ldap3.LEVEL, attributes=AUDIT_ATTRIBUTES
        )
        records = sorted(
            (audit_from(attributes) for _, attributes in found),
            key=lambda record: (record.at, record.id),
            reverse=True,
        )
        return records[:limit] if limit else records
