"""The delegated-authority policy: who may do what, decided from plain data. Pure and total.

Every question the system asks ("may this person submit this request?", "may this actor approve
it?", "may they revoke that role?") is answered here and nowhere else. Callers pass in everything
the answer depends on: the actor and their approved memberships (read from the directory at the
moment of the decision, DEC-2), the request, the facts about the organization or group, and
``now``. Nothing here reads a clock, a directory or a request context.

Each answer is a ``Decision`` naming the rule that settled it and a reason a person can read; a
denial also says its kind (``Refusal``: the actor lacks authority, the request collides with the
directory's state, or it breaks a rule of the model), which the portal turns into a status code.
Checks that deny run before checks that allow, and the first deny wins: a grant of authority can
never override a prohibition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from iacs.domain import (
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
)


class Refusal(StrEnum):
    """The kind of a denial: what the refusal means to the person refused."""

    FORBIDDEN = "forbidden"
    """The actor lacks authority for this action."""
    CONFLICT = "conflict"
    """The request collides with the directory's state (already registered, already decided)."""
    BY_RULE = "refused_by_rule"
    """The request breaks a rule of the model (ORG-7, EU-2, IND-1...), whoever files it."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one question: allowed or not, the rule that settled it, and why.

    ``kind`` is None when allowed, and says what kind of refusal a denial is.
    """

    allowed: bool
    rule: str
    reason: str
    kind: Refusal | None = None


def allow(rule: str, reason: str) -> Decision:
    return Decision(True, rule, reason)


def deny(rule: str, reason: str, kind: Refusal = Refusal.FORBIDDEN) -> Decision:
    return Decision(False, rule, reason, kind)


def refuse(rule: str, reason: str) -> Decision:
    """A denial by a rule of the model: the request itself is refused, whoever files it."""
    return deny(rule, reason, Refusal.BY_RULE)


def conflict(rule: str, reason: str) -> Decision:
    """A denial because the directory's state already answers it (registered, decided)."""
    return deny(rule, reason, Refusal.CONFLICT)


@dataclass(frozen=True, slots=True)
class Actor:
    """A signed-in person and the memberships the directory holds for them right now."""

    username: str
    memberships: frozenset[Membership] = frozenset()

    @property
    def is_help_desk(self) -> bool:
        return any(m.role is Role.HELP_DESK for m in self.memberships)

    def holds(self, role: Role, scope_kind: ScopeKind, scope_id: str, org_id: str = "") -> bool:
        """True when the actor holds ``role`` in exactly this scope."""
        return any(
            m.role is role
            and m.scope_kind is scope_kind
            and m.scope_id == scope_id
            and (not org_id or m.organization_id == org_id)
            for m in self.memberships
        )

    def is_security_official(self, org_id: str) -> bool:
        return self.holds(Role.SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, org_id)

    def is_backup_security_official(self, org_id: str) -> bool:
        return self.holds(Role.BACKUP_SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, org_id)

    def is_officer(self, org_id: str) -> bool:
        """SO or BSO of the organization (BSO-3: a BSO acts as the SO for most purposes)."""
        return self.is_security_official(org_id) or self.is_backup_security_official(org_id)

    def is_group_administrator(self, org_id: str, group_id: str) -> bool:
        return self.holds(Role.USER_GROUP_ADMINISTRATOR, ScopeKind.USER_GROUP, group_id, org_id)

    def is_surrogate_administrator(self, sug_id: str) -> bool:
        return self.holds(Role.USER_GROUP_ADMINISTRATOR, ScopeKind.SURROGATE_GROUP, sug_id)


@dataclass(frozen=True, slots=True)
class Facts:
    """What the directory says about a request's target, loaded by the service when asked."""

    organization: Organization | None = None
    user_group: UserGroup | None = None
    surrogate_group: SurrogateGroup | None = None
    group_has_administrator: bool = False
    """True when the user group (or SUG) named by the request has at least one approved UGA."""
    requester_memberships: frozenset[Membership] = frozenset()
    """The requester's approved memberships (to refuse asking for a role already held)."""
    duplicate_pending: bool = False
    """The requester already has a pending request of the same kind for the same target."""
    practitioner_eligible: bool | None = None
    """IND-1: the enrollment source's answer for the practitioner's NPI (None: not asked)."""
    blocked_provider_types: frozenset[str] = frozenset({ProviderType.DMEPOS.value})
    """ORG-7: provider types refused at this time (configuration)."""


# --------------------------------------------------------------------------------------------
# Submitting a request


_NEEDS_ORGANIZATION = {
    RequestKind.BACKUP_SECURITY_OFFICIAL,
    RequestKind.USER_GROUP_ADMINISTRATOR,
    RequestKind.END_USER,
    RequestKind.REGISTER_SURROGATE_GROUP,
    RequestKind.SURROGATE_ASSOCIATION,
}


def may_submit(requester: Actor, request: Request, facts: Facts) -> Decision:
    """May this person file this request? Refusals here change nothing (EU-2, ORG-1, ORG-7...)."""
    kind = request.kind
    org = facts.organization
    checks: list[Callable[[], Decision | None]] = [
        lambda: _submit_duplicate(request, facts),
        lambda: _submit_role_already_held(request, facts),
    ]
    if kind is RequestKind.REGISTER_ORGANIZATION:
        checks += [
            lambda: _submit_provider_type(request, facts),
            lambda: _submit_organization_taken(org),
        ]
    if kind in _NEEDS_ORGANIZATION:
        checks.append(lambda: _submit_organization_registered(org))
    if kind is RequestKind.USER_GROUP_ADMINISTRATOR:
        checks.append(lambda: _submit_user_group_target(request, facts))
    if kind is RequestKind.END_USER:
        checks.append(lambda: _submit_end_user_group(request, facts))
    if kind is RequestKind.REGISTER_SURROGATE_GROUP:
        checks.append(lambda: _submit_new_surrogate_group(facts))
    if kind is RequestKind.SURROGATE_ADMINISTRATOR:
        checks.append(lambda: _submit_surrogate_exists(facts, "SUG-4"))
    if kind is RequestKind.SURROGATE_END_USER:
        checks.append(lambda: _submit_surrogate_end_user(facts))
    if kind is RequestKind.SURROGATE_ASSOCIATION:
        checks.append(lambda: _submit_surrogate_association(requester, request, facts))
    if kind is RequestKind.INDIVIDUAL_PRACTITIONER:
        checks.append(lambda: _submit_practitioner(facts))
    return _deny_wins(
        checks, lambda: allow("DEC-4", f"{_kind_label(kind)} request accepted for review")
    )


def _submit_duplicate(request: Request, facts: Facts) -> Decision | None:
    if facts.duplicate_pending:
        return conflict(
            "DEC-3", "you already have a pending request for this; wait for its decision"
        )
    return None


def _submit_role_already_held(request: Request, facts: Facts) -> Decision | None:
    wanted = granted_membership(request, facts)
    if wanted is not None and wanted in facts.requester_memberships:
        return refuse("DEC-4", "you already hold this role")
    security_official = Membership(
        Role.SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, request.organization_id
    )
    if (
        request.kind is RequestKind.BACKUP_SECURITY_OFFICIAL
        and security_official in facts.requester_memberships
    ):
        return refuse("BSO-1", "you are this organization's Security Official already")
    return None


def _submit_provider_type(request: Request, facts: Facts) -> Decision | None:
    raw = request.details.get("provider_type", "")
    try:
        provider_type = ProviderType(raw)
    except ValueError:
        return refuse("ORG-7", f"unknown provider type {raw!r}")
    if provider_type.value in facts.blocked_provider_types:
        return refuse(
            "ORG-7",
            f"{_provider_label(provider_type)} may not register in IACS at this time",
        )
    return None


def _submit_organization_taken(org: Organization | None) -> Decision | None:
    if org is not None and org.status is not EntityStatus.REJECTED:
        return conflict(
            "ORG-2",
            "this organization is already registered and has its Security Official; "
            "ask your Security Official for a role instead",
        )
    return None


def _submit_organization_registered(org: Organization | None) -> Decision | None:
    if org is None or org.status is EntityStatus.REJECTED:
        return refuse(
            "ORG-1",
            "this organization is not registered; its Security Official must register it first",
        )
    return None


def _submit_user_group_target(request: Request, facts: Facts) -> Decision | None:
    creates_group = request.details.get("new_group") == "true"
    group = facts.user_group
    if creates_group and group is not None and group.status is not EntityStatus.REJECTED:
        return refuse("UGA-1", "a user group of that name exists; ask to join it as a UGA instead")
    if not creates_group and (group is None or group.status is EntityStatus.REJECTED):
        return refuse("UGA-1", "no such user group in this organization")
    return None


def _submit_end_user_group(request: Request, facts: Facts) -> Decision | None:
    group = facts.user_group
    if group is None or group.status is EntityStatus.REJECTED:
        return refuse("EU-1", "no such user group in this organization")
    if not facts.group_has_administrator or group.status is not EntityStatus.ACTIVE:
        return refuse(
            "EU-2",
            "this user group has no approved User Group Administrator yet; "
            "End Users can register only after one is approved",
        )
    return None


def _submit_new_surrogate_group(facts: Facts) -> Decision | None:
    sug = facts.surrogate_group
    if sug is not None and sug.status is not EntityStatus.REJECTED:
        return refuse(
            "SUG-1",
            "a Surrogate User Group of that name exists; ask to join it as a UGA instead",
        )
    return None


def _submit_surrogate_exists(facts: Facts, rule: str) -> Decision | None:
    sug = facts.surrogate_group
    if sug is None or sug.status is not EntityStatus.ACTIVE:
        return refuse(rule, "no such active Surrogate User Group")
    return None


def _submit_surrogate_end_user(facts: Facts) -> Decision | None:
    missing = _submit_surrogate_exists(facts, "SUG-5")
    if missing is not None:
        return missing
    if not facts.group_has_administrator:
        return refuse("SUG-1", "this Surrogate User Group has no approved UGA yet")
    return None


def _submit_surrogate_association(
    requester: Actor, request: Request, facts: Facts
) -> Decision | None:
    sug = facts.surrogate_group
    if sug is None or sug.status is not EntityStatus.ACTIVE:
        return refuse("SUG-3", "no such active Surrogate User Group")
    if not requester.is_surrogate_administrator(sug.id):
        return refuse(
            "SUG-3",
            "only an approved UGA of the Surrogate User Group may associate it with a provider",
        )
    if request.organization_id in sug.associated_organizations:
        return refuse("SUG-3", "the Surrogate User Group already works for this organization")
    return None


def _submit_practitioner(facts: Facts) -> Decision | None:
    if facts.practitioner_eligible is not True:
        return refuse(
            "IND-1",
            "this NPI is not enrolled in Medicare after November 2003 (or updated since); "
            "register through an organization instead",
        )
    return None


# --------------------------------------------------------------------------------------------
# Deciding a request


def may_decide(actor: Actor, request: Request, facts: Facts, now: datetime) -> Decision:
    """May ``actor`` approve or reject ``request`` now? Authority is the same for both outcomes."""
    checks: list[Callable[[], Decision | None]] = [
        lambda: _decide_once(request),
        lambda: _decide_not_expired(request, now),
        lambda: _decide_not_own(actor, request),
        lambda: _decide_organization_ready(request, facts),
        lambda: _decide_group_ready(request, facts),
    ]
    return _deny_wins(checks, lambda: _decider_authority(actor, request, facts))


def _decide_once(request: Request) -> Decision | None:
    if request.status is not RequestStatus.PENDING:
        return conflict("DEC-3", f"this request was already decided ({request.status.value})")
    return None


def _decide_not_expired(request: Request, now: datetime) -> Decision | None:
    if now >= request.expires_at:
        return deny("LC-2", "this request expired before anyone decided it")
    return None


def _decide_not_own(actor: Actor, request: Request) -> Decision | None:
    if actor.username == request.requester:
        return deny("DEC-1", "nobody decides their own request")
    return None


def _decide_organization_ready(request: Request, facts: Facts) -> Decision | None:
    if request.kind in (RequestKind.REGISTER_ORGANIZATION, RequestKind.INDIVIDUAL_PRACTITIONER):
        return None
    if request.kind in (RequestKind.SURROGATE_ADMINISTRATOR, RequestKind.SURROGATE_END_USER):
        return None  # the SUG is active only once a provider's SO/BSO approved its first UGA
    org = facts.organization
    if org is None or org.status is not EntityStatus.ACTIVE:
        return deny(
            "ORG-4",
            "the organization's Security Official has not been approved by the help desk yet",
        )
    return None


def _decide_group_ready(request: Request, facts: Facts) -> Decision | None:
    if request.kind is RequestKind.END_USER:
        group = facts.user_group
        if group is None or group.status is not EntityStatus.ACTIVE:
            return deny("EU-2", "the user group has no approved User Group Administrator")
    if request.kind is RequestKind.SURROGATE_END_USER:
        sug = facts.surrogate_group
        if sug is None or sug.status is not EntityStatus.ACTIVE:
            return deny("SUG-5", "the Surrogate User Group has no approved UGA")
    if request.kind in (RequestKind.SURROGATE_ADMINISTRATOR, RequestKind.SURROGATE_ASSOCIATION):
        sug = facts.surrogate_group
        if sug is None or sug.status is not EntityStatus.ACTIVE:
            return deny("SUG-4", "the Surrogate User Group is not active")
    return None


def _decider_authority(actor: Actor, request: Request, facts: Facts) -> Decision:
    org_id = request.organization_id
    match request.kind:
        case RequestKind.REGISTER_ORGANIZATION:
            if actor.is_help_desk:
                return allow("ORG-3", "the help desk decides Security Official registrations")
            return deny("ORG-3", "only the help desk decides a Security Official's registration")
        case RequestKind.INDIVIDUAL_PRACTITIONER:
            if actor.is_help_desk:
                return allow("IND-1", "the help desk decides individual practitioner requests")
            return deny("IND-1", "only the help desk decides individual practitioner requests")
        case RequestKind.BACKUP_SECURITY_OFFICIAL:
            if actor.is_security_official(org_id):
                return allow("BSO-2", "the Security Official approves Backup Security Officials")
            if actor.is_backup_security_official(org_id):
                return deny("BSO-2", "a Backup Security Official never approves another one")
            return deny("BSO-2", "only the organization's Security Official approves a BSO")
        case RequestKind.USER_GROUP_ADMINISTRATOR:
            if actor.is_officer(org_id):
                return allow("UGA-2", "the SO or a BSO of the organization approves its UGAs")
            return deny("UGA-2", "only the organization's SO or a BSO approves a UGA")
        case RequestKind.END_USER:
            if actor.is_group_administrator(org_id, request.group_id):
                return allow("EU-1", "a UGA of the group approves its End Users")
            if actor.is_officer(org_id):
                return allow("EU-1", "the SO and BSOs of the organization may approve End Users")
            return deny("EU-1", "only a UGA of this group (or the SO/BSO) approves its End Users")
        case RequestKind.REGISTER_SURROGATE_GROUP:
            if actor.is_officer(org_id):
                return allow("SUG-2", "the provider's SO or a BSO approves the surrogate's UGA")
            if actor.is_help_desk:
                return deny("SUG-7", "a Surrogate User Group involves no CMS-side approval")
            return deny("SUG-2", "only the provider organization's SO or a BSO approves this")
        case RequestKind.SURROGATE_ASSOCIATION:
            if actor.is_officer(org_id):
                return allow("SUG-3", "the provider's SO or a BSO approves the association")
            if actor.is_help_desk:
                return deny("SUG-7", "a Surrogate User Group involves no CMS-side approval")
            return deny("SUG-3", "only the provider organization's SO or a BSO approves this")
        case RequestKind.SURROGATE_ADMINISTRATOR:
            sug = facts.surrogate_group
            served = sug.associated_organizations if sug else frozenset()
            if any(actor.is_officer(org) for org in served):
                return allow("SUG-4", "an SO or BSO of a provider the SUG works for approves")
            if actor.is_help_desk:
                return deny("SUG-7", "a Surrogate User Group involves no CMS-side approval")
            return deny(
                "SUG-4",
                "only the SO or a BSO of a provider this SUG works for approves its UGAs",
            )
        case RequestKind.SURROGATE_END_USER:
            if actor.is_surrogate_administrator(request.surrogate_group_id):
                return allow("SUG-5", "a UGA of the Surrogate User Group approves its End Users")
            return deny("SUG-5", "only a UGA of this Surrogate User Group approves its End Users")
    return deny("DEC-2", "no rule gives you authority over this request")  # pragma: no cover


# --------------------------------------------------------------------------------------------
# Profiles, records, revocation, recertification, replacement


def may_update_organization_profile(actor: Actor, org_id: str) -> Decision:
    """ORG-5: the SO and the help desk update the organization profile; a BSO may not."""
    if actor.is_security_official(org_id):
        return allow("ORG-5", "the Security Official maintains the organization profile")
    if actor.is_help_desk:
        return allow("ORG-5", "the help desk may update any organization profile")
    if actor.is_backup_security_official(org_id):
        return deny("ORG-5", "a Backup Security Official may not update the organization profile")
    return deny("ORG-5", "only the Security Official updates the organization profile")


def may_update_group_profile(actor: Actor, org_id: str, group_id: str) -> Decision:
    """UGA-3: a UGA of the group, the SO/BSOs and the help desk update a user group's profile."""
    if actor.is_group_administrator(org_id, group_id):
        return allow("UGA-3", "a UGA of the group maintains its profile")
    if actor.is_officer(org_id):
        return allow("UGA-3", "the SO and BSOs administer the organization's user groups")
    if actor.is_help_desk:
        return allow("UGA-3", "the help desk may update any group profile")
    return deny("UGA-3", "only a UGA of this group (or the SO/BSO) updates its profile")


def may_update_surrogate_profile(actor: Actor, sug_id: str) -> Decision:
    """SUG-1/UGA-3: the surrogate's own UGAs maintain its profile (and the help desk)."""
    if actor.is_surrogate_administrator(sug_id):
        return allow("UGA-3", "a UGA of the Surrogate User Group maintains its profile")
    if actor.is_help_desk:
        return allow("UGA-3", "the help desk may update any group profile")
    return deny("UGA-3", "only a UGA of this Surrogate User Group updates its profile")


def may_read_audit(actor: Actor, org_id: str | None) -> Decision:
    """AUD-2: the SO (and BSOs, BSO-3) read their organization's record; the help desk all of it."""
    if actor.is_help_desk:
        return allow("AUD-2", "the help desk reads the whole record")
    if org_id is None:
        return deny("AUD-2", "only the help desk reads the whole record")
    if actor.is_officer(org_id):
        return allow("AUD-2", "the Security Official is accountable for the organization")
    return deny("AUD-2", "only the organization's Security Official reads its record")


def may_view_request(actor: Actor, request: Request, facts: Facts) -> Decision:
    """A request is seen by its requester and by those who may decide or audit it, no one else.

    Holding any role in the organization is not enough: an End User does not read the other
    requests of their organization by id. Authority to decide is judged as for a pending
    request (a decided request stays visible to whoever could have decided it).
    """
    if actor.username == request.requester:
        return allow("DEC-2", "your own request")
    if actor.is_help_desk:
        return allow("AUD-2", "the help desk sees every request")
    if _decider_authority(actor, _as_pending(request), facts).allowed:
        return allow("DEC-2", "you may decide this kind of request here")
    if request.organization_id and may_read_audit(actor, request.organization_id).allowed:
        return allow("AUD-2", "the organization's record is yours to read")
    return deny("DEC-2", "only the requester and those who may decide or audit it see a request")


def may_view_organization(actor: Actor, org_id: str) -> Decision:
    """Members of an organization see its page; others do not learn who works there."""
    if actor.is_help_desk:
        return allow("AUD-2", "the help desk sees every organization")
    if any(
        m.organization_id == org_id
        or (m.scope_kind is ScopeKind.ORGANIZATION and m.scope_id == org_id)
        for m in actor.memberships
    ):
        return allow("DEC-2", "you hold a role in this organization")
    return deny("DEC-2", "you hold no role in this organization")


def may_revoke(actor: Actor, username: str, membership: Membership) -> Decision:
    """LC-1: who may end whose role. Resigning one's own role is always allowed."""
    if actor.username == username:
        if membership.role is Role.SECURITY_OFFICIAL:
            # ORG-2 makes every Security Official the last one of their organization.
            return refuse(
                "LC-4",
                "an organization cannot be left without its Security Official: ask the EUS "
                "help desk to replace you; your role ends when they name your successor",
            )
        return allow("LC-1", "anyone may resign their own role")
    if actor.is_help_desk:
        return allow("LC-1", "the help desk may revoke any role")
    role, scope = membership.role, membership.scope_kind
    if role is Role.HELP_DESK:
        return deny("LC-1", "only the help desk revokes help-desk roles")
    if scope is ScopeKind.ORGANIZATION:
        org_id = membership.scope_id
        if role is Role.SECURITY_OFFICIAL:
            return deny("LC-4", "only the help desk removes or replaces a Security Official")
        if actor.is_security_official(org_id):
            return allow("LC-1", "the Security Official revokes Backup Security Officials")
        if actor.is_backup_security_official(org_id):
            return deny("LC-1", "a Backup Security Official may not revoke another one")
        return deny("LC-1", "only the Security Official revokes a Backup Security Official")
    if scope is ScopeKind.USER_GROUP:
        org_id = membership.organization_id
        if actor.is_officer(org_id):
            return allow("LC-1", "the SO and BSOs revoke roles within their organization")
        if role is Role.END_USER and actor.is_group_administrator(org_id, membership.scope_id):
            return allow("LC-1", "a UGA revokes the End Users of their group")
        return deny("LC-1", "you have no authority over roles in this group")
    if scope is ScopeKind.SURROGATE_GROUP:
        if role is Role.END_USER and actor.is_surrogate_administrator(membership.scope_id):
            return allow("LC-1", "a UGA revokes the End Users of their group")
        return deny("LC-1", "you have no authority over roles in this Surrogate User Group")
    return deny("LC-1", "only the help desk revokes this role")


def may_withdraw(actor: Actor, request: Request) -> Decision:
    """A requester may take back their own request while it is still pending (nobody else)."""
    if actor.username != request.requester:
        return deny("DEC-1", "only the requester withdraws a request")
    if request.status is not RequestStatus.PENDING:
        return conflict("DEC-3", f"this request is already {request.status.value}")
    return allow("DEC-1", "you may withdraw your own pending request")


def may_view_surrogate_group(actor: Actor, sug: SurrogateGroup) -> Decision:
    """A Surrogate User Group's page: its own members, the officials of the providers it
    works for (they approve its UGAs, SUG-2), and the help desk; others learn nothing of it."""
    if actor.is_help_desk:
        return allow("AUD-2", "the help desk sees every Surrogate User Group")
    if any(
        m.scope_kind is ScopeKind.SURROGATE_GROUP and m.scope_id == sug.id
        for m in actor.memberships
    ):
        return allow("SUG-5", "you hold a role in this Surrogate User Group")
    if any(actor.is_officer(org) for org in sug.associated_organizations):
        return allow("SUG-2", "it works for your organization")
    return deny("SUG-2", "you hold no role in this Surrogate User Group nor in one it serves")


def may_view_membership(actor: Actor, membership: Membership) -> Decision:
    """Whose roles an official sees: those within their own scope, as LC-1 and AUD-2 draw it.

    The help desk sees every role; the SO and BSOs every role in their organization (its
    officials and its user groups); a UGA the roles in their own group.
    """
    if actor.is_help_desk:
        return allow("AUD-2", "the help desk sees every role")
    match membership.scope_kind:
        case ScopeKind.ORGANIZATION if actor.is_officer(membership.scope_id):
            return allow("AUD-2", "a role in your organization")
        case ScopeKind.USER_GROUP if actor.is_officer(membership.organization_id):
            return allow("AUD-2", "a role in a user group of your organization")
        case ScopeKind.USER_GROUP if actor.is_group_administrator(
            membership.organization_id, membership.scope_id
        ):
            return allow("LC-1", "a role in the group you administer")
        case ScopeKind.SURROGATE_GROUP if actor.is_surrogate_administrator(membership.scope_id):
            return allow("LC-1", "a role in the Surrogate User Group you administer")
    return deny("AUD-2", "this role is outside your scope")


def may_view_person(
    actor: Actor,
    username: str,
    memberships: Iterable[Membership],
    *,
    requests_in_view: int = 0,
) -> Decision:
    """A person page: oneself, the help desk, and officials of a scope the person holds a role
    in, or who may see one of the person's requests (``requests_in_view``, judged by
    ``may_view_request``: the person asks something of them).

    Officials learn nothing of people outside their scope (the page is a 404 to them).
    """
    if actor.username == username:
        return allow("DEC-2", "your own page")
    if actor.is_help_desk:
        return allow("AUD-2", "the help desk sees every person")
    if any(may_view_membership(actor, m).allowed for m in memberships):
        return allow("AUD-2", "this person holds a role in your scope")
    if requests_in_view > 0:
        return allow("DEC-2", "this person asked something of you or your organization")
    return deny("AUD-2", "this person holds no role in your scope")


def may_see_whole_record(actor: Actor) -> Decision:
    """The help desk's person page shows the person's recent audit trail, across scopes."""
    return may_read_audit(actor, None)


def may_end_association(actor: Actor, sug: SurrogateGroup, org_id: str) -> Decision:
    """LC-1/SUG-3: the provider's SO/BSO, the SUG's UGA or the help desk ends an association."""
    if org_id not in sug.associated_organizations:
        return deny("SUG-3", "the Surrogate User Group does not work for this organization")
    if actor.is_help_desk or actor.is_officer(org_id) or actor.is_surrogate_administrator(sug.id):
        return allow("LC-1", "the association may be ended by either party or the help desk")
    return deny("LC-1", "only the provider's SO/BSO or the surrogate's UGA ends an association")


def may_recertify(
    actor: Actor, username: str, request: Request, facts: Facts, now: datetime
) -> Decision:
    """LC-3: a role is recertified by someone who could approve it now, never by its holder."""
    if actor.username == username:
        return deny("DEC-1", "nobody recertifies their own role")
    if request.status is not RequestStatus.APPROVED or request.ended_at is not None:
        return deny("LC-3", "only a current, approved role can be recertified")
    pending_view = _as_pending(request)
    authority = _deny_wins(
        [lambda: _decide_organization_ready(pending_view, facts)],
        lambda: _decider_authority(actor, pending_view, facts),
    )
    if authority.allowed:
        return allow("LC-3", "you could approve this role, so you may recertify it")
    return deny("LC-3", authority.reason)


def decider_candidates(request: Request, facts: Facts) -> frozenset[Membership]:
    """The memberships whose holders may be able to decide ``request`` (or recertify its role).

    A superset, for finding whom to tell (a notification, a reminder): each holder is then
    asked of ``may_decide`` or ``may_recertify``, which alone say yes or no.
    """
    org_id = request.organization_id
    officers = {
        Membership(Role.SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, org_id),
        Membership(Role.BACKUP_SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, org_id),
    }
    match request.kind:
        case RequestKind.REGISTER_ORGANIZATION | RequestKind.INDIVIDUAL_PRACTITIONER:
            return frozenset({Membership(Role.HELP_DESK, ScopeKind.SYSTEM)})
        case RequestKind.END_USER:
            uga = Membership(
                Role.USER_GROUP_ADMINISTRATOR, ScopeKind.USER_GROUP, request.group_id, org_id
            )
            return frozenset({uga, *officers})
        case RequestKind.SURROGATE_ADMINISTRATOR:
            served = facts.surrogate_group.associated_organizations if facts.surrogate_group else ()
            return frozenset(
                Membership(role, ScopeKind.ORGANIZATION, org)
                for org in served
                for role in (Role.SECURITY_OFFICIAL, Role.BACKUP_SECURITY_OFFICIAL)
            )
        case RequestKind.SURROGATE_END_USER:
            return frozenset(
                {
                    Membership(
                        Role.USER_GROUP_ADMINISTRATOR,
                        ScopeKind.SURROGATE_GROUP,
                        request.surrogate_group_id,
                    )
                }
            )
    return frozenset(officers)


def may_replace_security_official(actor: Actor) -> Decision:
    """LC-4: only the help desk replaces a departed Security Official."""
    if actor.is_help_desk:
        return allow("LC-4", "the help desk replaces a departed Security Official")
    return deny("LC-4", "only the help desk replaces a Security Official")


def may_reenable_account(actor: Actor) -> Decision:
    """INACT-1: an account disabled for inactivity is re-enabled by the help desk only (they know
    whom they are talking to; a person cannot re-enable themselves, they cannot sign in)."""
    if actor.is_help_desk:
        return allow("INACT-1", "the help desk re-enables accounts")
    return deny("INACT-1", "only the help desk re-enables an account")


def may_use_help_desk_console(actor: Actor) -> Decision:
    """The help-desk console and its search of people and organizations: the EUS help desk's,
    who decides Security Officials (ORG-3), replaces a departed one (LC-4) and reads the whole
    record (AUD-2). Nobody else reaches it."""
    if actor.is_help_desk:
        return allow("ORG-3", "the console is the EUS help desk's")
    return deny("ORG-3", "this console is for the EUS help desk")


def may_onboard_in_bulk(actor: Actor) -> Decision:
    """Bulk onboarding (a CSV of organizations and their Security Officials): the help desk's,
    because each line ends in a decision only the help desk makes (ORG-3). Every line is then
    still filed and decided through ``may_submit`` and ``may_decide`` like one from the portal."""
    if actor.is_help_desk:
        return allow("ORG-3", "the help desk onboards organizations and decides their SOs")
    return deny("ORG-3", "only the help desk onboards organizations in bulk")


def may_export_roles(actor: Actor) -> Decision:
    """The export of every organization's roles and certification dates: the whole record,
    which only the help desk reads (AUD-2)."""
    if actor.is_help_desk:
        return allow("AUD-2", "the help desk reads the whole record")
    return deny("AUD-2", "only the help desk exports every organization's roles")


# --------------------------------------------------------------------------------------------
# Derived facts


def granted_membership(request: Request, facts: Facts | None = None) -> Membership | None:
    """The membership an approved ``request`` grants (DEC-4), or None for an association."""
    match request.kind:
        case RequestKind.REGISTER_ORGANIZATION:
            return Membership(
                Role.SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, request.organization_id
            )
        case RequestKind.BACKUP_SECURITY_OFFICIAL:
            return Membership(
                Role.BACKUP_SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, request.organization_id
            )
        case RequestKind.USER_GROUP_ADMINISTRATOR:
            return Membership(
                Role.USER_GROUP_ADMINISTRATOR,
                ScopeKind.USER_GROUP,
                request.group_id,
                request.organization_id,
            )
        case RequestKind.END_USER:
            return Membership(
                Role.END_USER, ScopeKind.USER_GROUP, request.group_id, request.organization_id
            )
        case RequestKind.REGISTER_SURROGATE_GROUP | RequestKind.SURROGATE_ADMINISTRATOR:
            return Membership(
                Role.USER_GROUP_ADMINISTRATOR,
                ScopeKind.SURROGATE_GROUP,
                request.surrogate_group_id,
            )
        case RequestKind.SURROGATE_END_USER:
            return Membership(Role.END_USER, ScopeKind.SURROGATE_GROUP, request.surrogate_group_id)
        case RequestKind.INDIVIDUAL_PRACTITIONER:
            return Membership(
                Role.INDIVIDUAL_PRACTITIONER,
                ScopeKind.PRACTITIONER,
                request.details.get("npi", ""),
            )
    return None


@dataclass(frozen=True, slots=True)
class Completeness:
    """ORG-6: whether an organization has the users the seed requires, and what is missing."""

    complete: bool
    approved_users: int
    users_with_application_access: int
    missing: tuple[str, ...] = field(default_factory=tuple)


APPLICATION_ROLES: frozenset[Role] = frozenset({Role.USER_GROUP_ADMINISTRATOR, Role.END_USER})
"""ORG-6 (interpretation): the roles that give access to CMS applications; SO and BSOs hold none."""


def organization_completeness(
    members: Mapping[str, Iterable[Role]],
    application_roles: frozenset[Role] = APPLICATION_ROLES,
) -> Completeness:
    """ORG-6: at least two approved users, at least one of whom can access CMS applications."""
    users = {name: set(roles) for name, roles in members.items() if roles}
    with_access = sum(1 for roles in users.values() if roles & application_roles)
    missing = []
    if len(users) < 2:
        missing.append(f"at least two approved users (has {len(users)})")
    if with_access < 1:
        missing.append("at least one user with application access (a UGA or an End User)")
    return Completeness(not missing, len(users), with_access, tuple(missing))


def _as_pending(request: Request) -> Request:
    return replace(request, status=RequestStatus.PENDING)


def _deny_wins(
    checks: Iterable[Callable[[], Decision | None]], authority: Callable[[], Decision]
) -> Decision:
    """Run the prohibitions first; the first deny is the answer, else ask who has authority.

    A ``Decision`` has no truth value of its own (mypy's ``truthy-bool`` check refuses one in a
    condition): ask ``.allowed``, and never chain decisions with ``or``.
    """
    for check in checks:
        decision = check()
        if decision is not None and not decision.allowed:
            return decision
    return authority()


def _kind_label(kind: RequestKind) -> str:
    return kind.value.replace("_", " ").capitalize()


def _provider_label(provider_type: ProviderType) -> str:
    if provider_type is ProviderType.DMEPOS:
        return "DMEPOS suppliers (durable medical equipment, prosthetics, orthotics and supplies)"
    return provider_type.value.replace("_", " ")
