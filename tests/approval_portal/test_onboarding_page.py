"""The help desk's bulk-onboarding page (issue 10, item 5), signed in through the real Keycloak.

The rules themselves are tested over the service (``tests/service/test_onboarding.py``); here:
the page's dry run, then the import, through a CSRF-checked upload; the export download; only
the help desk gets any of it; the page is accessible.
"""

from __future__ import annotations

import csv
import io

import pytest

from iacs.service.onboarding import COLUMNS
from tests.approval_portal.conftest import Portal, csrf_token
from tests.approval_portal.html_checks import accessibility_problems

pytestmark = pytest.mark.servers

PAGE = "/help-desk/onboarding"
CSV = (
    ",".join(COLUMNS)
    + "\r\norganization,12-3456789,Lakeside General,hospital,sofia,,,,"
    + "\r\norganization,98-7654321,Wheels,dmepos,dora,,,,\r\n"
)


def _upload(client, mode: str, text: str = CSV, token: str | None = None):
    return client.post(
        PAGE,
        data={
            "csrf_token": token if token is not None else csrf_token(client, PAGE),
            "mode": mode,
            "csv_file": (io.BytesIO(text.encode()), "orgs.csv"),
        },
        content_type="multipart/form-data",
    )


def test_help_desk_checks_then_imports_a_csv_and_exports_the_roles(portal: Portal) -> None:
    portal.person("sofia")
    portal.person("dora")
    helpdesk = portal.sign_in(portal.help_desk())
    page = helpdesk.get(PAGE)
    assert page.status_code == 200
    assert accessibility_problems(page.get_data(as_text=True)) == []

    dry = _upload(helpdesk, "dry-run")
    body = dry.get_data(as_text=True)
    assert dry.status_code == 200, body
    assert "Dry run: nothing was changed" in body and "would create" in body
    assert "(rule ORG-7)" in body
    assert accessibility_problems(body) == []
    assert portal.service.directory.get_organization("org-123456789") is None

    assert _upload(helpdesk, "import", token="forged").status_code == 400  # CSRF
    assert portal.service.directory.get_organization("org-123456789") is None

    done = _upload(helpdesk, "import").get_data(as_text=True)
    assert "Import done" in done and "created" in done
    assert portal.api("sofia").memberships() == {
        ("security_official", "organization", "org-123456789")
    }

    export = helpdesk.get("/help-desk/export.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    assert "attachment" in export.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert [(r["organization_id"], r["username"]) for r in rows] == [("org-123456789", "sofia")]
    template = helpdesk.get("/help-desk/onboarding/template.csv").get_data(as_text=True)
    assert template.startswith(",".join(COLUMNS))


def test_only_the_help_desk_onboards_and_exports(portal: Portal) -> None:
    portal.organization("sofia")
    sofia = portal.sign_in("sofia")
    assert sofia.get(PAGE).status_code == 403
    assert sofia.get("/help-desk/export.csv").status_code == 403
    token = csrf_token(sofia, "/my")
    assert _upload(sofia, "import", token=token).status_code == 403
    assert portal.service.directory.get_organization("org-987654321") is None
