"""The help desk's page for accounts disabled for inactivity (INACT-1), on the real servers.

The pass itself is tested in ``tests/sync/test_inactivity.py``; here the help desk sees who is
disabled and re-enables an account with a CSRF-checked form; nobody else gets the page.
"""

from __future__ import annotations

import pytest

from iacs.service.inactivity import DISABLED_ACTION
from sync.accounts import KeycloakAccounts
from tests.approval_portal.conftest import Portal, csrf_token
from tests.approval_portal.html_checks import accessibility_problems

pytestmark = pytest.mark.servers

PAGE = "/help-desk/accounts"


def test_lc_5_help_desk_re_enables_an_account_disabled_for_inactivity(portal: Portal) -> None:
    portal.service.accounts = KeycloakAccounts(portal.settings.keycloak)
    portal.api("ivy")  # signs in once: her account is in Keycloak
    portal.service.accounts.set_enabled("ivy", False)  # as the inactivity pass does
    portal.service._audit("system", DISABLED_ACTION, "ok", None, "test", subject="ivy")

    helpdesk = portal.sign_in(portal.help_desk())
    page = helpdesk.get(PAGE)
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "Re-enable ivy" in body
    assert accessibility_problems(body) == []
    assert helpdesk.post(PAGE, data={"username": "ivy"}).status_code == 400  # no CSRF token
    done = helpdesk.post(PAGE, data={"username": "ivy", "csrf_token": csrf_token(helpdesk, PAGE)})
    assert done.status_code == 302
    assert "None." in helpdesk.get(PAGE).get_data(as_text=True)
    accounts = portal.service.accounts.accounts(portal.clock.now)
    assert [a.enabled for a in accounts if a.username == "ivy"] == [True]

    sofia = portal.sign_in("sofia")
    assert sofia.get(PAGE).status_code == 403
