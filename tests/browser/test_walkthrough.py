"""The approval chain end to end in headless Chromium: portal pages and Keycloak's real login page.

The portal runs as a real HTTP server (werkzeug ``make_server`` in a thread) against the test
slapd and a fresh realm (``realm.json`` with LDAP federation); the people exist only in the
directory (``make_person``) and sign in through Keycloak's login form. Each person has their own
browser context (their own cookies). Screenshots land in the test's tmp dir; on failure, a
screenshot and the HTML of every open page are saved there too.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from iacs.domain import Membership, Role, ScopeKind
from iacs.settings import PortalSettings, Settings
from iacs.stack.process import free_port
from tests.fixtures.keycloak import keycloak_settings_for

pytestmark = [pytest.mark.browser, pytest.mark.servers]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "Browser-Test-Password-1"
TIMEOUT_MS = 90_000  # Keycloak pages may take seconds on a loaded machine
TIN = "12-3456789"
ORG = "org-123456789"


@dataclass
class RunningPortal:
    url: str
    settings: Settings
    psr_url: str
    """The sample PS&R application (``examples/pqri_psr_app``), a client of the same realm."""


@pytest.fixture
def portal(
    keycloak, realm_name, ldap_settings, directory, redis_server, redis_store
) -> Iterator[RunningPortal]:
    """The portal on a free loopback port, against the test slapd and a fresh realm."""
    from werkzeug.serving import make_server

    from examples.pqri_psr_app import AppConfig
    from examples.pqri_psr_app import create_app as create_sample_app
    from iacs.wiring import build_portal
    from keycloak_config.apply import apply_from_settings

    port, psr_port = free_port(), free_port()
    url, psr_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{psr_port}"
    settings = Settings(
        ldap=ldap_settings,
        keycloak=keycloak_settings_for(
            keycloak,
            realm_name,
            application_redirect_uris={"psr": f"{psr_url}/oidc/callback"},
            application_client_secrets={"psr": secrets.token_urlsafe(24)},
        ),
        portal=PortalSettings(
            public_url=url,
            secret_key=secrets.token_urlsafe(48),
            session_cookie_secure=False,
            session_store_url=redis_server.url,
        ),
    )
    apply_from_settings(settings, with_federation=True)
    psr = create_sample_app(AppConfig.from_settings(settings, "psr", f"{psr_url}/oidc/callback"))
    servers = [
        make_server("127.0.0.1", port, build_portal(settings), threaded=True),
        make_server("127.0.0.1", psr_port, psr, threaded=True),
    ]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield RunningPortal(url, settings, psr_url)
    finally:
        for server in servers:
            server.shutdown()


@pytest.fixture
def chromium():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Walk:
    """One browser context per person; keeps every page to save as evidence on failure."""

    def __init__(self, chromium, portal: RunningPortal, evidence: Path) -> None:
        self.chromium = chromium
        self.portal = portal
        self.evidence = evidence
        self.pages: dict[str, object] = {}
        self.contexts: list[object] = []

    def person(self, username: str, *, javascript: bool = True):
        """A signed-in page for ``username``: the portal's sign-in, then Keycloak's form."""
        context = self.chromium.new_context(java_script_enabled=javascript)
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        self.pages[f"{username}{'' if javascript else '-nojs'}"] = page
        page.goto(f"{self.portal.url}/auth/login?next=/my")
        page.wait_for_selector("#kc-form-login")  # Keycloak's own login page
        assert page.url.startswith(self.portal.settings.keycloak.url), page.url
        page.fill("#username", username)
        page.fill("#password", PASSWORD)
        page.click("#kc-login")
        page.wait_for_url(f"{self.portal.url}/my")
        assert page.locator("h1").inner_text() == "My requests and roles"
        return page

    def save_evidence(self, label: str) -> None:
        for name, page in self.pages.items():
            with contextlib.suppress(Exception):
                page.screenshot(path=str(self.evidence / f"{label}-{name}.png"), full_page=True)
                (self.evidence / f"{label}-{name}.html").write_text(page.content())

    def close(self) -> None:
        for context in self.contexts:
            with contextlib.suppress(Exception):
                context.close()


@pytest.fixture
def walk(chromium, portal, tmp_path, request) -> Iterator[Walk]:
    walk = Walk(chromium, portal, tmp_path)
    try:
        yield walk
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is None or report.failed:
            walk.save_evidence("failure")
        walk.close()


def approve(page, requester: str, *, queue_path: str) -> None:
    """On a queue page, press "Approve <requester>" and see the decision confirmed."""
    page.goto(f"{queue_path}")
    page.get_by_role("button", name=f"Approve {requester}", exact=True).click()
    page.wait_for_load_state()
    notice = page.locator("[role=status]")
    assert "approved" in notice.inner_text(), page.content()


def check_keyboard_and_labels(page) -> None:
    """Every input of the form has a label; Tab from the first field reaches the submit button."""
    form = page.locator("main form")
    unlabelled = form.evaluate(
        """form => [...form.querySelectorAll('input, select, textarea')]
            .filter(el => el.type !== 'hidden')
            .filter(el => !(el.id && form.querySelector(`label[for="${el.id}"]`)))
            .map(el => el.name)"""
    )
    assert unlabelled == [], f"inputs without a label: {unlabelled}"
    form.locator("input:not([type=hidden]), select, textarea").first.focus()
    visited = []
    for _ in range(20):
        visited.append(page.evaluate("(el => el.name || el.textContent)(document.activeElement)"))
        if visited[-1] == "Send the request":
            break
        page.keyboard.press("Tab")
    assert visited[-1] == "Send the request", f"Tab went through {visited}"
    assert form.evaluate("form => form.contains(document.activeElement)")


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
    sofia.get_by_label("Organization name").fill("Lakeside General Hospital")
    sofia.get_by_label("TIN/EIN or NPI").fill(TIN)
    sofia.get_by_label("Provider type").select_option("hospital")
    sofia.get_by_label("TIN/EIN or NPI").press("Enter")  # submit from the keyboard
    sofia.wait_for_url(f"{url}/my")
    assert "Your request was filed" in sofia.locator("[role=status]").inner_text()

    # ORG-3: the help desk approves the registration, with JavaScript disabled.
    helpdesk = walk.person("helpdesk", javascript=False)
    approve(helpdesk, "sofia", queue_path=f"{url}/help-desk")
    sofia.goto(f"{url}/my")
    assert "Security official" in sofia.locator("main table").first.inner_text()

    # UGA-2: a User Group Administrator asks for a new group; the Security Official approves.
    uma = walk.person("uma")
    uma.goto(f"{url}/requests/new/user-group-administrator")
    uma.get_by_label("Organization", exact=True).fill(TIN)
    uma.get_by_label("New group's name (optional)").fill("Billing")
    uma.get_by_role("button", name="Send the request").click()
    uma.wait_for_url(f"{url}/my")
    approve(sofia, "uma", queue_path=f"{url}/approvals")

    # EU-1: an End User asks to join the group; its administrator approves.
    eve = walk.person("eve")
    eve.goto(f"{url}/requests/new/end-user")
    eve.get_by_label("Organization", exact=True).fill(ORG)
    eve.get_by_label("Group id").fill("billing")
    eve.get_by_role("button", name="Send the request").click()
    eve.wait_for_url(f"{url}/my")
    approve(uma, "eve", queue_path=f"{url}/approvals")

    eve.goto(f"{url}/my")
    roles = eve.locator("main table").first.inner_text()
    assert "End user" in roles and f"group billing of {ORG}" in roles, roles
    eve.screenshot(path=str(tmp_path / "end-user-roles.png"), full_page=True)
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
