"""Browser tests: the portal as a real server, Chromium, and one browser context per person.

The call phase's report is kept on the test item (evidence on failure).
"""

from __future__ import annotations

import secrets
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from iacs.settings import PortalSettings, Settings
from iacs.stack.process import free_port
from tests.browser.harness import CHROMIUM, CHROMIUM_ARGS, RunningPortal, Walk
from tests.fixtures.keycloak import keycloak_settings_for


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report


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
