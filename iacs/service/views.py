"""Read-only views for the portal's pages and API: who is in an organization, its record, search.

Writes and decisions stay in ``AccessService``; these helpers only read, and they ask the same
policy who may see what (``may_view_organization``, ``may_read_audit``), re-reading the actor's
memberships from the directory on every call (DEC-2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import TypeVar

from iacs import policy
from iacs.directory import errors as directory_errors
from iacs.domain import (
    AuditRecord,
    Membership,
    Organization,
    Person,
    Role,
    ScopeKind,
    SurrogateGroup,
    UserGroup,
)
from iacs.service import inputs
from iacs.service.access import AccessService
from iacs.service.base import _directory_errors
from iacs.service.errors import Forbidden, InvalidInput, NotFound, refusal

T = TypeVar("T")

SEARCH_LIMIT = 50
AUDIT_PAGE_SIZE = 100
AUDIT_MAX_PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class RoleHolder:
    """One person holding one role, and whether the viewer may revoke it (LC-1)."""

    username: str
    membership: Membership
    revocable: bool


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
        member = any(
            m.scope_kind is ScopeKind.SURROGATE_GROUP and m.scope_id == sug_id
            for m in actor.memberships
        )
        served = any(actor.is_officer(org) for org in sug.associated_organizations)
        if not (member or served or actor.is_help_desk):
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

    def search(self, username: str, query: str) -> SearchResult:
        """The help desk's search of people and organizations (LC-4 needs to find a successor)."""
        actor = self.access.actor(username)
        if not actor.is_help_desk:
            raise Forbidden("only the help desk searches people and organizations", rule="AUD-2")
        query = inputs.text("q", query, max_length=80)
        with _directory_errors():
            people = self.directory.find_people(query, limit=SEARCH_LIMIT)
            organizations = self.directory.find_organizations(query, limit=SEARCH_LIMIT)
        return SearchResult(query, list(people), list(organizations))

    def healthy(self) -> bool:
        """True when the directory answers."""
        try:
            return bool(self.directory.ping())
        except directory_errors.DirectoryError:
            return False

    # ------------------------------------------------------------------ internals

    def _holders(self, actor: policy.Actor, membership: Membership) -> list[RoleHolder]:
        return [
            RoleHolder(name, membership, policy.may_revoke(actor, name, membership).allowed)
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


def _found(entity: T | None) -> T:
    """The directory's getters answer None for a missing entry: that is a 404."""
    if entity is None:
        raise NotFound("no such organization, group or person")
    return entity
