"""The approval chain end to end in headless Chromium: portal pages and Keycloak's real login page.

The portal runs as a real HTTP server (werkzeug ``make_server`` in a thread) against the test
slapd and a fresh realm (``realm.json`` with LDAP federation); the people exist only in the
directory (``make_person``) and sign in through Keycloak's login form. Each person has their own
browser context (their own cookies). Screenshots land in the test's tmp dir; on failure, a
screenshot and the HTML of every open page are saved there too.
"""

from __future__ import annotations

import pytest

from iacs.domain import Membership, Role, ScopeKind
from tests.browser.harness import (
    ORG,
    PASSWORD,
    TIN,
    RunningPortal,
    Walk,
    approve,
    check_keyboard_and_labels,
)

pytestmark = [pytest.mark.browser, pytest.mark.servers]


def test_e2e_so_helpdesk_uga_end_user_walkthrough(
    walk: Walk, portal: RunningPortal, make_person, root_directory, directory, tmp_path
) -> None:
    """ORG-3, UGA-2, EU-1 in a real browser: the Security Official registers the organization,
    the help desk approves it (in a browser with JavaScript disabled), the SO approves a User
    Group Administrator, the UGA approves an End User; everyone signs in on Keycloak's page.
    Once synced, the End User requests a report in the sample PS&R application and signs out."""
    for username in ("sofia", "helpdesk", "uma", "eve"):
        make_person(username, password=PASSWORD, display_name=f"{username.title()} Browser")
    root_directory.add_member(Membership(Role.HELP_DESK, ScopeKind.SYSTEM), "helpdesk")
    url = portal.url

    # ORG-1: the Security Official registers the organization (keyboard and labels checked).
    sofia = walk.person("sofia")
    sofia.get_by_role("link", name="IACS approval portal").click()
    sofia.get_by_role("link", name="Register an organization as its Security Official").click()
    check_keyboard_and_labels(sofia)
    walk.check(sofia, "organization registration form")
    sofia.get_by_label("Organization name").fill("Lakeside General Hospital")
    sofia.get_by_label("TIN/EIN or NPI").fill(TIN)
    sofia.get_by_label("Provider type").select_option("hospital")
    sofia.get_by_label("TIN/EIN or NPI").press("Enter")  # submit from the keyboard
    sofia.wait_for_url(f"{url}/my")
    assert "Your request was filed" in sofia.locator("[role=status]").inner_text()

    # ORG-3: the help desk approves the registration, with JavaScript disabled.
    helpdesk = walk.person("helpdesk", javascript=False)
    walk.check(helpdesk, "my page, signed in without JavaScript")
    approve(helpdesk, "Sofia Browser", queue_path=f"{url}/help-desk")
    sofia.goto(f"{url}/my")
    assert "Security Official" in sofia.locator("main table").first.inner_text()

    # UGA-2: a User Group Administrator asks for a new group; the Security Official approves.
    uma = walk.person("uma")
    uma.goto(f"{url}/requests/new/user-group-administrator")
    uma.get_by_label("Organization", exact=True).fill(TIN)
    uma.get_by_label("New group's name (optional)").fill("Billing")
    uma.get_by_role("button", name="Send the request").click()
    uma.wait_for_url(f"{url}/my")
    approve(sofia, "Uma Browser", queue_path=f"{url}/approvals")

    # EU-1: an End User asks to join the group; its administrator approves.
    eve = walk.person("eve")
    eve.goto(f"{url}/requests/new/end-user")
    eve.get_by_label("Organization", exact=True).fill(ORG)
    eve.get_by_label("Group", exact=True).fill("billing")
    eve.get_by_role("button", name="Send the request").click()
    eve.wait_for_url(f"{url}/my")
    approve(uma, "Eve Browser", queue_path=f"{url}/approvals")

    eve.goto(f"{url}/my")
    roles = eve.locator("main table").first.inner_text()
    assert "End User" in roles and "Billing at Lakeside General Hospital" in roles, roles
    eve.screenshot(path=str(tmp_path / "end-user-roles.png"), full_page=True)
    walk.check(eve, "my requests and roles")
    end_users = Membership(Role.END_USER, ScopeKind.USER_GROUP, "billing", ORG)
    assert directory.members_of(end_users) == {"eve"}

    # The sync worker projects the approval; the End User uses PS&R (single sign-on).
    from sync.main import run_once

    assert run_once(portal.settings).report.problems == []
    psr = portal.psr_url
    eve.goto(f"{psr}/report-requests")
    eve.wait_for_url(f"{psr}/report-requests")  # via Keycloak, already signed in there
    assert eve.locator("#organizations").inner_text() == ORG
    eve.get_by_role("button", name="Request the report").click()
    eve.wait_for_url(f"{psr}/report-requests")
    assert f"Your report for {ORG} was requested." in eve.locator("[role=status]").inner_text()
    eve.screenshot(path=str(tmp_path / "psr-sample-app.png"), full_page=True)
    eve.get_by_role("button", name="Sign out eve").click()
    eve.wait_for_url(f"{psr}/")
    assert "You are signed out." in eve.locator("[role=status]").inner_text()
