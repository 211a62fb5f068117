"""The browser tests' harness: the portal as a real HTTP server, Chromium, one context a person.

The portal runs as a real HTTP server (werkzeug ``make_server`` in a thread) against the test
slapd and a fresh realm (``realm.json`` with LDAP federation); the people exist only in the
directory (``make_person``) and sign in through Keycloak's login form. Each person has their own
browser context (their own cookies). On failure, a screenshot and the HTML of every open page
are saved in the test's tmp dir. The fixtures themselves are in ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from iacs.settings import Settings

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


class Walk:
    """One browser context per person; keeps every page to save as evidence on failure."""

    def __init__(self, chromium, portal: RunningPortal, evidence: Path) -> None:
        self.chromium = chromium
        self.portal = portal
        self.evidence = evidence
        self.pages: dict[str, object] = {}
        self.contexts: list[object] = []
        self.nojs: list[object] = []
        self._checker = None

    def person(self, username: str, *, javascript: bool = True):
        """A signed-in page for ``username``: the portal's sign-in, then Keycloak's form."""
        context = self.chromium.new_context(java_script_enabled=javascript)
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        self.pages[f"{username}{'' if javascript else '-nojs'}"] = page
        if not javascript:
            self.nojs.append(page)
        page.goto(f"{self.portal.url}/auth/login?next=/my")
        page.wait_for_selector("#kc-form-login")  # Keycloak's own login page
        assert page.url.startswith(self.portal.settings.keycloak.url), page.url
        page.fill("#username", username)
        page.fill("#password", PASSWORD)
        page.click("#kc-login")
        page.wait_for_url(f"{self.portal.url}/my")
        assert page.locator("h1").inner_text() == "My requests and roles"
        return page

    def check(self, page, label: str = "") -> None:
        """axe-core on ``page``; a page without JavaScript is checked as a copy in a page with it.

        axe needs timers, which a context without JavaScript does not run: its HTML is loaded
        into a checking page (with a ``<base>`` so the portal's stylesheet applies) instead.
        """
        if page not in self.nojs:
            check_accessibility(page, label)
            return
        if self._checker is None:
            context = self.chromium.new_context(bypass_csp=True)
            self.contexts.append(context)
            self._checker = context.new_page()
        html = page.content().replace("<head>", f'<head><base href="{self.portal.url}/">', 1)
        self._checker.set_content(html, wait_until="load")
        check_accessibility(self._checker, f"{label} (without JavaScript)")

    def save_evidence(self, label: str) -> None:
        for name, page in self.pages.items():
            with contextlib.suppress(Exception):
                page.screenshot(path=str(self.evidence / f"{label}-{name}.png"), full_page=True)
                (self.evidence / f"{label}-{name}.html").write_text(page.content())

    def close(self) -> None:
        for context in self.contexts:
            with contextlib.suppress(Exception):
                context.close()


def approve(page, name: str, *, queue_path: str) -> None:
    """On a queue page, press "Approve <name>" (the requester's full name) and see it confirmed."""
    page.goto(f"{queue_path}")
    page.get_by_role("button", name=f"Approve {name}", exact=True).click()
    page.wait_for_load_state()
    notice = page.locator("[role=status]").first
    assert "approved" in notice.inner_text(), page.content()


AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
"""axe-core from npm (``tests/browser/package.json``; ``scripts/setup.sh`` installs it)."""

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def check_accessibility(page, label: str = "") -> None:
    """Zero axe-core violations (WCAG 2.x A and AA rules) on the page as it is now.

    axe is evaluated through the DevTools protocol, so the portal's CSP (no inline or foreign
    script) stays as it is in production.
    """
    assert AXE.exists(), f"axe-core is missing: run `make setup` (looked for {AXE})"
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text() + "\n;undefined")
    result = page.evaluate(
        """() => axe.run(document, {runOnly: {type: 'tag',
              values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})
            .then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.slice(0, 3).map(n => n.html)})))"""
    )
    assert result == [], f"axe-core violations on {label or page.url}: {result}"


def screenshot(page, name: str) -> None:
    """A screenshot of a main page for the README (``docs/screenshots/<name>.png``).

    Written only with ``IACS_UPDATE_SCREENSHOTS=1``, so an ordinary test run leaves the work
    tree as it found it.
    """
    if os.environ.get("IACS_UPDATE_SCREENSHOTS") != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def no_page_scroll(page) -> None:
    """At the page's current width, the page itself does not scroll sideways (tables may)."""
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {page.viewport_size}"


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
