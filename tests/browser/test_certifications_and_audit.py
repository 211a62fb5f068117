"""LC-3 on the page and a readable audit (issue 9 items 5 and 8), in headless Chromium through
Keycloak's real login page; every page visited passes axe-core with no violation."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from iacs.domain import Membership, RequestStatus, Role, ScopeKind
from iacs.wiring import build_service
from tests.browser.harness import (
    ORG,
    PASSWORD,
    TIN,
    RunningPortal,
    Walk,
    no_page_scroll,
    screenshot,
)

pytestmark = [pytest.mark.browser, pytest.mark.servers]


def test_lc_3_my_certifications_certifies_two_roles_at_once_and_shows_the_campaign(
    walk: Walk, portal: RunningPortal, make_person, root_directory, directory
) -> None:
    """LC-3: "My certifications" lists the roles the person may recertify, grouped by
    organization and group, with due dates; two are certified at once; the SO sees the
    campaign's progress; a revocation from the list asks for confirmation and a reason."""
    for username, name in [
        ("sofia", "Sofia Lopez"),
        ("helpdesk", "Hal Desk"),
        ("uma", "Uma Patel"),
        ("eve", "Eve Martin"),
        ("ed", "Ed Young"),
    ]:
        make_person(
            username, password=PASSWORD, display_name=name, email=f"{username}@example.test"
        )
    root_directory.add_member(Membership(Role.HELP_DESK, ScopeKind.SYSTEM), "helpdesk")
    service = build_service(portal.settings, directory)
    filed = service.register_organization(
        "sofia", name="Lakeside General Hospital", identifier=TIN, provider_type="hospital"
    )
    service.decide("helpdesk", filed.id, approve=True)
    uga = service.request_user_group_administrator("uma", ORG, group_name="Billing")
    service.decide("sofia", uga.id, approve=True)
    for person in ("eve", "ed"):
        service.decide("uma", service.request_end_user(person, ORG, "billing").id, approve=True)
    # A year has nearly passed since the roles were last confirmed: they fall due in 15 days.
    almost_a_year_ago = datetime.now(UTC) - timedelta(days=350)
    for request in directory.find_requests(status=RequestStatus.APPROVED, organization_id=ORG):
        directory.set_recertified(request.id, almost_a_year_ago)
    url = portal.url

    uma = walk.person("uma")
    uma.get_by_role("link", name="My certifications").first.click()
    main = uma.locator("main").inner_text()
    assert "Billing at Lakeside General Hospital" in main
    assert "Eve Martin" in main and "Ed Young" in main and "UTC" in main
    walk.check(uma, "my certifications")
    screenshot(uma, "my-certifications")
    uma.get_by_label("Eve Martin, End User").check()
    uma.get_by_label("Ed Young, End User").check()
    uma.get_by_role("button", name="Certify the chosen roles").click()
    assert "2 roles certified." in uma.locator("[role=status]").inner_text()
    recertified = [r for r in directory.find_audit(actor="uma") if r.action == "recertify"]
    assert sorted(r.subject for r in recertified) == ["ed", "eve"]

    sofia = walk.person("sofia")
    sofia.goto(f"{url}/certifications")
    campaign = sofia.locator("h2:has-text('Recertification campaign') + .table-wrap").inner_text()
    assert "Lakeside General Hospital" in campaign and "50%" in campaign, campaign
    walk.check(sofia, "certifications with campaign")
    sofia.get_by_label("Uma Patel, User Group Administrator").check()
    sofia.get_by_role("button", name="Revoke the chosen roles…").click()
    assert sofia.locator("h1").inner_text() == "Revoke 1 role?"
    walk.check(sofia, "revocation of certifications")
    sofia.get_by_label("Reason").fill("No longer administers Billing")
    sofia.get_by_role("button", name="Yes, revoke 1 role").click()
    assert "1 role revoked." in sofia.locator("[role=status]").inner_text()
    uga_role = Membership(Role.USER_GROUP_ADMINISTRATOR, ScopeKind.USER_GROUP, "billing", ORG)
    assert directory.members_of(uga_role) == set()

    helpdesk = walk.person("helpdesk")
    helpdesk.goto(f"{url}/certifications")
    assert "Lakeside General Hospital" in helpdesk.locator("main").inner_text()


def test_the_audit_reads_in_words_with_old_and_new_values_and_exports_csv(
    walk: Walk, portal: RunningPortal, make_person, root_directory, directory
) -> None:
    """AUD-2 readable: actions in words, a profile change's old → new values, times with their
    zone, CSV export of the same filters, and a table usable at 390 px wide."""
    make_person("sofia", password=PASSWORD, display_name="Sofia Lopez")
    make_person("helpdesk", password=PASSWORD, display_name="Hal Desk")
    root_directory.add_member(Membership(Role.HELP_DESK, ScopeKind.SYSTEM), "helpdesk")
    service = build_service(portal.settings, directory)
    filed = service.register_organization(
        "sofia", name="Lakeside General Hospital", identifier=TIN, provider_type="hospital"
    )
    service.decide("helpdesk", filed.id, approve=True)
    url = portal.url

    sofia = walk.person("sofia")
    sofia.goto(f"{url}/organizations/{ORG}")
    sofia.get_by_label("Phone (optional)").fill("555-0100")
    sofia.get_by_role("button", name="Save the profile").click()
    sofia.goto(f"{url}/organizations/{ORG}/audit")
    table = sofia.locator("main table").inner_text()
    assert "Changed the organization profile" in table
    assert 'phone: "" → "555-0100"' in table
    assert "Approved a request" in table and "UTC" in table
    walk.check(sofia, "audit")
    screenshot(sofia, "audit")
    exported = sofia.request.get(f"{url}/organizations/{ORG}/audit.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text())))
    assert {"Changed the organization profile", "Approved a request"} <= {r["what"] for r in rows}

    sofia.set_viewport_size({"width": 390, "height": 844})
    sofia.reload()
    no_page_scroll(sofia)
    walk.check(sofia, "audit at 390 px")
    screenshot(sofia, "audit-phone")
