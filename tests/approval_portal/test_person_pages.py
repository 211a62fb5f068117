"""Person pages, confirmation pages and the audit CSV, against the real servers (issue 9)."""

from __future__ import annotations

import csv
import io

import pytest

from tests.approval_portal.conftest import Portal, csrf_token

pytestmark = pytest.mark.servers

ORG = "org-123456789"


def test_sec_the_revocation_page_tells_an_outsider_nothing_about_who_holds_a_role(
    portal: Portal,
):
    """Probing /roles/revoke for a role someone holds, and for one they do not, gives an
    outsider the same refusal: the confirmation page is no oracle of memberships."""
    portal.organization("sofia")
    group = portal.user_group(ORG, "sofia", "uma")
    portal.grant("uma", "eve", "end_user", organization_id=ORG, group_id=group)
    portal.organization("olga", identifier="987654321", name="Harbor Clinic")
    olga = portal.sign_in("olga")
    role = {
        "role": "end_user",
        "scope_kind": "user_group",
        "scope_id": group,
        "organization_id": ORG,
    }
    held = olga.get("/roles/revoke", query_string={"username": "eve", **role})
    not_held = olga.get("/roles/revoke", query_string={"username": "sofia", **role})
    assert held.status_code == not_held.status_code == 403
    assert held.get_data(as_text=True).replace("eve", "sofia") == not_held.get_data(as_text=True)
    assert olga.get("/people/eve").status_code == 404  # another organization's End User
    assert portal.sign_in("uma").get("/people/eve").status_code == 200  # her group's


def test_sec_csv_export_neutralises_spreadsheet_formulas(portal: Portal):
    portal.organization("sofia")
    sofia = portal.sign_in("sofia")
    page = f"/organizations/{ORG}"
    saved = sofia.post(
        f"{page}/profile",
        data={"name": "=HYPERLINK(1)", "phone": "+1 555", "csrf_token": csrf_token(sofia, page)},
    )
    assert saved.status_code == 302
    exported = sofia.get(f"{page}/audit.csv")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    change = next(r for r in rows if r["action"] == "update_profile")
    assert change["what"] == "Changed the organization profile"
    assert 'name: "Lakeside General" → "=HYPERLINK(1)"' in change["detail"]
    assert all(not value.startswith(("=", "+", "@")) for r in rows for value in r.values())
    assert portal.sign_in("eve").get(f"{page}/audit.csv").status_code == 403


def test_lc_1_a_revocation_without_a_reason_changes_nothing(portal: Portal):
    portal.organization("sofia")
    portal.grant("sofia", "ben", "backup_security_official", organization_id=ORG)
    sofia = portal.sign_in("sofia")
    form = {
        "username": "ben",
        "role": "backup_security_official",
        "scope_kind": "organization",
        "scope_id": ORG,
        "organization_id": "",
        "confirmed": "yes",
        "reason": "  ",
        "csrf_token": csrf_token(sofia, "/my"),
    }
    refused = sofia.post("/roles/revoke", data=form)
    assert refused.status_code == 400
    assert 'aria-invalid="true"' in refused.get_data(as_text=True)
    assert portal.api("ben").memberships() == {("backup_security_official", "organization", ORG)}
