"""The JSON API under ``/api/v1``: the same service calls as the pages, for programs.

Authentication is a bearer access token issued by the realm to the portal client, or the browser
session. A bearer call is CSRF-exempt (nothing ambient for another site to ride on); a
session-authenticated call that changes state must carry the CSRF token in ``X-CSRFToken``.
Bodies are JSON objects (``Content-Type: application/json``), unknown fields are refused, and
every refusal is ``{"error": {"code", "message", "rule"}}`` with the service error's status.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, cast

from flask import Blueprint, Response, abort, current_app, g, jsonify, request

from approval_portal import shapes
from approval_portal.auth import InvalidToken, load_session_user
from approval_portal.errors import error_response
from approval_portal.limits import refused_too_often
from approval_portal.security import csrf
from iacs.service import AccessService, InvalidInput
from iacs.service.views import ViewService

blueprint = Blueprint("api", __name__)
csrf.exempt(blueprint)

_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
_PUBLIC = {"api.openapi"}


def _service() -> AccessService:
    return current_app.extensions["iacs.service"]


def _views() -> ViewService:
    return current_app.extensions["iacs.views"]


@blueprint.before_request
def authenticate() -> Response | None:
    """Bearer token when one is sent (and then only it), else the session with CSRF."""
    if request.endpoint in _PUBLIC:
        return None
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            return error_response(401, "unauthenticated", "use Authorization: Bearer <token>")
        try:
            claims = current_app.extensions["iacs.tokens"].verify(raw.strip())
        except InvalidToken as exc:
            return error_response(401, "invalid_token", str(exc))
        g.username = claims["preferred_username"]
        g.authenticated_by = "bearer"
        return refused_too_often(g.username)
    load_session_user()
    if not g.username:
        return error_response(401, "unauthenticated", "sign in or send a bearer token")
    if (limited := refused_too_often(g.username)) is not None:
        return limited
    if request.method not in _SAFE_METHODS:
        csrf.protect()
    return None


def _body(allowed: set[str] | None = None) -> dict[str, Any]:
    """The JSON object of the request; anything else is refused before the service is asked."""
    if request.mimetype != "application/json":
        abort(415, description="send Content-Type: application/json")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, description="the body must be a JSON object")
    if allowed is not None:
        unknown = set(data) - allowed
        if unknown:
            raise InvalidInput(sorted(unknown)[0], "is not a known field")
    return data


def _created(body: dict[str, Any], location: str) -> Response:
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = location
    return response


# ------------------------------------------------------------------ me and my requests


@blueprint.get("/me")
def me():
    memberships = _views().memberships(g.username)
    return jsonify(
        {
            "username": g.username,
            "memberships": [shapes.membership_json(m) for m in memberships],
        }
    )


@blueprint.get("/requests")
def my_requests():
    requests = _service().my_requests(g.username)
    return jsonify({"requests": [shapes.request_json(r) for r in requests]})


@blueprint.post("/requests")
def submit_request():
    data = _body()
    kind = shapes.request_kind(data.pop("kind", None))
    filed = shapes.submit(_service(), g.username, kind, data)
    return _created(shapes.request_json(filed), f"/api/v1/requests/{filed.id}")


@blueprint.get("/requests/<request_id>")
def get_request(request_id: str):
    return jsonify(shapes.request_json(_service().get_request(g.username, request_id)))


@blueprint.post("/requests/<request_id>/decision")
def decide(request_id: str):
    data = _body({"decision", "reason"})
    decision = data.get("decision")
    if decision not in ("approve", "reject"):
        raise InvalidInput("decision", "must be approve or reject")
    reason = data.get("reason", "")
    decided = _service().decide(
        g.username, request_id, approve=decision == "approve", reason=reason
    )
    return jsonify(shapes.request_json(decided))


@blueprint.post("/requests/<request_id>/recertification")
def recertify(request_id: str):
    return jsonify(shapes.request_json(_service().recertify(g.username, request_id)))


@blueprint.get("/approvals")
def approval_queue():
    queue = _service().approval_queue(g.username)
    return jsonify({"requests": [shapes.request_json(r) for r in queue]})


# ------------------------------------------------------------------ roles


@blueprint.post("/revocations")
def revoke():
    """LC-1: end a role; naming oneself is a resignation."""
    data = _body({"username", "role", "scope_kind", "scope_id", "organization_id", "reason"})
    membership = shapes.membership_from(data)
    holder = cast(str, data.get("username"))  # the service checks it
    _service().revoke(g.username, holder, membership, data.get("reason", ""))
    return Response(status=204)


# ------------------------------------------------------------------ organizations and groups


@blueprint.get("/organizations/<org_id>")
def organization(org_id: str):
    return jsonify(shapes.organization_view_json(_views().organization(g.username, org_id)))


@blueprint.patch("/organizations/<org_id>")
def update_organization(org_id: str):
    data = _body({"name", "address", "phone"})
    org = _service().update_organization_profile(g.username, org_id, **data)
    return jsonify(shapes.organization_json(org))


@blueprint.get("/organizations/<org_id>/audit")
def organization_audit(org_id: str):
    """AUD-2, paged and filtered; the organization's history by default (``outcome=ok``)."""
    return jsonify(shapes.audit_page_json(_views().audit(g.username, org_id, **_args())))


def _args() -> dict[str, str]:
    """Query parameters, each given once (a repeated one is refused, not silently dropped)."""
    repeated = [name for name, values in request.args.lists() if len(values) > 1]
    if repeated:
        raise InvalidInput(repeated[0], "is given more than once")
    return request.args.to_dict()


@blueprint.put("/organizations/<org_id>/security-official")
def replace_security_official(org_id: str):
    """LC-4: the help desk names the successor of a departed Security Official."""
    data = _body({"successor"})
    request_ = _service().replace_security_official(
        g.username,
        org_id,
        cast(str, data.get("successor")),  # the service checks it
    )
    return jsonify(shapes.request_json(request_))


@blueprint.get("/organizations/<org_id>/groups/<group_id>")
def user_group(org_id: str, group_id: str):
    return jsonify(shapes.group_view_json(_views().user_group(g.username, org_id, group_id)))


@blueprint.patch("/organizations/<org_id>/groups/<group_id>")
def update_user_group(org_id: str, group_id: str):
    data = _body({"name", "description"})
    group = _service().update_group_profile(g.username, org_id, group_id, **data)
    return jsonify(shapes.group_json(group))


@blueprint.get("/surrogate-groups/<sug_id>")
def surrogate_group(sug_id: str):
    return jsonify(shapes.group_view_json(_views().surrogate_group(g.username, sug_id)))


@blueprint.patch("/surrogate-groups/<sug_id>")
def update_surrogate_group(sug_id: str):
    data = _body({"name", "description"})
    sug = _service().update_surrogate_profile(g.username, sug_id, **data)
    return jsonify(shapes.group_json(sug))


@blueprint.delete("/surrogate-groups/<sug_id>/organizations/<org_id>")
def end_association(sug_id: str, org_id: str):
    _service().end_association(g.username, sug_id, org_id)
    return Response(status=204)


# ------------------------------------------------------------------ help desk


@blueprint.get("/audit")
def audit():
    """The whole record for the help desk, paged and filtered (every outcome by default)."""
    return jsonify(shapes.audit_page_json(_views().audit(g.username, None, **_args())))


@blueprint.get("/search")
def search():
    result = _views().search(g.username, request.args.get("q", ""))
    return jsonify(
        {
            "query": result.query,
            "people": [shapes.person_json(p) for p in result.people],
            "organizations": [shapes.organization_json(o) for o in result.organizations],
        }
    )


@blueprint.get("/openapi.yaml")
def openapi():
    text = resources.files("approval_portal").joinpath("openapi.yaml").read_text()
    return Response(text, mimetype="application/yaml")
