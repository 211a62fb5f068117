"""Bulk onboarding and export for the help desk (issue 10, item 5).

**Import.** A CSV of organizations with their Security Officials, and optionally user groups
with their first User Group Administrator, one record a line::

    record,identifier,name,provider_type,security_official,address,phone,group_name,group_administrator
    organization,12-3456789,Lakeside General,hospital,sofia,,,,
    user_group,12-3456789,,,,,,Billing,uma

Each line goes through the very service calls the portal makes, so every rule still applies
and none is restated here: an ``organization`` line is the Security Official's registration
(``register_organization``: ORG-1, ORG-2, ORG-7 ... by ``policy.may_submit``) decided by the
help desk who imports (``decide``: ORG-3 by ``policy.may_decide``); a ``user_group`` line is
the UGA's request for a new group (``request_user_group_administrator``), which stays pending
for the organization's SO or a BSO (UGA-2: the help desk does not decide it, and the report
says so). The people must already exist in the directory (they registered their account).

- **Dry run**: every line is checked (input, then the policy, with ``dry_run=True``) and
  nothing is written; the report says line by line what would happen, or why the line is
  refused (the rule and its reason).
- **Idempotent**: a line already in effect (the organization active with that SO, the group
  with that UGA, or its request already pending) is reported ``unchanged`` and not filed again,
  so running the same file twice changes nothing the second time.
- **Per line**: a bad line (malformed, or refused by a rule) is reported and changes nothing;
  the other lines go on. A file that is not a CSV of these columns is refused whole.
- **Audited** as the help desk's: one ``import:<record>`` audit record per line carried out
  or refused (on top of the request and decision records the service calls write).

**Export.** Every current role of every organization with its certification dates, for
audits. Cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, CR)
are quoted with a leading apostrophe (OWASP's advice on CSV injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from iacs import policy
from iacs.domain import (
    EntityStatus,
    Membership,
    Request,
    RequestKind,
    RequestStatus,
    Role,
    ScopeKind,
    organization_id,
    slug,
)
from iacs.service import inputs
from iacs.service.base import _directory_errors
from iacs.service.errors import Conflict, InvalidInput, ServiceError, refusal

if TYPE_CHECKING:
    from iacs.service.access import AccessService

COLUMNS = (
    "record",
    "identifier",
    "name",
    "provider_type",
    "security_official",
    "address",
    "phone",
    "group_name",
    "group_administrator",
)
"""The import's columns, in this order in the template; ``record`` and ``identifier`` always."""
RECORDS = ("organization", "user_group")
MAX_BYTES = 1024 * 1024
MAX_LINES = 5000

EXPORT_COLUMNS = (
    "organization_id",
    "organization_name",
    "identifier",
    "provider_type",
    "organization_status",
    "role",
    "scope",
    "group_id",
    "surrogate_group_id",
    "username",
    "full_name",
    "approved_at",
    "approved_by",
    "certified_at",
    "certification_due",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class LineResult:
    """What one line did (or, in a dry run, would do), in words for the help desk."""

    line: int
    """The line number in the file (the header is line 1)."""
    record: str
    subject: str
    outcome: str
    """``would create``, ``created``, ``would file``, ``filed``, ``unchanged`` or ``refused``."""
    detail: str
    rule: str = ""
    request_id: str = ""

    @property
    def refused(self) -> bool:
        return self.outcome == "refused"


@dataclass
class ImportReport:
    dry_run: bool
    lines: list[LineResult] = field(default_factory=list)

    @property
    def refused(self) -> list[LineResult]:
        return [line for line in self.lines if line.refused]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for line in self.lines:
            counts[line.outcome] = counts.get(line.outcome, 0) + 1
        return counts

    def __str__(self) -> str:
        rows = [
            f"line {r.line}: {r.record} {r.subject}: {r.outcome}: {r.detail}"
            + (f" ({r.rule})" if r.rule else "")
            for r in self.lines
        ]
        summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(self.counts().items()))
        head = "dry run, nothing written" if self.dry_run else "import"
        return "\n".join([*rows, f"{head}: {summary or 'no lines'}"])


# --------------------------------------------------------------------------------------------
# Import


def import_onboarding(
    service: AccessService, username: str, text: str, *, dry_run: bool
) -> ImportReport:
    """Check (``dry_run``) or carry out every line of ``text`` as the help desk ``username``.

    ``Forbidden`` (audited) unless the policy lets the actor onboard in bulk; ``InvalidInput``
    for a file that is not a CSV of ``COLUMNS`` (nothing done). Otherwise a report of every
    line, refused ones included.
    """
    actor = service.actor(username)
    service._require(actor, policy.may_onboard_in_bulk(actor), "import")
    rows = list(_rows(text))
    report = ImportReport(dry_run=dry_run)
    planned: dict[str, int] = {}
    """Dry run: organization id → the line that would register it (for later group lines)."""
    for number, row in rows:
        record = row.get("record", "").strip()
        subject = _subject(record, row)
        try:
            if record == "organization" and dry_run and _planned(row, planned):
                raise Conflict(
                    f"line {_planned(row, planned)} registers this organization first, so the "
                    "import would refuse this line",
                    rule="ORG-2",
                )
            if record == "organization":
                result = _organization_line(service, actor.username, number, row, dry_run)
                if dry_run and result.outcome == "would create":
                    planned[_org_id(row)] = number
            elif record == "user_group":
                result = _group_line(service, number, row, dry_run, planned)
            else:
                raise InvalidInput("record", f"must be one of {', '.join(RECORDS)}")
        except ServiceError as exc:
            result = LineResult(number, record or "?", subject, "refused", exc.message, exc.rule)
        report.lines.append(result)
        if not dry_run and result.outcome != "unchanged":
            _audit_line(service, actor.username, row, result)
    return report


def _rows(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    """The data lines with their line numbers; the whole file refused if it is not ours."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise InvalidInput("file", f"must be at most {MAX_BYTES // 1024} KiB")
    if "\x00" in text:
        raise InvalidInput("file", "is not a text CSV file")
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""), strict=True)
    try:
        header = [name.strip() for name in reader.fieldnames or ()]
        if not header:
            raise InvalidInput("file", "is empty: the first line names the columns")
        unknown = [name for name in header if name not in COLUMNS]
        missing = [name for name in ("record", "identifier") if name not in header]
        if unknown or missing or len(set(header)) != len(header):
            raise InvalidInput(
                "file",
                f"the first line must name columns among {', '.join(COLUMNS)} (with record "
                f"and identifier, each once)"
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                + (f"; missing: {', '.join(missing)}" if missing else ""),
            )
        reader.fieldnames = header
        count = 0
        for row in reader:
            count += 1
            if count > MAX_LINES:
                raise InvalidInput("file", f"has more than {MAX_LINES} lines")
            if None in row:  # more cells than columns
                yield reader.line_num, {"record": row.get("record") or "", "_extra": "yes"}
                continue
            if not any((value or "").strip() for value in row.values()):
                continue  # a blank line
            yield reader.line_num, {k: (v or "") for k, v in row.items()}
    except csv.Error as exc:
        raise InvalidInput("file", f"is not valid CSV (line {reader.line_num}): {exc}") from None


def _planned(row: dict[str, str], planned: dict[str, int]) -> int | None:
    """The earlier line of this dry run that would register this line's organization."""
    try:
        return planned.get(_org_id(row))
    except (InvalidInput, ValueError):
        return None


def _subject(record: str, row: dict[str, str]) -> str:
    if record == "user_group":
        return f"{row.get('group_name', '')!r} of {row.get('identifier', '')}"
    return f"{row.get('identifier', '')} {row.get('name', '')!r}".strip()


def _org_id(row: dict[str, str]) -> str:
    return organization_id(inputs.identifier("identifier", row.get("identifier")))


def _person(service: AccessService, field_name: str, value: str) -> str:
    username = inputs.username(field_name, value.strip())
    with _directory_errors():
        if service.directory.get_person(username) is None:
            raise InvalidInput(field_name, f"no person {username!r} in the directory")
    return username


def _organization_line(
    service: AccessService, helpdesk: str, number: int, row: dict[str, str], dry_run: bool
) -> LineResult:
    """Register the organization with its SO and approve it, as the help desk."""
    if "_extra" in row:
        raise InvalidInput("line", "has more cells than the header has columns")
    so = _person(service, "security_official", row.get("security_official", ""))
    org_id = _org_id(row)
    subject = _subject("organization", row)
    with _directory_errors():
        org = service.directory.get_organization(org_id)
        holders = (
            service.directory.members_of(
                Membership(Role.SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, org_id)
            )
            if org is not None
            else frozenset()
        )
        pending = _pending(service, RequestKind.REGISTER_ORGANIZATION, so, org_id)
    if org is not None and org.status is EntityStatus.ACTIVE and so in holders:
        return LineResult(number, "organization", subject, "unchanged", f"{so} is its SO already")
    if org is not None and pending is not None:  # filed by an earlier run cut short: decide it
        request = pending
        if dry_run:
            return LineResult(
                number,
                "organization",
                subject,
                "would create",
                f"{so}'s pending registration would be approved by {helpdesk}",
                request_id=request.id,
            )
    else:

        def register(check_only: bool) -> Request:
            return service.register_organization(
                so,
                name=row.get("name", ""),
                identifier=row.get("identifier", ""),
                provider_type=row.get("provider_type", ""),
                address=row.get("address", ""),
                phone=row.get("phone", ""),
                dry_run=check_only,
            )

        unfiled = register(True)
        _may_decide(service, helpdesk, unfiled)  # e.g. DEC-1: before anything is filed
        request = unfiled if dry_run else register(False)
        if dry_run:
            return LineResult(
                number,
                "organization",
                subject,
                "would create",
                f"registered with {so} as its Security Official, approved by {helpdesk}",
            )
    decided = service.decide(helpdesk, request.id, approve=True)
    return LineResult(
        number,
        "organization",
        subject,
        "created",
        f"{so} is its Security Official (approved by {decided.decided_by})",
        request_id=request.id,
    )


def _may_decide(service: AccessService, helpdesk: str, request: Request) -> None:
    """Refuse the line, before anything is written, if the help desk could not decide it."""
    actor = service.actor(helpdesk)
    with _directory_errors():
        facts = service.facts.for_request(request)
    decision = policy.may_decide(actor, request, facts, service.clock())
    if not decision.allowed:
        raise refusal(decision)


def _group_line(
    service: AccessService,
    number: int,
    row: dict[str, str],
    dry_run: bool,
    planned: dict[str, int],
) -> LineResult:
    """File the UGA's request for a new group; the SO or a BSO decides it (UGA-2)."""
    if "_extra" in row:
        raise InvalidInput("line", "has more cells than the header has columns")
    uga = _person(service, "group_administrator", row.get("group_administrator", ""))
    org_id = _org_id(row)
    name = inputs.text("group_name", row.get("group_name", ""), max_length=80)
    group_id = slug(name)
    subject = _subject("user_group", row)
    waits = "waits for the decision of the organization's SO or a BSO (UGA-2)"
    with _directory_errors():
        org = service.directory.get_organization(org_id)
        group = service.directory.get_user_group(org_id, group_id) if org is not None else None
        holders = (
            service.directory.members_of(
                Membership(Role.USER_GROUP_ADMINISTRATOR, ScopeKind.USER_GROUP, group_id, org_id)
            )
            if group is not None
            else frozenset()
        )
        pending = _pending(service, RequestKind.USER_GROUP_ADMINISTRATOR, uga, org_id, group_id)
    if group is not None and uga in holders:
        return LineResult(number, "user_group", subject, "unchanged", f"{uga} is its UGA already")
    if pending is not None:
        return LineResult(
            number, "user_group", subject, "unchanged", f"{uga}'s request is filed; it {waits}"
        )
    if dry_run and org_id in planned:
        return LineResult(
            number,
            "user_group",
            subject,
            "would file",
            f"{uga}'s request, once line {planned[org_id]} has registered the organization; "
            f"it then {waits}",
        )
    request = service.request_user_group_administrator(
        uga, org_id, group_name=name, dry_run=dry_run
    )
    return LineResult(
        number,
        "user_group",
        subject,
        "would file" if dry_run else "filed",
        f"{uga}'s request for the new group; it {waits}",
        request_id="" if dry_run else request.id,
    )


def _pending(
    service: AccessService, kind: RequestKind, requester: str, org_id: str, group_id: str = ""
) -> Request | None:
    for request in service.directory.find_requests(
        status=RequestStatus.PENDING, kind=kind, requester=requester, organization_id=org_id
    ):
        if not group_id or request.group_id == group_id:
            return request
    return None


def _audit_line(service: AccessService, helpdesk: str, row: dict[str, str], r: LineResult) -> None:
    """One record per line, the help desk's (the request and decision have their own)."""
    try:
        org_id = _org_id(row)
    except (InvalidInput, ValueError):
        org_id = ""
    with _directory_errors():
        request = service.directory.get_request(r.request_id) if r.request_id else None
    service._audit(
        helpdesk,
        f"import:{r.record if r.record in RECORDS else 'line'}",
        "refused" if r.refused else "ok",
        request,
        f"line {r.line}: {r.outcome}: {r.detail}" + (f" ({r.rule})" if r.rule else ""),
        **({} if request else {"organization_id": org_id}),
    )


# --------------------------------------------------------------------------------------------
# Export


def export_roles(service: AccessService, username: str) -> str:
    """Every current role of every organization with its certification dates, as CSV."""
    actor = service.actor(username)
    service._require(actor, policy.may_export_roles(actor), "export")
    period = service.config.recertification_period
    with _directory_errors():
        requests = service.directory.find_requests(status=RequestStatus.APPROVED, ended=False)
        organizations = {}
        names: dict[str, str] = {}
        rows = []
        for request in requests:
            membership = policy.granted_membership(request)
            if membership is None:
                continue
            org_id = membership.organization_id or request.organization_id
            if org_id and org_id not in organizations:
                organizations[org_id] = service.directory.get_organization(org_id)
            if request.requester not in names:
                person = service.directory.get_person(request.requester)
                names[request.requester] = person.display_name if person else ""
            org = organizations.get(org_id)
            certified = request.recertified_at or request.decided_at or request.created_at
            rows.append(
                {
                    "organization_id": org_id,
                    "organization_name": org.name if org else "",
                    "identifier": org.identifier if org else "",
                    "provider_type": org.provider_type.value if org else "",
                    "organization_status": org.status.value if org else "",
                    "role": membership.role.value,
                    "scope": membership.scope_kind.value,
                    "group_id": request.group_id,
                    "surrogate_group_id": request.surrogate_group_id,
                    "username": request.requester,
                    "full_name": names[request.requester],
                    "approved_at": _date(request.decided_at),
                    "approved_by": request.decided_by,
                    "certified_at": _date(certified),
                    "certification_due": _date(certified + period),
                }
            )
    rows.sort(key=lambda r: (r["organization_id"], r["role"], r["group_id"], r["username"]))
    service._audit(actor.username, "export", "ok", None, f"{len(rows)} roles exported")
    return _csv(EXPORT_COLUMNS, rows)


def _date(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else ""


def neutralize(cell: str) -> str:
    """A cell a spreadsheet shows as text: one that starts like a formula gets an apostrophe."""
    return f"'{cell}" if cell.startswith(FORMULA_STARTS) else cell


def _csv(columns: Iterable[str], rows: Iterable[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: neutralize(str(value)) for key, value in row.items()})
    return out.getvalue()


def template() -> str:
    """The import's header and one example of each record, for the help desk to fill in."""
    example = [
        {"record": "organization", "identifier": "12-3456789", "name": "Lakeside General"}
        | {"provider_type": "hospital", "security_official": "sofia"},
        {"record": "user_group", "identifier": "12-3456789", "group_name": "Billing"}
        | {"group_administrator": "uma"},
    ]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(example)
    return out.getvalue()
