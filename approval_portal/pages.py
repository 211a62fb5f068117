"""The HTML pages: thin views that read a form, call the service, and render or redirect.

Every state change is a POST with a CSRF token (``security.csrf``) followed by a redirect; a
refusal renders the page again with the service's message in an error summary and the service
error's status. Pages may hide a button the policy would refuse, but the service decides.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from approval_portal import errors, shapes
from approval_portal.auth import load_session_user, login_required, safe_next
from approval_portal.forms import FORMS, PROVIDER_TYPE_LABELS, organization_reference
from iacs.domain import RequestKind
from iacs.service import AccessService, Forbidden, ServiceError
from iacs.service.views import ViewService

blueprint = Blueprint("pages", __name__)

HELP_DESK_KINDS = {RequestKind.REGISTER_ORGANIZATION, RequestKind.INDIVIDUAL_PRACTITIONER}


def _service() -> AccessService:
    return current_app.extensions["iacs.service"]


def _views() -> ViewService:
    return current_app.extensions["iacs.views"]


def _render(template: str, http_status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(template, **context), http_status


def _refused(exc: ServiceError, back: str) -> tuple[str, int]:
    """A refused action: the service's message, its rule, and a way back."""
    status = errors.status_of(exc)
    return _render(
        "error.html", status, status=status, message=exc.message, rule=exc.rule, back=back
    )


def _back(default: str) -> str:
    return safe_next(request.form.get("return_to")) or default


@blueprint.app_context_processor
def _globals() -> dict[str, Any]:
    return {
        "current_user": g.get("username"),
        "provider_type_labels": {p.value: label for p, label in PROVIDER_TYPE_LABELS.items()},
        "kind_label": lambda kind: kind.value.replace("_", " ").capitalize(),
    }


# ------------------------------------------------------------------ home and health


@blueprint.get("/")
def home():
    load_session_user()
    if not g.username:
        return _render("home.html", memberships=[], is_help_desk=False)
    actor = _service().actor(g.username)
    return _render(
        "home.html",
        memberships=_views().memberships(g.username),
        is_help_desk=actor.is_help_desk,
        forms=FORMS,
    )


@blueprint.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Liveness for the load balancer: the directory answers."""
    if _views().healthy():
        return jsonify({"status": "ok", "directory": "ok"}), 200
    return jsonify({"status": "unavailable", "directory": "unreachable"}), 503


# ------------------------------------------------------------------ requests


@blueprint.route("/requests/new/<slug>", methods=["GET", "POST"])
@login_required
def new_request(slug: str):
    form = FORMS.get(slug)
    if form is None:
        abort(404, description="no such request form")
    values = {f.name: "" for f in form.fields}
    if request.method == "POST":
        values = {f.name: request.form.get(f.name, "") for f in form.fields}
        fields = dict(values)
        if "organization_id" in fields:
            fields["organization_id"] = organization_reference(fields["organization_id"])
        try:
            filed = shapes.submit(_service(), g.username, form.kind, fields)
        except ServiceError as exc:
            return _render(
                "request_form.html", errors.status_of(exc), form=form, values=values, error=exc
            )
        flash(f"Your request was filed (reference {filed.id}); it is waiting for approval.")
        return redirect(url_for("pages.my_requests"))
    return _render("request_form.html", form=form, values=values, error=None)


@blueprint.get("/my")
@login_required
def my_requests():
    return _render(
        "my.html",
        requests=_service().my_requests(g.username),
        memberships=_views().memberships(g.username),
    )


@blueprint.get("/requests/<request_id>")
@login_required
def request_detail(request_id: str):
    return _render("request.html", item=_service().get_request(g.username, request_id))


# ------------------------------------------------------------------ deciding


@blueprint.get("/approvals")
@login_required
def approvals():
    return _render("approvals.html", queue=_service().approval_queue(g.username))


@blueprint.post("/approvals/<request_id>")
@login_required
def decide(request_id: str):
    back = _back(url_for("pages.approvals"))
    decision = request.form.get("decision")
    if decision not in ("approve", "reject"):
        abort(400, description="choose approve or reject")
    try:
        decided = _service().decide(
            g.username,
            request_id,
            approve=decision == "approve",
            reason=request.form.get("reason", ""),
        )
    except ServiceError as exc:
        return _refused(exc, back)
    flash(f"Request {decided.id} {decided.status.value}.")
    return redirect(back)


# ------------------------------------------------------------------ roles


@blueprint.post("/roles/revoke")
@login_required
def revoke():
    """LC-1: revoke someone's role, or resign one's own."""
    back = _back(url_for("pages.my_requests"))
    try:
        membership = shapes.membership_from(request.form)
        holder = request.form.get("username", "")
        _service().revoke(g.username, holder, membership, request.form.get("reason", ""))
    except ServiceError as exc:
        return _refused(exc, back)
    flash("You resigned that role." if holder == g.username else f"{holder}'s role was revoked.")
    return redirect(back)


# ------------------------------------------------------------------ organizations and groups


@blueprint.get("/organizations/<org_id>")
@login_required
def organization(org_id: str):
    return _render("organization.html", view=_views().organization(g.username, org_id), error=None)


@blueprint.post("/organizations/<org_id>/profile")
@login_required
def organization_profile(org_id: str):
    fields = {k: request.form.get(k, "") for k in ("name", "address", "phone")}
    try:
        _service().update_organization_profile(g.username, org_id, **fields)
    except ServiceError as exc:
        return _refused(exc, url_for("pages.organization", org_id=org_id))
    flash("The organization's profile was updated.")
    return redirect(url_for("pages.organization", org_id=org_id))


@blueprint.get("/organizations/<org_id>/audit")
@login_required
def organization_audit(org_id: str):
    page = _views().audit(g.username, org_id, **_audit_args())
    return _render("audit.html", page=page, org_id=org_id)


def _audit_args() -> dict[str, str]:
    """The filter form's fields (empty ones dropped; the service validates the rest)."""
    return {name: value for name, value in request.args.items() if value}


@blueprint.get("/organizations/<org_id>/groups/<group_id>")
@login_required
def user_group(org_id: str, group_id: str):
    return _render("group.html", view=_views().user_group(g.username, org_id, group_id))


@blueprint.post("/organizations/<org_id>/groups/<group_id>/profile")
@login_required
def user_group_profile(org_id: str, group_id: str):
    back = url_for("pages.user_group", org_id=org_id, group_id=group_id)
    fields = {k: request.form.get(k, "") for k in ("name", "description")}
    try:
        _service().update_group_profile(g.username, org_id, group_id, **fields)
    except ServiceError as exc:
        return _refused(exc, back)
    flash("The group's profile was updated.")
    return redirect(back)


@blueprint.get("/surrogate-groups/<sug_id>")
@login_required
def surrogate_group(sug_id: str):
    return _render("group.html", view=_views().surrogate_group(g.username, sug_id))


@blueprint.post("/surrogate-groups/<sug_id>/profile")
@login_required
def surrogate_group_profile(sug_id: str):
    back = url_for("pages.surrogate_group", sug_id=sug_id)
    fields = {k: request.form.get(k, "") for k in ("name", "description")}
    try:
        _service().update_surrogate_profile(g.username, sug_id, **fields)
    except ServiceError as exc:
        return _refused(exc, back)
    flash("The Surrogate User Group's profile was updated.")
    return redirect(back)


@blueprint.post("/surrogate-groups/<sug_id>/end-association")
@login_required
def end_association(sug_id: str):
    back = _back(url_for("pages.home"))
    try:
        _service().end_association(g.username, sug_id, request.form.get("organization_id", ""))
    except ServiceError as exc:
        return _refused(exc, back)
    flash("The association was ended.")
    return redirect(back)


# ------------------------------------------------------------------ help desk


def _require_help_desk() -> None:
    if not _service().actor(g.username).is_help_desk:
        raise Forbidden("this console is for the EUS help desk", rule="ORG-3")


@blueprint.get("/help-desk")
@login_required
def help_desk():
    _require_help_desk()
    query = request.args.get("q")
    result = _views().search(g.username, query) if query else None
    queue = [r for r in _service().approval_queue(g.username) if r.kind in HELP_DESK_KINDS]
    return _render("help_desk.html", queue=queue, result=result, query=query or "")


@blueprint.get("/help-desk/audit")
@login_required
def help_desk_audit():
    page = _views().audit(g.username, None, **_audit_args())
    return _render("audit.html", page=page, org_id=None)


@blueprint.post("/help-desk/replace-security-official")
@login_required
def replace_security_official():
    """LC-4: the help desk names the successor of a departed Security Official."""
    back = url_for("pages.help_desk")
    org_id = organization_reference(request.form.get("organization_id", ""))
    successor = request.form.get("successor", "")
    try:
        _service().replace_security_official(g.username, org_id, successor)
    except ServiceError as exc:
        return _refused(exc, back)
    flash(f"{successor} is now the Security Official of {org_id}.")
    return redirect(back)
