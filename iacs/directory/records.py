"""Requests (with their single decision, DEC-3) and the append-only audit record (AUD-1)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime

import ldap3

from iacs.directory import filters
from iacs.directory.connection import NO_SUCH_ATTRIBUTE, NO_SUCH_OBJECT, ConnectionPool
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

_DECISIONS = frozenset(
    {
        RequestStatus.APPROVED,
        RequestStatus.REJECTED,
        RequestStatus.EXPIRED,
        RequestStatus.WITHDRAWN,
    }
)
GRANT_PENDING = "iacsGrantPending"
"""The marker an approval carries until its effects are written (see ``decide_request``)."""

log = logging.getLogger("iacs.directory")

OnCorrupt = Callable[[str, InvalidEntry], None]
"""Told the DN and the error of each entry that cannot be read as a request (then skipped)."""


def _log_corrupt(dn: str, error: InvalidEntry) -> None:
    log.error("unreadable request entry skipped", extra={"dn": dn, "error": str(error)})


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
        grant_pending_before: datetime | None = None,
        limit: int = 0,
        on_corrupt: OnCorrupt = _log_corrupt,
    ) -> list[Request]:
        """Requests matching every given criterion, oldest first.

        ``status`` and ``kind`` take one value or several (any of them); ``expires_before``
        finds requests whose ``expires_at`` is at or before the moment (LC-2); ``ended`` True
        or False selects approved memberships that have or have not ended;
        ``grant_pending_before`` finds approvals still marked as being granted since before
        the moment (the recovery pass). An entry that cannot be read as a request (edited by
        hand, a bad value) is skipped and passed to ``on_corrupt`` (default: logged), so one
        bad entry never hides all the others.
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
            filters.present(GRANT_PENDING) if grant_pending_before else "",
            filters.at_most(GRANT_PENDING, grant_pending_before) if grant_pending_before else "",
        )
        found = self._pool.search(
            self.tree.requests,
            search,
            scope=ldap3.LEVEL,
            attributes=REQUEST_ATTRIBUTES,
            size_limit=limit,
        )
        requests = []
        for dn, attributes in found:
            try:
                requests.append(request_from(dn, attributes))
            except InvalidEntry as exc:
                on_corrupt(dn, exc)
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
        grant_pending: bool = False,
    ) -> None:
        """DEC-3: decide once, as ONE modify that deletes ``expected`` and adds ``new_status``.

        A second decision finds no ``expected`` value and the whole modify fails with
        noSuchAttribute (16): ``AlreadyDecided``. Each attempt writes a unique
        ``iacsDecisionId``; when the pool resent the modify after a dropped connection and the
        stored id is this attempt's own, the first send did land and it counts as done. Two
        different attempts never share an id, so exactly one decision wins.

        With ``grant_pending`` (an approval) the same modify sets ``iacsGrantPending`` to the
        decision's time: the request is approved but its effects are not written yet. The
        caller writes them, then calls ``finish_grant``; if it never does (a crash, slapd
        gone), the marker is what the recovery pass finds (``find_requests``), and it either
        completes the grant or puts the request back to pending (``undo_approval``).
        """
        if RequestStatus(new_status) not in _DECISIONS:
            raise InvalidEntry(f"{new_status!r} is not a decision")
        if grant_pending and RequestStatus(new_status) is not RequestStatus.APPROVED:
            raise InvalidEntry("only an approval has effects to grant")
        dn = self.tree.request(request_id)
        status = enum_value(RequestStatus, new_status, "iacsRequestStatus")
        when = to_generalized_time(decided_at)
        attempt = uuid.uuid4().hex
        changes: dict[str, list[tuple[str, list[str]]]] = {
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
        if grant_pending:
            changes[GRANT_PENDING] = [(ldap3.MODIFY_REPLACE, [when])]
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

    def finish_grant(self, request_id: str) -> bool:
        """The approval's effects are all written: remove its marker (idempotent).

        False when the marker was already gone (another process finished it, or undid it).
        """
        code = self._pool.modify(
            self.tree.request(request_id),
            {GRANT_PENDING: [(ldap3.MODIFY_DELETE, [])]},
            allow=(NO_SUCH_ATTRIBUTE, NO_SUCH_OBJECT),
        )
        return code == 0

    def undo_approval(self, request_id: str) -> bool:
        """Put an approval whose effects cannot be written back to pending, as one modify.

        The modify deletes the marker and the value ``approved``: it fails as a whole with
        noSuchAttribute unless the request is still approved *and* still marked, so an
        approval that another process completed meanwhile (marker removed) is never undone,
        and two processes undoing the same one both end with it pending, once. The decider,
        time, reason and decision id go too: the request is decidable again (DEC-3 holds, as
        the decision never took effect). True when the request is pending afterwards.
        """
        dn = self.tree.request(request_id)
        approved = enum_value(RequestStatus, RequestStatus.APPROVED, "iacsRequestStatus")
        pending = enum_value(RequestStatus, RequestStatus.PENDING, "iacsRequestStatus")
        changes: dict[str, list[tuple[str, list[str]]]] = {
            "iacsRequestStatus": [
                (ldap3.MODIFY_DELETE, [approved]),
                (ldap3.MODIFY_ADD, [pending]),
            ],
            GRANT_PENDING: [(ldap3.MODIFY_DELETE, [])],
            **{
                attribute: [(ldap3.MODIFY_REPLACE, [])]
                for attribute in ("iacsDecidedBy", "iacsDecidedAt", "iacsReason", "iacsDecisionId")
            },
        }
        code = self._pool.modify(dn, changes, allow=(NO_SUCH_ATTRIBUTE,))
        if code == 0:
            return True
        current = self.get_request(request_id)  # a resent modify that had landed reads pending
        return current is not None and current.status is RequestStatus.PENDING

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
        if limit <= 0:  # a count: no attribute to decode
            return [], len(self._pool.search(self.tree.audit, criteria, scope=ldap3.LEVEL))
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
