"""Issue 9 in headless Chromium, every person through Keycloak's real login page.

Officials decide knowing who it is (names, e-mails, what in words, a request page with the
buttons), find organizations and groups by name (search-as-you-type, and without JavaScript),
and destructive actions are deliberate (confirmation and a reason kept in the audit; the last
Security Official cannot resign, LC-4). Every page visited passes axe-core with no violation.
The state the walk starts from is filed through the service (the same path as the pages).
"""

from __future__ import annotations

import pytest

from iacs.domain import Membership, Role, ScopeKind
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

HARBOR_TIN = "98-7654321"
HARBOR = "org-987654321"


def _people(make_person, root_directory) -> None:
    for username, name in [
        ("sofia", "Sofia Lopez"),
        ("helpdesk", "Hal Desk"),
        ("ben", "Ben Okafor"),
        ("uma", "Uma Patel"),
        ("eve", "Eve Martin"),
        ("olga", "Olga Berg"),
    ]:
        make_person(
            username, password=PASSWORD, display_name=name, email=f"{username}@example.test"
        )
    root_directory.add_member(Membership(Role.HELP_DESK, ScopeKind.SYSTEM), "helpdesk")


def _lakeside(service) -> str:
    """Lakeside General Hospital with its SO (sofia), group Billing (UGA uma, End User eve)."""
    filed = service.register_organization(
        "sofia", name="Lakeside General Hospital", identifier=TIN, provider_type="hospital"
    )
    service.decide("helpdesk", filed.id, approve=True)
    uga = service.request_user_group_administrator("uma", ORG, group_name="Billing")
    service.decide("sofia", uga.id, approve=True)
    eu = service.request_end_user("eve", ORG, "billing")
    service.decide("uma", eu.id, approve=True)
    harbor = service.register_organization(
        "olga", name="Harbor Clinic", identifier=HARBOR_TIN, provider_type="hospital"
    )
    service.decide("helpdesk", harbor.id, approve=True)
    return ORG


def test_officials_decide_knowing_who_it_is_and_find_organizations_by_name(
    walk: Walk, portal: RunningPortal, make_person, root_directory, directory
) -> None:
    """Issue 9 items 1, 2 and 4: the queue shows name and e-mail, the request page is titled in
    words and carries the buttons, a form finds an organization by part of its name (with and
    without JavaScript), and the help desk's search leads to a person page."""
    _people(make_person, root_directory)
    service = build_service(portal.settings, directory)
    _lakeside(service)
    url = portal.url

    # ben finds Lakeside by part of its name, in lower case, with search-as-you-type.
    ben = walk.person("ben")
    ben.goto(f"{url}/requests/new/backup-security-official")
    walk.check(ben, "request form")
    ben.get_by_label("Organization", exact=True).press_sequentially("lakeside gen")
    suggestion = ben.get_by_role(
        "button", name="Lakeside General Hospital (TIN/EIN or NPI 123456789)"
    )
    suggestion.click()
    assert ben.get_by_label("Organization", exact=True).input_value() == "Lakeside General Hospital"
    walk.check(ben, "request form with suggestions")
    ben.get_by_role("button", name="Send the request").click()
    ben.wait_for_url(f"{url}/my")
    assert "Backup Security Official" in ben.locator("main").inner_text()

    # All errors at once: the summary takes the focus and its links land on the fields.
    ben.goto(f"{url}/requests/new/end-user")
    ben.get_by_label("Group", exact=True).fill("Nowhere group")
    ben.get_by_role("button", name="Send the request").click()
    summary = ben.locator(".error-summary")
    ben.wait_for_function("document.activeElement.classList.contains('error-summary')")
    assert "There are 2 problems" in summary.inner_text()
    summary.get_by_role("link", name="Organization is required: type part of its name").click()
    assert ben.evaluate("document.activeElement.id") == "field-organization_id"
    organization = ben.get_by_label("Organization", exact=True)
    assert organization.get_attribute("aria-invalid") == "true"
    assert "error-organization_id" in organization.get_attribute("aria-describedby")
    assert ben.get_by_label("Group", exact=True).input_value() == "Nowhere group"  # kept
    walk.check(ben, "form with errors")

    # Without JavaScript, a part of the name that matches two organizations offers a choice.
    olga = walk.person("olga", javascript=False)
    olga.goto(f"{url}/requests/new/surrogate-group")
    olga.get_by_label("Organization", exact=True).fill("Nowhere Medical")
    olga.get_by_label("Surrogate group's name").fill("Claims Clearing Co")
    olga.get_by_role("button", name="Send the request").click()
    assert "matches no registered organization" in olga.locator(".error-summary").inner_text()
    olga.get_by_label("Organization", exact=True).fill("l")  # both names have an l
    olga.get_by_role("button", name="Send the request").click()
    olga.get_by_label("Lakeside General Hospital (TIN/EIN or NPI 123456789)").check()
    walk.check(olga, "a choice of organizations")
    olga.get_by_role("button", name="Send the request").click()
    olga.wait_for_url(f"{url}/my")

    # The SO's queue: full name, e-mail, the role and the organization in words, when asked.
    sofia = walk.person("sofia")
    sofia.goto(f"{url}/approvals")
    queue = sofia.locator("main table").inner_text()
    for expected in (
        "Ben Okafor",
        "ben@example.test",
        "a Backup Security Official",
        "Lakeside General Hospital",
        "UTC",
        "Olga Berg",
        "the administrator of a new Surrogate User Group",
        "Claims Clearing Co",
    ):
        assert expected in queue, (expected, queue)
    walk.check(sofia, "approval queue")
    screenshot(sofia, "approval-queue")
    sofia.set_viewport_size({"width": 390, "height": 844})
    no_page_scroll(sofia)
    sofia.set_viewport_size({"width": 1280, "height": 900})

    # The request page is titled in words and carries the decision buttons.
    sofia.get_by_role("link", name="Review or reject the request of Ben Okafor").click()
    title = "Ben Okafor asks to be a Backup Security Official — Lakeside General Hospital"
    assert sofia.locator("h1").inner_text() == title
    assert title in sofia.title()
    walk.check(sofia, "request page")
    screenshot(sofia, "request-page")
    sofia.get_by_role("button", name="Approve Ben Okafor").click()
    assert "The request of Ben Okafor was approved." in sofia.locator("[role=status]").inner_text()
    bso = Membership(Role.BACKUP_SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, ORG)
    assert directory.members_of(bso) == {"ben"}

    # Officials see the people of their scope only; the help desk sees everyone.
    sofia.goto(f"{url}/people/eve")
    assert "Billing at Lakeside General Hospital" in sofia.locator("main").inner_text()
    walk.check(sofia, "person page (official)")
    assert sofia.goto(f"{url}/people/helpdesk").status == 404  # outside her scope

    helpdesk = walk.person("helpdesk")
    helpdesk.goto(f"{url}/help-desk")
    helpdesk.get_by_label("Name, username, id or number").fill("okafor")
    helpdesk.get_by_role("button", name="Search").click()
    helpdesk.get_by_role("link", name="Ben Okafor").click()
    page = helpdesk.locator("main").inner_text()
    assert helpdesk.locator("h1").inner_text() == "Ben Okafor"
    for expected in (
        "ben@example.test",
        "Backup Security Official",
        "Approved a request",
        "Filed a request",
    ):
        assert expected in page, (expected, page)
    walk.check(helpdesk, "person page (help desk)")
    screenshot(helpdesk, "person-page")


def test_destructive_actions_are_deliberate_and_a_request_can_be_withdrawn(
    walk: Walk, portal: RunningPortal, make_person, root_directory, directory
) -> None:
    """LC-1, LC-4 and withdrawal in the browser: Revoke asks for confirmation and a reason (kept
    in the audit); the last Security Official's resignation is refused with the way forward;
    the console lists organizations without an SO; replacing the SO by a BSO leaves them one
    role; the requester withdraws a pending request, audited."""
    _people(make_person, root_directory)
    service = build_service(portal.settings, directory)
    _lakeside(service)
    bso_request = service.request_backup_security_official("ben", ORG)
    service.decide("sofia", bso_request.id, approve=True)
    url = portal.url

    # LC-4: the Security Official's resignation is refused, with the way forward.
    sofia = walk.person("sofia")
    sofia.get_by_role(
        "button", name="Resign as Security Official of Lakeside General Hospital"
    ).click()
    assert sofia.locator("h1").inner_text() == "You cannot resign this role"
    text = sofia.locator("main").inner_text()
    assert "ask the EUS help desk to replace you" in text and "LC-4" in text
    walk.check(sofia, "resignation refused")
    so = Membership(Role.SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, ORG)
    assert directory.members_of(so) == {"sofia"}

    # LC-1: a revocation asks for confirmation and a reason; the reason is kept in the audit.
    uma = walk.person("uma")
    uma.goto(f"{url}/organizations/{ORG}/groups/billing")
    uma.get_by_role("button", name="Revoke Eve Martin").click()
    assert uma.locator("h1").inner_text() == "Revoke the role of Eve Martin?"
    walk.check(uma, "revocation confirmation")
    eu = Membership(Role.END_USER, ScopeKind.USER_GROUP, "billing", ORG)
    uma.get_by_role("button", name="Yes, revoke the role of Eve Martin").click()
    assert "Say why the role ends" in uma.locator(".error-summary").inner_text()
    uma.wait_for_function("document.activeElement.classList.contains('error-summary')")
    assert directory.members_of(eu) == {"eve"}  # nothing ended without a reason
    uma.get_by_label("Reason").fill("Left the billing team")
    uma.get_by_role("button", name="Yes, revoke the role of Eve Martin").click()
    assert "The role of Eve Martin was revoked." in uma.locator("[role=status]").inner_text()
    assert directory.members_of(eu) == set()
    revoked = [r for r in directory.find_audit(actor="uma") if r.action == "revoke"]
    assert [r.detail for r in revoked] == ["Left the billing team"]

    # The console lists organizations without an active SO (Harbor's left: the operator
    # removed her), and the help desk replaces Lakeside's SO by its BSO, who then holds one role.
    root_directory.remove_member(
        Membership(Role.SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, HARBOR), "olga"
    )
    helpdesk = walk.person("helpdesk")
    helpdesk.goto(f"{url}/help-desk")
    without = helpdesk.locator("h2:has-text('Organizations without a Security Official') + ul")
    assert without.inner_text().startswith("Harbor Clinic")
    walk.check(helpdesk, "help-desk console")
    screenshot(helpdesk, "help-desk-console")
    helpdesk.get_by_label("Organization", exact=True).fill("lakeside")
    helpdesk.get_by_label("Successor's username").fill("ben")
    helpdesk.get_by_role("button", name="Replace the Security Official").click()
    assert helpdesk.locator("h1").inner_text() == (
        "Make Ben Okafor the Security Official of Lakeside General Hospital?"
    )
    assert "Sofia Lopez" in helpdesk.locator("main").inner_text()
    walk.check(helpdesk, "replacement confirmation")
    helpdesk.get_by_label("Reason").fill("Sofia retired on 30 November")
    helpdesk.get_by_role("button", name="Yes, make Ben Okafor the Security Official").click()
    assert "Ben Okafor is now the Security Official of Lakeside General Hospital." in (
        helpdesk.locator("[role=status]").inner_text()
    )
    assert directory.members_of(so) == {"ben"}
    assert directory.memberships_of("ben") == frozenset({so})  # no BSO role left beside it
    replaced = [
        r for r in directory.find_audit(actor="helpdesk") if r.action == "replace_security_official"
    ]
    assert [r.detail for r in replaced] == ["Sofia retired on 30 November"]

    # The requester withdraws a pending request; it is audited and leaves the queue.
    pending = service.request_backup_security_official("eve", ORG)
    eve = walk.person("eve")
    eve.get_by_role("link", name="Withdraw or view this request").click()
    walk.check(eve, "own request page")
    eve.get_by_label("Why (optional)").fill("Asked by mistake")
    eve.get_by_role("button", name="Withdraw this request").click()
    assert "Your request was withdrawn." in eve.locator("[role=status]").inner_text()
    assert "Withdrawn" in eve.locator("main").inner_text()
    assert directory.get_request(pending.id).status.value == "withdrawn"
    assert directory.find_audit(actor="eve")[0].action == "withdraw"
    assert pending.id not in {r.id for r in service.approval_queue("ben")}
