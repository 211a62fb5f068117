"""Read-only views for the portal's pages and API: who is in an organization, its record, search.

Writes and decisions stay in ``AccessService``; these helpers only read, and they ask the same
policy who may see what (``may_view_organization``, ``may_read_audit``), re-reading the actor's
memberships from the directory on every call (DEC-2).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar

from iacs import policy
from iacs.directory import errors as directory_errors
from iacs.domain import (
    GRANTED_ROLE,
    AuditRecord,
    EntityStatus,
    Membership,
    Organization,
    Person,
    Request,
    RequestKind,
    RequestStatus,
    Role,
    ScopeKind,
    SurrogateGroup,
    UserGroup,
)
from iacs.service import inputs
from iacs.service.access import AccessService
from iacs.service.base import _directory_errors
from iacs.service.errors import InvalidInput, NotFound, refusal
from iacs.service.ports import ServiceDirectory

T = TypeVar("T")

SEARCH_LIMIT = 50
LOOKUP_LIMIT = 10
PERSON_AUDIT_LIMIT = 20
CAMPAIGN_WINDOW = timedelta(days=30)
"""LC-3 campaign: a role falls due when its recertification is due within this window."""
AUDIT_PAGE_SIZE = 100
AUDIT_MAX_PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class RoleHolder:
    """One person holding one role, and whether the viewer may revoke it (LC-1)."""

    username: str
    membership: Membership
    revocable: bool
    person: Person | None = None
    """Their name and e-mail (None when the account has gone)."""

    @property
    def name(self) -> str:
        return (self.person.display_name if self.person else "") or self.username


@dataclass(frozen=True, slots=True)
class GroupView:
    """A user group (or Surrogate User Group) with its administrators and End Users."""

    group: UserGroup | SurrogateGroup
    administrators: list[RoleHolder]
    end_users: list[RoleHolder]
    may_edit_profile: bool


@dataclass(frozen=True, slots=True)
class OrganizationView:
    """Everything the organization page shows: profile, role holders, groups, ORG-6."""

    organization: Organization
    security_officials: list[RoleHolder]
    backup_security_officials: list[RoleHolder]
    groups: list[GroupView]
    surrogate_groups: list[SurrogateGroup]
    completeness: policy.Completeness
    may_edit_profile: bool
    may_read_audit: bool


AUDIT_OUTCOMES = ("ok", "denied", "all")
_ACTION = re.compile(r"[a-z_]{1,40}(:[a-z_]{1,40})?")


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Validated criteria of an audit view."""

    actor: str | None = None
    action: str | None = None
    outcome: str = "all"
    since: datetime | None = None
    until: datetime | None = None
    page: int = 1
    per_page: int = AUDIT_PAGE_SIZE


@dataclass(frozen=True, slots=True)
class AuditPage:
    """One page of an audit view: the records, how many match, and the refused attempts."""

    records: list[AuditRecord]
    total: int
    refused: int
    """Refused attempts matching the other criteria (listed with ``outcome=denied``)."""
    query: AuditQuery

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.query.per_page))


def audit_query(raw: dict[str, str | None], *, default_outcome: str) -> AuditQuery:
    """The criteria of an audit view from query parameters; anything malformed is a 400."""
    unknown = set(raw) - {"actor", "action", "outcome", "since", "until", "page", "per_page"}
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "is not a known filter")
    actor = raw.get("actor") or None
    action = raw.get("action") or None
    outcome = raw.get("outcome") or default_outcome
    if actor is not None:
        actor = inputs.username("actor", actor)
    if action is not None and not _ACTION.fullmatch(action):
        raise InvalidInput("action", "is not an action name (like decide or decide:approved)")
    if outcome not in AUDIT_OUTCOMES:
        raise InvalidInput("outcome", f"must be one of {', '.join(AUDIT_OUTCOMES)}")
    since = _moment("since", raw.get("since"), end_of_day=False)
    until = _moment("until", raw.get("until"), end_of_day=True)
    if since and until and since > until:
        raise InvalidInput("since", "must not be after until")
    return AuditQuery(
        actor=actor,
        action=action,
        outcome=outcome,
        since=since,
        until=until,
        page=_count("page", raw.get("page"), 1, 100_000),
        per_page=_count("per_page", raw.get("per_page"), AUDIT_PAGE_SIZE, AUDIT_MAX_PAGE_SIZE),
    )


def _moment(field_name: str, value: str | None, *, end_of_day: bool) -> datetime | None:
    """An ISO date (a whole day) or date-time; naive values are UTC."""
    if not value:
        return None
    if len(value) > 40:
        raise InvalidInput(field_name, "is not an ISO date or date-time")
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime.combine(day, time.max if end_of_day else time.min)
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(field_name, "is not an ISO date or date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _count(field_name: str, value: str | None, default: int, maximum: int) -> int:
    if value in (None, ""):
        return default
    if not re.fullmatch(r"[0-9]{1,6}", value) or not 1 <= int(value) <= maximum:
        raise InvalidInput(field_name, f"must be a whole number from 1 to {maximum}")
    return int(value)


@dataclass(frozen=True, slots=True)
class SearchResult:
    query: str
    people: list[Person] = field(default_factory=list)
    organizations: list[Organization] = field(default_factory=list)


ROLE_WORDS: dict[Role, str] = {
    Role.HELP_DESK: "EUS help desk",
    Role.SECURITY_OFFICIAL: "Security Official",
    Role.BACKUP_SECURITY_OFFICIAL: "Backup Security Official",
    Role.USER_GROUP_ADMINISTRATOR: "User Group Administrator",
    Role.END_USER: "End User",
    Role.INDIVIDUAL_PRACTITIONER: "Individual practitioner",
}


@dataclass(frozen=True, slots=True)
class Place:
    """Where a role or request applies, in words: the organization and group by name."""

    organization_id: str = ""
    organization_name: str = ""
    group_id: str = ""
    group_name: str = ""
    surrogate_group_id: str = ""
    surrogate_group_name: str = ""
    npi: str = ""

    @property
    def words(self) -> str:
        """ "Billing at Lakeside General Hospital", "Clearing Co (Surrogate User Group)"..."""
        parts = []
        if self.group_id:
            parts.append(self.group_name or self.group_id)
        if self.surrogate_group_id:
            parts.append(f"{self.surrogate_group_name or self.surrogate_group_id}")
        if self.organization_id:
            parts.append(self.organization_name or self.organization_id)
        if self.npi:
            parts.append(f"NPI {self.npi}")
        text = " at ".join(parts[:2]) if self.group_id else " for ".join(parts[:2])
        return text or "the EUS help desk"


@dataclass(frozen=True, slots=True)
class RoleView:
    """One role someone holds, in words."""

    membership: Membership
    role_words: str
    place: Place


@dataclass(frozen=True, slots=True)
class RequestView:
    """A request as officials read it: who (name, e-mail), what in words, where, when."""

    request: Request
    requester: Person
    place: Place
    what: str
    """"Backup Security Official", "End User", "a new user group Billing"... in words."""
    may_decide: bool = False
    may_withdraw: bool = False

    @property
    def title(self) -> str:
        name = self.requester.display_name or self.requester.username
        return f"{name} asks to be {self.what} — {self.place.words}"


@dataclass(frozen=True, slots=True)
class PersonView:
    """A person page: their roles, requests and (for the help desk) their recent audit trail."""

    person: Person
    roles: list[RoleView]
    requests: list[RequestView]
    audit: list[AuditRecord] | None
    """None when the viewer may not read the whole record (officials see no audit here)."""
    revocable: dict[Membership, bool]


@dataclass(frozen=True, slots=True)
class Certification:
    """LC-3: one role the viewer may recertify, with its due date."""

    view: RequestView
    role: RoleView
    due: datetime
    overdue: bool


@dataclass(frozen=True, slots=True)
class CampaignProgress:
    """LC-3 campaign in one scope: roles falling due in the window, and how many are done."""

    place: Place
    due: int
    certified: int


class ViewService:
    """Read models over the same directory and policy the ``AccessService`` uses."""

    def __init__(self, access: AccessService) -> None:
        self.access = access
        self.directory = access.directory

    def memberships(self, username: str) -> list[Membership]:
        """The roles the person holds now, in a stable order."""
        actor = self.access.actor(username)
        return sorted(
            actor.memberships, key=lambda m: (m.role.value, m.organization_id, m.scope_id)
        )

    def organization(self, username: str, org_id: str) -> OrganizationView:
        """The organization page; only people holding a role in it (and the help desk) see it."""
        org_id = inputs.entity_id("organization", org_id)
        actor = self.access.actor(username)
        with _directory_errors():
            org = _found(self.directory.get_organization(org_id))
        if not policy.may_view_organization(actor, org_id).allowed:
            raise NotFound("no such organization, or you hold no role in it")
        with _directory_errors():
            sos = self._holders(
                actor, Membership(Role.SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, org_id)
            )
            bsos = self._holders(
                actor, Membership(Role.BACKUP_SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, org_id)
            )
            groups = [
                self._group_view(actor, group) for group in self.directory.list_user_groups(org_id)
            ]
            surrogates = self.directory.list_surrogate_groups(organization_id=org_id)
        roles: dict[str, set[Role]] = {}
        for holder in [*sos, *bsos] + [
            h for view in groups for h in [*view.administrators, *view.end_users]
        ]:
            roles.setdefault(holder.username, set()).add(holder.membership.role)
        return OrganizationView(
            organization=org,
            security_officials=sos,
            backup_security_officials=bsos,
            groups=sorted(groups, key=lambda v: v.group.name.lower()),
            surrogate_groups=sorted(surrogates, key=lambda s: s.name.lower()),
            completeness=policy.organization_completeness(roles),
            may_edit_profile=policy.may_update_organization_profile(actor, org_id).allowed,
            may_read_audit=policy.may_read_audit(actor, org_id).allowed,
        )

    def user_group(self, username: str, org_id: str, group_id: str) -> GroupView:
        """A user group page, for people holding a role in its organization (and the help desk)."""
        org_id = inputs.entity_id("organization", org_id)
        group_id = inputs.entity_id("group", group_id)
        actor = self.access.actor(username)
        if not policy.may_view_organization(actor, org_id).allowed:
            raise NotFound("no such user group, or you hold no role in its organization")
        with _directory_errors():
            group = _found(self.directory.get_user_group(org_id, group_id))
            return self._group_view(actor, group)

    def surrogate_group(self, username: str, sug_id: str) -> GroupView:
        """A Surrogate User Group page: its members, the officials it works for, the help desk."""
        sug_id = inputs.entity_id("surrogate_group", sug_id)
        actor = self.access.actor(username)
        with _directory_errors():
            sug = _found(self.directory.get_surrogate_group(sug_id))
        if not policy.may_view_surrogate_group(actor, sug).allowed:
            raise NotFound("no such Surrogate User Group, or you hold no role in it")
        with _directory_errors():
            return self._surrogate_view(actor, sug)

    def audit(self, username: str, org_id: str | None = None, **criteria: str | None) -> AuditPage:
        """AUD-2: an organization's record for its SO (and BSOs); all of it for the help desk.

        One page, newest first, filtered by who, action, outcome and period (``criteria`` are
        the raw query parameters, validated here). An organization's view shows its history
        by default and counts the refused attempts apart (``outcome=denied`` lists them): a
        flood of denials by an outsider can no longer push the genuine records out of sight.
        """
        if org_id is not None:
            org_id = inputs.entity_id("organization", org_id)
        actor = self.access.actor(username)
        decision = policy.may_read_audit(actor, org_id)
        if not decision.allowed:
            raise refusal(decision)
        query = audit_query(criteria, default_outcome="ok" if org_id else "all")
        outcome = None if query.outcome == "all" else query.outcome

        def page(outcome: str | None, offset: int, limit: int) -> tuple[list[AuditRecord], int]:
            return self.directory.page_audit(
                organization_id=org_id,
                actor=query.actor,
                action=query.action,
                since=query.since,
                until=query.until,
                outcome=outcome,
                offset=offset,
                limit=limit,
            )

        with _directory_errors():
            records, total = page(outcome, (query.page - 1) * query.per_page, query.per_page)
            refused = total
            if outcome != "denied":
                _, refused = page("denied", 0, 0)
        return AuditPage(records, total, refused, query)

    def enter_help_desk_console(self, username: str) -> None:
        """Raise the policy's refusal unless ``username`` may use the help-desk console."""
        decision = policy.may_use_help_desk_console(self.access.actor(username))
        if not decision.allowed:
            raise refusal(decision)

    def search(self, username: str, query: str) -> SearchResult:
        """The help desk's search of people and organizations (LC-4 needs to find a successor)."""
        self.enter_help_desk_console(username)
        query = inputs.text("q", query, max_length=80)
        with _directory_errors():
            people = self.directory.find_people(query, limit=SEARCH_LIMIT)
            organizations = self.directory.find_organizations(query, limit=SEARCH_LIMIT)
        return SearchResult(query, list(people), list(organizations))

    # ------------------------------------------------------------------ in words (issue 9)

    def queue(self, username: str) -> list[RequestView]:
        """The approval queue with names: who asks (name, e-mail), for what, where, when."""
        names = _Names(self.directory)
        with _directory_errors():
            return [
                self._request_view(names, r, may_decide=True)
                for r in self.access.approval_queue(username)
            ]

    def request(self, username: str, request_id: str) -> RequestView:
        """The request page: visible as ``get_request`` judges, with what the viewer may do."""
        request = self.access.get_request(username, request_id)
        actor = self.access.actor(username)
        with _directory_errors():
            facts = self.access.facts.for_request(request)
            decide = policy.may_decide(actor, request, facts, self.access.clock())
            return self._request_view(
                _Names(self.directory),
                request,
                may_decide=decide.allowed,
                may_withdraw=policy.may_withdraw(actor, request).allowed,
            )

    def my_requests(self, username: str) -> list[RequestView]:
        """The person's own requests, newest first, in words, with a withdraw button if pending."""
        actor = self.access.actor(username)
        names = _Names(self.directory)
        with _directory_errors():
            return [
                self._request_view(names, r, may_withdraw=policy.may_withdraw(actor, r).allowed)
                for r in self.access.my_requests(username)
            ]

    def roles(self, username: str) -> list[RoleView]:
        """The roles the person holds now, in words."""
        names = _Names(self.directory)
        with _directory_errors():
            return [self._role_view(names, m) for m in self.memberships(username)]

    def person(self, username: str, target: str) -> PersonView:
        """The person page (``may_view_person``): a 404 to officials outside the person's scope.

        Officials see only the roles and requests within their scope; the help desk sees all of
        them and the person's recent audit trail (as actor and as subject).
        """
        target = inputs.username("username", target)
        actor = self.access.actor(username)
        names = _Names(self.directory)
        with _directory_errors():
            person = self.directory.get_person(target)
            memberships = self.directory.memberships_of(target) if person else frozenset()
            requests = []
            for r in self.directory.find_requests(requester=target) if person else []:
                facts = self.access.facts.for_request(r)
                if policy.may_view_request(actor, r, facts).allowed:
                    requests.append(self._request_view(names, r))
            decision = policy.may_view_person(
                actor, target, memberships, requests_in_view=len(requests)
            )
            if person is None or not decision.allowed:
                raise NotFound("no such person, or they hold no role in your scope")
            shown = sorted(
                (m for m in memberships if _sees(actor, target, m)),
                key=lambda m: (m.role.value, m.organization_id, m.scope_id),
            )
            audit = None
            if policy.may_see_whole_record(actor).allowed:
                records = {
                    a.id: a
                    for a in [
                        *self.directory.find_audit(subject=target, limit=PERSON_AUDIT_LIMIT),
                        *self.directory.find_audit(actor=target, limit=PERSON_AUDIT_LIMIT),
                    ]
                }
                audit = sorted(records.values(), key=lambda a: (a.at, a.id), reverse=True)[
                    :PERSON_AUDIT_LIMIT
                ]
            return PersonView(
                person=person,
                roles=[self._role_view(names, m) for m in shown],
                requests=sorted(requests, key=lambda v: v.request.created_at, reverse=True),
                audit=audit,
                revocable={m: policy.may_revoke(actor, target, m).allowed for m in shown},
            )

    def role_to_end(self, username: str, holder: str, membership: Membership) -> RoleView:
        """The confirmation page of a revocation or resignation: the role in words.

        Asks the policy first: someone without authority over the role learns nothing, not even
        whether the person holds it (the same refusal either way).
        """
        holder = inputs.username("holder", holder)
        decision = policy.may_revoke(self.access.actor(username), holder, membership)
        if not decision.allowed:
            raise refusal(decision)
        with _directory_errors():
            if membership not in self.directory.memberships_of(holder):
                raise NotFound("that person does not hold that role")
            return self._role_view(_Names(self.directory), membership)

    def may_revoke(self, username: str, holder: str, membership: Membership) -> policy.Decision:
        """The policy's answer before the confirmation page asks for a reason (LC-1, LC-4)."""
        return policy.may_revoke(
            self.access.actor(username), inputs.username("holder", holder), membership
        )

    def organization_name(self, org_id: str) -> str:
        """An organization's name for a heading (names are public to registrants: ORG-1)."""
        org_id = inputs.entity_id("organization", org_id)
        with _directory_errors():
            return _Names(self.directory).place(organization_id=org_id).organization_name or org_id

    def person_card(self, username: str) -> Person:
        """Name and e-mail of a person (for a confirmation page); the username alone if gone."""
        username = inputs.username("username", username)
        with _directory_errors():
            return self.directory.get_person(username) or Person(username)

    def organizations_without_security_official(self, username: str) -> list[Organization]:
        """LC-4: active organizations nobody holds the Security Official role of (help desk)."""
        actor = self.access.actor(username)
        decision = policy.may_replace_security_official(actor)
        if not decision.allowed:
            raise refusal(decision)
        with _directory_errors():
            return [
                org
                for org in self.directory.find_organizations(status=EntityStatus.ACTIVE, limit=0)
                if not self.directory.members_of(
                    Membership(Role.SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, org.id)
                )
            ]

    def find_organizations(self, username: str, text: str) -> list[Organization]:
        """Search-as-you-type: active organizations by part of their name, TIN/EIN or NPI.

        Any signed-in person may look up registered organizations: naming one is the first
        step of every request (ORG-1 makes their names public to registrants). Matching is
        case-insensitive (the directory's caseIgnore rules) and the text is escaped.
        """
        self.access.actor(username)
        text = inputs.text("q", text, max_length=80)
        digits = re.sub(r"[\s-]", "", text)
        with _directory_errors():
            found = self.directory.find_organizations(
                digits if digits.isdigit() else text,
                status=EntityStatus.ACTIVE,
                limit=LOOKUP_LIMIT,
            )
        return found

    def resolve_organization(self, username: str, text: str) -> list[Organization]:
        """What a person typed in an organization field: an id, a number, or part of a name.

        One match is the answer; several are offered as a choice; none is a field error.
        An exact name (ignoring case) wins over partial matches.
        """
        text = (text or "").strip()
        if not text or re.fullmatch(r"org-[0-9]{9,10}", text):
            return []
        found = self.find_organizations(username, text)
        exact = [o for o in found if o.name.casefold() == text.casefold()]
        return exact if len(exact) == 1 else found

    def find_groups(self, username: str, org_id: str, text: str = "") -> list[UserGroup]:
        """Search-as-you-type: an organization's active user groups by part of their name."""
        self.access.actor(username)
        org_id = inputs.entity_id("organization", org_id)
        text = inputs.text("q", text, max_length=80, required=False).casefold()
        with _directory_errors():
            groups = self.directory.list_user_groups(org_id, status=EntityStatus.ACTIVE)
        return [g for g in groups if text in g.name.casefold() or text in g.id][:LOOKUP_LIMIT]

    def certifications(self, username: str) -> list[Certification]:
        """LC-3: every current role the person may recertify, soonest due first.

        Candidates are the approved requests in the scopes the person holds (as for the
        approval queue); the policy's ``may_recertify`` decides each one.
        """
        actor = self.access.actor(username)
        now = self.access.clock()
        period = self.access.config.recertification_period
        names = _Names(self.directory)
        found: list[Certification] = []
        with _directory_errors():
            for request in self._approved_in_scope(actor):
                facts = self.access.facts.for_request(request)
                if not policy.may_recertify(actor, request.requester, request, facts, now).allowed:
                    continue
                membership = policy.granted_membership(request)
                if membership is None:
                    continue
                due = _since(request) + period
                found.append(
                    Certification(
                        self._request_view(names, request),
                        self._role_view(names, membership),
                        due,
                        due <= now,
                    )
                )
        return sorted(found, key=lambda c: (c.role.place.words, c.due))

    def campaign(self, username: str) -> list[CampaignProgress]:
        """LC-3 campaign progress per organization: the help desk all, an SO/BSO their own.

        A role is in the campaign when it falls due within ``CAMPAIGN_WINDOW`` (or is overdue)
        or was recertified within it; it is done when recertified within it.
        """
        actor = self.access.actor(username)
        now = self.access.clock()
        period = self.access.config.recertification_period
        names = _Names(self.directory)
        tally: dict[str, list[int]] = {}
        with _directory_errors():
            if actor.is_help_desk:
                candidates = self.directory.find_requests(
                    status=RequestStatus.APPROVED, ended=False
                )
            else:
                candidates = [
                    r
                    for m in actor.memberships
                    if m.scope_kind is ScopeKind.ORGANIZATION and actor.is_officer(m.scope_id)
                    for r in self.directory.find_requests(
                        status=RequestStatus.APPROVED, organization_id=m.scope_id, ended=False
                    )
                ]
            for request in candidates:
                if not request.organization_id or policy.granted_membership(request) is None:
                    continue
                if not policy.may_read_audit(actor, request.organization_id).allowed:
                    continue
                done = bool(
                    request.recertified_at and request.recertified_at > now - CAMPAIGN_WINDOW
                )
                falls_due = _since(request) + period <= now + CAMPAIGN_WINDOW
                if done or falls_due:
                    counts = tally.setdefault(request.organization_id, [0, 0])
                    counts[0] += 1
                    counts[1] += int(done)
            return [
                CampaignProgress(names.place(organization_id=org_id), due, certified)
                for org_id, (due, certified) in sorted(tally.items())
            ]

    def healthy(self) -> bool:
        """True when the directory answers."""
        try:
            return bool(self.directory.ping())
        except directory_errors.DirectoryError:
            return False

    # ------------------------------------------------------------------ internals

    def _request_view(
        self,
        names: _Names,
        request: Request,
        *,
        may_decide: bool = False,
        may_withdraw: bool = False,
    ) -> RequestView:
        place = names.place(
            organization_id=request.organization_id,
            group_id=request.group_id,
            surrogate_group_id=request.surrogate_group_id,
            npi=request.details.get("npi", ""),
            pending_names=request.details,
        )
        return RequestView(
            request=request,
            requester=names.person(request.requester),
            place=place,
            what=_what(request),
            may_decide=may_decide,
            may_withdraw=may_withdraw,
        )

    def _role_view(self, names: _Names, membership: Membership) -> RoleView:
        scope = membership.scope_kind
        return RoleView(
            membership,
            ROLE_WORDS[membership.role],
            names.place(
                organization_id=(
                    membership.scope_id
                    if scope is ScopeKind.ORGANIZATION
                    else membership.organization_id
                ),
                group_id=membership.scope_id if scope is ScopeKind.USER_GROUP else "",
                surrogate_group_id=(
                    membership.scope_id if scope is ScopeKind.SURROGATE_GROUP else ""
                ),
                npi=membership.scope_id if scope is ScopeKind.PRACTITIONER else "",
            ),
        )

    def _approved_in_scope(self, actor: policy.Actor) -> Iterable[Request]:
        """Current approved requests in the scopes the actor holds: a superset of LC-3's list."""
        find = self.directory.find_requests
        seen: set[str] = set()
        for membership in actor.memberships:
            match membership.scope_kind:
                case ScopeKind.SYSTEM:
                    batch = find(
                        status=RequestStatus.APPROVED,
                        kind=(
                            RequestKind.REGISTER_ORGANIZATION,
                            RequestKind.INDIVIDUAL_PRACTITIONER,
                        ),
                        ended=False,
                    )
                case ScopeKind.ORGANIZATION:
                    batch = find(
                        status=RequestStatus.APPROVED,
                        organization_id=membership.scope_id,
                        ended=False,
                    )
                case ScopeKind.USER_GROUP:
                    batch = find(
                        status=RequestStatus.APPROVED,
                        kind=RequestKind.END_USER,
                        organization_id=membership.organization_id,
                        group_id=membership.scope_id,
                        ended=False,
                    )
                case ScopeKind.SURROGATE_GROUP:
                    batch = find(
                        status=RequestStatus.APPROVED,
                        kind=RequestKind.SURROGATE_END_USER,
                        surrogate_group_id=membership.scope_id,
                        ended=False,
                    )
                case _:
                    batch = []
            for request in batch:
                if request.id not in seen and request.ended_at is None:
                    seen.add(request.id)
                    yield request

    def _holders(self, actor: policy.Actor, membership: Membership) -> list[RoleHolder]:
        return [
            RoleHolder(
                name,
                membership,
                policy.may_revoke(actor, name, membership).allowed,
                self.directory.get_person(name),
            )
            for name in sorted(self.directory.members_of(membership))
        ]

    def _group_view(self, actor: policy.Actor, group: UserGroup) -> GroupView:
        org_id, group_id = group.organization_id, group.id
        return GroupView(
            group=group,
            administrators=self._holders(
                actor,
                Membership(Role.USER_GROUP_ADMINISTRATOR, ScopeKind.USER_GROUP, group_id, org_id),
            ),
            end_users=self._holders(
                actor, Membership(Role.END_USER, ScopeKind.USER_GROUP, group_id, org_id)
            ),
            may_edit_profile=policy.may_update_group_profile(actor, org_id, group_id).allowed,
        )

    def _surrogate_view(self, actor: policy.Actor, sug: SurrogateGroup) -> GroupView:
        return GroupView(
            group=sug,
            administrators=self._holders(
                actor, Membership(Role.USER_GROUP_ADMINISTRATOR, ScopeKind.SURROGATE_GROUP, sug.id)
            ),
            end_users=self._holders(
                actor, Membership(Role.END_USER, ScopeKind.SURROGATE_GROUP, sug.id)
            ),
            may_edit_profile=policy.may_update_surrogate_profile(actor, sug.id).allowed,
        )


class _Names:
    """Names of people, organizations and groups, read once per page (a page shows many rows)."""

    def __init__(self, directory: ServiceDirectory) -> None:
        self.directory = directory
        self._people: dict[str, Person] = {}
        self._orgs: dict[str, str] = {}
        self._groups: dict[tuple[str, str], str] = {}
        self._sugs: dict[str, str] = {}

    def person(self, username: str) -> Person:
        if username not in self._people:
            self._people[username] = self.directory.get_person(username) or Person(username)
        return self._people[username]

    def place(
        self,
        *,
        organization_id: str = "",
        group_id: str = "",
        surrogate_group_id: str = "",
        npi: str = "",
        pending_names: dict[str, str] | None = None,
    ) -> Place:
        """The names; a request for a new organization or group that has gone keeps its own."""
        details = pending_names or {}
        org_name = group_name = sug_name = ""
        if organization_id:
            if organization_id not in self._orgs:
                org = self.directory.get_organization(organization_id)
                self._orgs[organization_id] = org.name if org else ""
            org_name = self._orgs[organization_id] or (
                details.get("name", "") if not surrogate_group_id else ""
            )
        if group_id and organization_id:
            key = (organization_id, group_id)
            if key not in self._groups:
                group = self.directory.get_user_group(organization_id, group_id)
                self._groups[key] = group.name if group else ""
            group_name = self._groups[key] or details.get("group_name", "")
        if surrogate_group_id:
            if surrogate_group_id not in self._sugs:
                sug = self.directory.get_surrogate_group(surrogate_group_id)
                self._sugs[surrogate_group_id] = sug.name if sug else ""
            sug_name = self._sugs[surrogate_group_id] or details.get("name", "")
        return Place(
            organization_id, org_name, group_id, group_name, surrogate_group_id, sug_name, npi
        )


def _what(request: Request) -> str:
    """What a request asks for, in words ("the Security Official of a new organization")."""
    match request.kind:
        case RequestKind.REGISTER_ORGANIZATION:
            return "the Security Official of a newly registered organization"
        case RequestKind.USER_GROUP_ADMINISTRATOR if request.details.get("new_group"):
            return "the User Group Administrator of a new user group"
        case RequestKind.REGISTER_SURROGATE_GROUP:
            return "the administrator of a new Surrogate User Group"
        case RequestKind.SURROGATE_ASSOCIATION:
            return "associated (their Surrogate User Group working for a further provider)"
    role = GRANTED_ROLE[request.kind]
    if role is None:
        return "associated"
    article = "an" if role in (Role.END_USER, Role.INDIVIDUAL_PRACTITIONER) else "a"
    return f"{article} {ROLE_WORDS[role]}"


def _since(request: Request) -> datetime:
    """When a role's recertification period started (LC-3)."""
    return request.recertified_at or request.decided_at or request.created_at


def _sees(actor: policy.Actor, target: str, membership: Membership) -> bool:
    return actor.username == target or policy.may_view_membership(actor, membership).allowed


def _found(entity: T | None) -> T:
    """The directory's getters answer None for a missing entry: that is a 404."""
    if entity is None:
        raise NotFound("no such organization, group or person")
    return entity
