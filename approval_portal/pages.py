"""The HTML pages: thin views that read a form, call the service, and render or redirect.

Every state change is a POST with a CSRF token (``security.csrf``) followed by a redirect; a
refusal renders the page again with the service's message in an error summary and the service
error's status. Pages may hide a button the policy would refuse, but the service decides.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
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
from approval_portal.forms import (
    FORMS,
    PROVIDER_TYPE_LABELS,
    Field,
    RequestForm,
    organization_reference,
)
from iacs.domain import RequestKind, RequestStatus, is_valid_id
from iacs.service import AccessService, InvalidInput, ServiceError, inputs
from iacs.service.onboarding import COLUMNS as ONBOARDING_COLUMNS
from iacs.service.onboarding import export_roles, import_onboarding
from iacs.service.onboarding import template as onboarding_template
from iacs.service.views import ROLE_WORDS, AuditPage, ViewService

ACTION_WORDS = {
    "request": "Filed a request",
    "decide:approved": "Approved a request",
    "decide:rejected": "Rejected a request",
    "withdraw": "Withdrew a request",
    "expire": "Request expired unanswered",
    "close": "Request closed by the system",
    "complete_approval": "Approval completed after an interruption",
    "undo_approval": "Approval undone (its target had gone)",
    "revoke": "Revoked a role",
    "resign": "Resigned a role",
    "lapse": "Role lapsed (not recertified in time)",
    "recertify": "Recertified a role",
    "replace_security_official": "Replaced the Security Official",
    "end_association": "Ended a Surrogate User Group's association",
    "update_profile": "Changed the organization profile",
    "update_group_profile": "Changed a user group's profile",
    "update_surrogate_profile": "Changed a Surrogate User Group's profile",
    "account.disabled_inactive": "Account disabled for inactivity",
    "account.reenabled": "Account enabled again",
    "notify": "E-mailed a notice",
    "import": "Bulk onboarding",
}
OUTCOME_WORDS = {"ok": "Done", "denied": "Refused (no authority)", "refused": "Refused by a rule"}


def action_words(action: str) -> str:
    """An audit action in words ("request:end_user" is "Filed a request: end user")."""
    if action in ACTION_WORDS:
        return ACTION_WORDS[action]
    head, _, tail = action.partition(":")
    words = ACTION_WORDS.get(head, head.replace("_", " ").capitalize())
    return f"{words}: {tail.replace('_', ' ')}" if tail else words


STATUS_WORDS = {
    RequestStatus.PENDING: "Waiting for a decision",
    RequestStatus.APPROVED: "Approved",
    RequestStatus.REJECTED: "Rejected",
    RequestStatus.EXPIRED: "Expired unanswered",
    RequestStatus.WITHDRAWN: "Withdrawn",
}

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
        "role_words": ROLE_WORDS,
        "status_words": STATUS_WORDS,
        "action_words": action_words,
        "outcome_words": OUTCOME_WORDS,
    }


@blueprint.app_template_filter("when")
def _when(moment: datetime | None) -> str:
    """Every time a page shows carries its time zone (the directory keeps UTC)."""
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


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
    """A request form: every field's error at once, beside the field; what was typed is kept."""
    form = FORMS.get(slug)
    if form is None:
        abort(404, description="no such request form")
    values = {f.name: "" for f in form.fields}
    if request.method == "GET":
        return _render("request_form.html", form=form, values=values, errors={}, choices={})
    # A choice offered below a field (a radio button) comes after the field's own value.
    values = {f.name: (request.form.getlist(f.name) or [""])[-1] for f in form.fields}
    fields, problems, choices = _checked(form, values)
    if not problems:
        try:
            shapes.submit(_service(), g.username, form.kind, fields)
        except InvalidInput as exc:
            spec = _field_named(form, exc.field)
            problems[spec.name if spec else ""] = _say(spec, exc)
        except ServiceError as exc:
            return _render(
                "request_form.html",
                _status(exc),
                form=form,
                values=values,
                errors={"": exc.message + (f" (rule {exc.rule})" if exc.rule else "")},
                choices={},
            )
        else:
            flash("Your request was filed; it is waiting for approval.")
            return redirect(url_for("pages.my_requests"))
    return _render(
        "request_form.html", 400, form=form, values=values, errors=problems, choices=choices
    )


def _status(exc: ServiceError) -> int:
    return errors.status_of(exc)


def _field_named(form: RequestForm, service_name: str) -> Field | None:
    for spec in form.fields:
        if service_name == spec.name or service_name in spec.service_names:
            return spec
    return None


def _say(spec: Field | None, exc: InvalidInput) -> str:
    """The service's message with the field's label, never its internal name."""
    message = exc.message.removeprefix(f"{exc.field}: ")
    return f"{spec.label} {message}" if spec else message


def _checked(
    form: RequestForm, values: dict[str, str]
) -> tuple[dict[str, str], dict[str, str], dict[str, list[tuple[str, str]]]]:
    """Check every field (the service's validators), finding organizations and groups by name.

    Returns the fields for the service, an error per field, and the choices to offer where a
    name matched several organizations or groups (the no-JavaScript way to pick one).
    """
    fields = dict(values)
    problems: dict[str, str] = {}
    choices: dict[str, list[tuple[str, str]]] = {}
    org_id = ""
    for spec in form.fields:
        value = values[spec.name].strip()
        try:
            if spec.required or value:
                if spec.check == "organization":
                    org_id = _organization_choice(spec, value, choices)
                    fields[spec.name] = org_id
                elif spec.check == "group":
                    fields[spec.name] = _group_choice(spec, org_id, value, choices)
                elif spec.check in CHECKS:
                    CHECKS[spec.check](spec.name, value)
                else:
                    inputs.text(
                        spec.name, value, max_length=spec.max_length, required=spec.required
                    )
        except InvalidInput as exc:
            problems[spec.name] = _say(spec, exc)
    return fields, problems, choices


CHECKS = {
    "identifier": inputs.identifier,
    "npi": inputs.npi,
    "provider_type": inputs.provider_type,
    "id": inputs.entity_id,
}


def _organization_choice(spec: Field, value: str, choices: dict[str, list[tuple[str, str]]]) -> str:
    if not value:
        raise InvalidInput(spec.name, "is required: type part of its name")
    reference = organization_reference(value)
    if reference.startswith("org-"):
        return reference
    found = _views().resolve_organization(g.username, value)
    if len(found) == 1:
        return found[0].id
    if not found:
        raise InvalidInput(spec.name, f"“{value}” matches no registered organization")
    choices[spec.name] = [
        (o.identifier, f"{o.name} (TIN/EIN or NPI {o.identifier})") for o in found
    ]
    raise InvalidInput(spec.name, f"“{value}” matches several organizations: choose one")


def _group_choice(
    spec: Field, org_id: str, value: str, choices: dict[str, list[tuple[str, str]]]
) -> str:
    if not value:
        raise InvalidInput(spec.name, "is required: type part of its name")
    if not org_id:
        raise InvalidInput(spec.name, "can be found once the organization is known")
    found = _views().find_groups(g.username, org_id, value)
    exact = [grp for grp in found if value.casefold() in (grp.name.casefold(), grp.id)]
    if len(exact) == 1:
        return exact[0].id
    if len(found) == 1:
        return found[0].id
    if not found and is_valid_id(value):
        return value  # a group's id as such (perhaps pending): the service judges it (EU-2)
    if not found:
        raise InvalidInput(spec.name, f"“{value}” matches no group of that organization")
    choices[spec.name] = [(grp.id, grp.name) for grp in found]
    raise InvalidInput(spec.name, f"“{value}” matches several groups: choose one")


@blueprint.get("/my")
@login_required
def my_requests():
    return _render(
        "my.html",
        requests=_views().my_requests(g.username),
        roles=_views().roles(g.username),
    )


@blueprint.get("/requests/<request_id>")
@login_required
def request_detail(request_id: str):
    """The request page, titled in words, carrying the decision (or withdraw) buttons."""
    return _render("request.html", view=_views().request(g.username, request_id))


@blueprint.post("/requests/<request_id>/withdraw")
@login_required
def withdraw(request_id: str):
    """The requester takes back a pending request (audited by the service)."""
    back = url_for("pages.my_requests")
    try:
        _service().withdraw(g.username, request_id, request.form.get("reason", ""))
    except ServiceError as exc:
        return _refused(exc, back)
    flash("Your request was withdrawn.")
    return redirect(back)


# ------------------------------------------------------------------ deciding


@blueprint.get("/approvals")
@login_required
def approvals():
    return _render("approvals.html", queue=_views().queue(g.username))


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
    person = _views().person_card(decided.requester)
    flash(f"The request of {person.display_name or person.username} was {decided.status.value}.")
    return redirect(back)


# ------------------------------------------------------------------ roles


@blueprint.get("/roles/revoke")
@login_required
def confirm_revoke():
    """LC-1: the confirmation page of a revocation or resignation; asks for the reason."""
    back = _back_arg(url_for("pages.my_requests"))
    try:
        membership = shapes.membership_from(request.args)
        holder = request.args.get("username", "")
        decision = _views().may_revoke(g.username, holder, membership)
        if not decision.allowed and holder == g.username:
            # One's own role: the refusal says the way forward (LC-4), on its own page.
            return _render("resignation_refused.html", 422, refusal=decision, back=back)
        role = _views().role_to_end(g.username, holder, membership)
    except ServiceError as exc:
        return _refused(exc, back)
    return _render(
        "confirm_revoke.html",
        holder=_views().person_card(holder),
        role=role,
        membership=membership,
        back=back,
        errors={},
        reason="",
    )


@blueprint.post("/roles/revoke")
@login_required
def revoke():
    """LC-1: revoke someone's role, or resign one's own: confirmed, with a reason (audited)."""
    back = _back(url_for("pages.my_requests"))
    try:
        membership = shapes.membership_from(request.form)
        holder = request.form.get("username", "")
        reason = request.form.get("reason", "")
        if request.form.get("confirmed") != "yes" or not reason.strip():
            role = _views().role_to_end(g.username, holder, membership)
            return _render(
                "confirm_revoke.html",
                400,
                holder=_views().person_card(holder),
                role=role,
                membership=membership,
                back=back,
                errors={"reason": "Say why the role ends; the reason is kept in the audit record"},
                reason=reason,
            )
        _service().revoke(g.username, holder, membership, reason)
    except ServiceError as exc:
        return _refused(exc, back)
    if holder == g.username:
        flash("You resigned that role.")
    else:
        person = _views().person_card(holder)
        flash(f"The role of {person.display_name or holder} was revoked.")
    return redirect(back)


def _back_arg(default: str) -> str:
    return safe_next(request.args.get("return_to")) or default


# ------------------------------------------------------------------ certifications (LC-3)


@blueprint.get("/certifications")
@login_required
def certifications():
    """LC-3: the roles this person may recertify, grouped by organization and group."""
    return _render(
        "certifications.html",
        items=_views().certifications(g.username),
        campaign=_views().campaign(g.username),
    )


@blueprint.post("/certifications")
@login_required
def certify():
    """Certify, or (after a confirmation with a reason) revoke, the chosen roles at once."""
    back = url_for("pages.certifications")
    action = request.form.get("action")
    chosen = request.form.getlist("request_id")
    if action not in ("certify", "revoke"):
        abort(400, description="choose certify or revoke")
    items = [c for c in _views().certifications(g.username) if c.view.request.id in chosen]
    if not chosen or len(items) != len(set(chosen)):
        flash("Choose at least one of the roles listed (a role no longer listed was left out).")
        return redirect(back)
    reason = request.form.get("reason", "")
    if action == "revoke" and (request.form.get("confirmed") != "yes" or not reason.strip()):
        errors = {}
        if request.form.get("confirmed") == "yes":
            errors["reason"] = "Say why these roles end; the reason is kept in the audit record"
        return _render(
            "confirm_certifications.html", 400 if errors else 200, items=items, errors=errors
        )
    done = 0
    try:
        for item in items:
            r = item.view.request
            if action == "certify":
                _service().recertify(g.username, r.id)
            else:
                _service().revoke(g.username, r.requester, item.role.membership, reason)
            done += 1
    except ServiceError as exc:
        return _refused(exc, back)
    verb = "certified" if action == "certify" else "revoked"
    flash(f"{done} role{'' if done == 1 else 's'} {verb}.")
    return redirect(back)


# ------------------------------------------------------------------ people


@blueprint.get("/people/<username>")
@login_required
def person(username: str):
    """A person page: the help desk sees everyone, officials the people of their scope."""
    return _render("person.html", view=_views().person(g.username, username))


# ------------------------------------------------------------------ find by name


@blueprint.get("/lookup/organizations")
@login_required
def lookup_organizations() -> Response:
    """Search-as-you-type for organization fields (the page works without it)."""
    try:
        found = _views().find_organizations(g.username, request.args.get("q", ""))
    except InvalidInput:
        found = []
    return jsonify(
        {"organizations": [{"id": o.id, "name": o.name, "identifier": o.identifier} for o in found]}
    )


@blueprint.get("/lookup/groups")
@login_required
def lookup_groups() -> Response:
    """Search-as-you-type for group fields: the groups of the organization chosen beside it."""
    organization = request.args.get("organization", "")
    try:
        choices = _views().resolve_organization(g.username, organization)
        org_id = choices[0].id if len(choices) == 1 else organization_reference(organization)
        found = _views().find_groups(g.username, org_id, request.args.get("q", ""))
    except ServiceError:
        found = []
    return jsonify({"groups": [{"id": grp.id, "name": grp.name} for grp in found]})


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
    return _render(
        "audit.html", page=page, org_id=org_id, org_name=_views().organization_name(org_id)
    )


@blueprint.get("/organizations/<org_id>/audit.csv")
@login_required
def organization_audit_csv(org_id: str) -> Response:
    return _audit_csv(_views().audit(g.username, org_id, **_audit_args()), org_id)


def _audit_csv(page: AuditPage, name: str) -> Response:
    """The page's records as CSV; a cell that a spreadsheet would run as a formula is quoted."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "when (UTC)",
            "who",
            "action",
            "what",
            "outcome",
            "about",
            "organization",
            "group",
            "surrogate group",
            "request",
            "detail",
        ]
    )
    for r in page.records:
        writer.writerow(
            _cell(value)
            for value in (
                r.at.astimezone(UTC).isoformat(),
                r.actor,
                r.action,
                action_words(r.action),
                r.outcome,
                r.subject,
                r.organization_id,
                r.group_id,
                r.surrogate_group_id,
                r.request_id,
                r.detail,
            )
        )
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="audit-{name}.csv"'},
    )


def _cell(value: str) -> str:
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


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
    """The policy decides who reaches the console (``policy.may_use_help_desk_console``)."""
    _views().enter_help_desk_console(g.username)


@blueprint.get("/help-desk")
@login_required
def help_desk():
    _require_help_desk()
    query = request.args.get("q")
    result = _views().search(g.username, query) if query else None
    queue = [v for v in _views().queue(g.username) if v.request.kind in HELP_DESK_KINDS]
    return _render(
        "help_desk.html",
        queue=queue,
        result=result,
        query=query or "",
        without_so=_views().organizations_without_security_official(g.username),
        values={},
        errors={},
    )


@blueprint.get("/help-desk/audit")
@login_required
def help_desk_audit():
    page = _views().audit(g.username, None, **_audit_args())
    return _render("audit.html", page=page, org_id=None)


@blueprint.route("/help-desk/onboarding", methods=["GET", "POST"])
@login_required
def help_desk_onboarding():
    """Issue 10, item 5: bulk onboarding from a CSV (dry run first), and the roles export."""
    _require_help_desk()
    report = None
    if request.method == "POST":
        upload = request.files.get("csv_file")
        raw = upload.read() if upload is not None else b""
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            return _refused(
                ServiceError("the file is not UTF-8 text"), url_for("pages.help_desk_onboarding")
            )
        dry_run = request.form.get("mode") != "import"
        try:
            report = import_onboarding(_service(), g.username, text, dry_run=dry_run)
        except ServiceError as exc:
            return _refused(exc, url_for("pages.help_desk_onboarding"))
    return _render("help_desk_onboarding.html", report=report, columns=ONBOARDING_COLUMNS)


@blueprint.get("/help-desk/onboarding/template.csv")
@login_required
def help_desk_onboarding_template():
    _require_help_desk()
    return _csv_download(onboarding_template(), "iacs-onboarding-template.csv")


@blueprint.get("/help-desk/export.csv")
@login_required
def help_desk_export():
    """Every organization's roles with their certification dates (AUD-2: the help desk's)."""
    try:
        text = export_roles(_service(), g.username)
    except ServiceError as exc:
        return _refused(exc, url_for("pages.help_desk"))
    return _csv_download(text, "iacs-roles.csv")


def _csv_download(text: str, filename: str) -> Response:
    response = Response(text, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@blueprint.route("/help-desk/accounts", methods=["GET", "POST"])
@login_required
def help_desk_accounts():
    """INACT-1: accounts disabled for inactivity, and re-enabling one."""
    _require_help_desk()
    back = url_for("pages.help_desk_accounts")
    if request.method == "POST":
        holder = request.form.get("username", "")
        try:
            _service().reenable_account(g.username, holder)
        except ServiceError as exc:
            return _refused(exc, back)
        flash(f"The account of {holder} is enabled again.")
        return redirect(back)
    try:
        disabled = _service().disabled_for_inactivity(g.username)
    except ServiceError as exc:
        return _refused(exc, url_for("pages.help_desk"))
    return _render("help_desk_accounts.html", disabled=disabled)


@blueprint.get("/help-desk/audit.csv")
@login_required
def help_desk_audit_csv() -> Response:
    return _audit_csv(_views().audit(g.username, None, **_audit_args()), "all")


@blueprint.post("/help-desk/replace-security-official")
@login_required
def replace_security_official():
    """LC-4: the help desk names the successor of a departed Security Official."""
    back = url_for("pages.help_desk")
    values = {k: request.form.get(k, "") for k in ("organization_id", "successor", "reason")}
    try:
        _require_help_desk()
        choices = _views().resolve_organization(g.username, values["organization_id"])
        org_id = (
            choices[0].id
            if len(choices) == 1
            else organization_reference(values["organization_id"])
        )
        view = _views().organization(g.username, org_id)
        successor = _views().person_card(values["successor"].strip())
        errors = {}
        if not values["reason"].strip():
            errors["reason"] = (
                "Say why the Security Official is replaced (kept in the audit record)"
            )
        if request.form.get("confirmed") != "yes" or errors:
            return _render(
                "confirm_replace.html",
                400 if errors and request.form.get("confirmed") == "yes" else 200,
                view=view,
                successor=successor,
                values=values,
                errors=errors if request.form.get("confirmed") == "yes" else {},
            )
        _service().replace_security_official(
            g.username, org_id, successor.username, values["reason"]
        )
    except ServiceError as exc:
        return _refused(exc, back)
    flash(
        f"{successor.display_name or successor.username} is now the Security Official of "
        f"{view.organization.name}."
    )
    return redirect(back)
