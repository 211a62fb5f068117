"""What pages and the API share: the kinds of request people file, and the JSON shapes.

``submit`` is the one dispatcher from a kind and its fields to the ``AccessService`` method, so
a form and an API call for the same request take exactly the same path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any, cast

from iacs.domain import (
    AuditRecord,
    Membership,
    Organization,
    Person,
    Request,
    RequestKind,
    Role,
    ScopeKind,
    SurrogateGroup,
    UserGroup,
)
from iacs.service import AccessService, InvalidInput, inputs
from iacs.service.views import AuditPage, GroupView, OrganizationView, RoleHolder


def _text_fields(fields: Mapping[str, Any], allowed: set[str]) -> dict[str, str]:
    unknown = set(fields) - allowed
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "is not a field of this request")
    values: dict[str, str] = {}
    for key, value in fields.items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidInput(key, "must be text")
        values[key] = value
    return values


Submitter = Callable[[AccessService, str, dict[str, str]], Request]

SUBMITTERS: dict[RequestKind, tuple[set[str], Submitter]] = {
    RequestKind.REGISTER_ORGANIZATION: (
        {"name", "identifier", "provider_type", "address", "phone"},
        lambda s, u, f: s.register_organization(
            u,
            name=f.get("name", ""),
            identifier=f.get("identifier", ""),
            provider_type=f.get("provider_type", ""),
            address=f.get("address", ""),
            phone=f.get("phone", ""),
        ),
    ),
    RequestKind.INDIVIDUAL_PRACTITIONER: (
        {"npi"},
        lambda s, u, f: s.request_individual_practitioner(u, f.get("npi", "")),
    ),
    RequestKind.BACKUP_SECURITY_OFFICIAL: (
        {"organization_id"},
        lambda s, u, f: s.request_backup_security_official(u, f.get("organization_id", "")),
    ),
    RequestKind.USER_GROUP_ADMINISTRATOR: (
        {"organization_id", "group_id", "group_name", "description"},
        lambda s, u, f: s.request_user_group_administrator(
            u,
            f.get("organization_id", ""),
            group_name=f.get("group_name", "").strip(),
            group_id=f.get("group_id", ""),
            description=f.get("description", ""),
        ),
    ),
    RequestKind.END_USER: (
        {"organization_id", "group_id"},
        lambda s, u, f: s.request_end_user(u, f.get("organization_id", ""), f.get("group_id", "")),
    ),
    RequestKind.REGISTER_SURROGATE_GROUP: (
        {"organization_id", "name", "description"},
        lambda s, u, f: s.register_surrogate_group(
            u,
            f.get("organization_id", ""),
            name=f.get("name", ""),
            description=f.get("description", ""),
        ),
    ),
    RequestKind.SURROGATE_ADMINISTRATOR: (
        {"surrogate_group_id"},
        lambda s, u, f: s.request_surrogate_administrator(u, f.get("surrogate_group_id", "")),
    ),
    RequestKind.SURROGATE_END_USER: (
        {"surrogate_group_id"},
        lambda s, u, f: s.request_surrogate_end_user(u, f.get("surrogate_group_id", "")),
    ),
    RequestKind.SURROGATE_ASSOCIATION: (
        {"surrogate_group_id", "organization_id"},
        lambda s, u, f: s.request_surrogate_association(
            u, f.get("surrogate_group_id", ""), f.get("organization_id", "")
        ),
    ),
}


def request_kind(value: object) -> RequestKind:
    try:
        return RequestKind(cast(str, value))  # anything else is refused just below
    except ValueError:
        raise InvalidInput(
            "kind", f"must be one of {', '.join(k.value for k in RequestKind)}"
        ) from None


def submit(service: AccessService, username: str, kind: RequestKind, fields: Mapping) -> Request:
    """File a request of ``kind`` with ``fields`` through the service (the only path)."""
    allowed, submitter = SUBMITTERS[kind]
    return submitter(service, username, _text_fields(fields, allowed))


def membership_from(fields: Mapping[str, Any]) -> Membership:
    """A membership named by its role and scope (the target of a revocation or a resignation)."""
    try:
        role = Role(cast(str, fields.get("role")))
    except ValueError:
        raise InvalidInput("role", "is not a known role") from None
    try:
        scope_kind = ScopeKind(cast(str, fields.get("scope_kind")))
    except ValueError:
        raise InvalidInput("scope_kind", "is not a known scope") from None
    scope_id = fields.get("scope_id") or ""
    if scope_kind is not ScopeKind.SYSTEM:
        scope_id = inputs.entity_id("scope_id", scope_id)
    elif scope_id:
        raise InvalidInput("scope_id", "must be empty for the help desk")
    organization_id = fields.get("organization_id") or ""
    if scope_kind is ScopeKind.USER_GROUP:
        organization_id = inputs.entity_id("organization_id", organization_id)
    elif organization_id:
        raise InvalidInput("organization_id", "is only given for a user group's roles")
    return Membership(role, scope_kind, scope_id, organization_id)


# ------------------------------------------------------------------ JSON shapes


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def request_json(request: Request) -> dict[str, Any]:
    return {
        "id": request.id,
        "kind": request.kind.value,
        "requester": request.requester,
        "status": request.status.value,
        "organization_id": request.organization_id or None,
        "group_id": request.group_id or None,
        "surrogate_group_id": request.surrogate_group_id or None,
        "created_at": _iso(request.created_at),
        "expires_at": _iso(request.expires_at),
        "decided_by": request.decided_by or None,
        "decided_at": _iso(request.decided_at),
        "reason": request.reason or None,
        "details": dict(request.details),
        "ended_at": _iso(request.ended_at),
        "end_reason": request.end_reason.value if request.end_reason else None,
        "recertified_at": _iso(request.recertified_at),
    }


def membership_json(membership: Membership) -> dict[str, Any]:
    return {
        "role": membership.role.value,
        "scope_kind": membership.scope_kind.value,
        "scope_id": membership.scope_id,
        "organization_id": membership.organization_id or None,
    }


def holder_json(holder: RoleHolder) -> dict[str, Any]:
    return {
        "username": holder.username,
        **membership_json(holder.membership),
        "revocable": holder.revocable,
    }


def organization_json(org: Organization) -> dict[str, Any]:
    return {
        "id": org.id,
        "name": org.name,
        "identifier": org.identifier,
        "provider_type": org.provider_type.value,
        "status": org.status.value,
        "address": org.address,
        "phone": org.phone,
    }


def group_json(group: UserGroup | SurrogateGroup) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": group.id,
        "name": group.name,
        "description": group.description,
        "status": group.status.value,
    }
    if isinstance(group, UserGroup):
        body["organization_id"] = group.organization_id
    else:
        body["associated_organizations"] = sorted(group.associated_organizations)
    return body


def group_view_json(view: GroupView) -> dict[str, Any]:
    return {
        **group_json(view.group),
        "administrators": [holder_json(h) for h in view.administrators],
        "end_users": [holder_json(h) for h in view.end_users],
        "may_edit_profile": view.may_edit_profile,
    }


def organization_view_json(view: OrganizationView) -> dict[str, Any]:
    completeness = view.completeness
    return {
        **organization_json(view.organization),
        "security_officials": [holder_json(h) for h in view.security_officials],
        "backup_security_officials": [holder_json(h) for h in view.backup_security_officials],
        "groups": [group_view_json(g) for g in view.groups],
        "surrogate_groups": [group_json(s) for s in view.surrogate_groups],
        "completeness": {
            "complete": completeness.complete,
            "approved_users": completeness.approved_users,
            "users_with_application_access": completeness.users_with_application_access,
            "missing": list(completeness.missing),
        },
        "may_edit_profile": view.may_edit_profile,
        "may_read_audit": view.may_read_audit,
    }


def audit_json(record: AuditRecord) -> dict[str, Any]:
    body = asdict(record)
    body["at"] = _iso(record.at)
    return body


def audit_page_json(page: AuditPage) -> dict[str, Any]:
    query = page.query
    return {
        "records": [audit_json(r) for r in page.records],
        "total": page.total,
        "refused_total": page.refused,
        "page": query.page,
        "per_page": query.per_page,
        "pages": page.pages,
        "filters": {
            "actor": query.actor,
            "action": query.action,
            "outcome": query.outcome,
            "since": _iso(query.since) if query.since else None,
            "until": _iso(query.until) if query.until else None,
        },
    }


def person_json(person: Person) -> dict[str, Any]:
    return {"username": person.username, "display_name": person.display_name}
