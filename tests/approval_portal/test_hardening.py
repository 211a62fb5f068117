"""Edge cases a hostile client found (issue 13, low items), against the real servers."""

from __future__ import annotations

import pytest

from tests.approval_portal.conftest import Portal

pytestmark = pytest.mark.servers

ORG = "org-123456789"


def test_sec_a_trailing_newline_does_not_name_a_person(portal: Portal):
    """``^...$`` with ``re.match`` accepted "eve\\n" and revoked eve; full matches refuse it."""
    portal.organization("sofia")
    group = portal.user_group(ORG, "sofia", "uma")
    portal.grant("uma", "eve", "end_user", organization_id=ORG, group_id=group)
    revoke = {
        "role": "end_user",
        "scope_kind": "user_group",
        "scope_id": group,
        "organization_id": ORG,
        "reason": "test",
    }
    for name in ("eve\n", "eve\r\n", "eve\x00"):
        answer = portal.api("sofia").post("/revocations", {**revoke, "username": name})
        assert answer.status_code == 400, name
        assert answer.json["error"]["code"] == "invalid_input"
    assert ("end_user", "user_group", group) in portal.api("eve").memberships()


def test_sec_an_end_user_cannot_read_other_requests_of_the_organization(portal: Portal):
    portal.organization("sofia")
    group = portal.user_group(ORG, "sofia", "uma")
    portal.grant("uma", "eve", "end_user", organization_id=ORG, group_id=group)
    other = portal.api("ben").file("backup_security_official", organization_id=ORG).json["id"]
    colleague = portal.api("olga").file("end_user", organization_id=ORG, group_id=group).json
    eve = portal.api("eve")
    for request_id in (other, colleague["id"]):
        answer = eve.get(f"/requests/{request_id}")
        assert answer.status_code == 404, answer.json
    assert portal.api("ben").get(f"/requests/{other}").status_code == 200  # the requester
    assert portal.api("sofia").get(f"/requests/{other}").status_code == 200  # decides it
    assert portal.api("uma").get(f"/requests/{colleague['id']}").status_code == 200  # decides
    assert portal.api("uma").get(f"/requests/{other}").status_code == 404  # a BSO request
    assert portal.api(portal.help_desk()).get(f"/requests/{other}").status_code == 200
    page = portal.sign_in("eve").get(f"/requests/{other}")
    assert page.status_code == 404
