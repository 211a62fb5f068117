"""The HTML pages, signed in through the real Keycloak: one form path (POST with CSRF token) per
rule family, and pages that work by keyboard and screen reader without JavaScript."""

from __future__ import annotations

import pytest

from tests.approval_portal.conftest import Portal, csrf_token
from tests.approval_portal.html_checks import accessibility_problems

pytestmark = pytest.mark.servers

ORG = "org-123456789"


def _text(answer) -> str:
    return answer.get_data(as_text=True)


def _post(client, path: str, data: dict, page: str = "/"):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, page)})


def _assert_accessible(client, *paths: str) -> None:
    for path in paths:
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert accessibility_problems(_text(answer)) == [], path


def test_org_1_registering_an_organization_through_the_form(portal: Portal):
    sofia = portal.sign_in("sofia")
    form = "/requests/new/organization"
    _assert_accessible(sofia, "/", form)
    sent = _post(
        sofia,
        form,
        {
            "name": "Lakeside General",
            "identifier": "12-3456789",
            "provider_type": "hospital",
            "address": "1 Lake Road",
            "phone": "555-0100",
        },
        form,
    )
    assert sent.status_code == 302
    assert sent.headers["Location"] == "/my"
    mine = sofia.get("/my")
    assert "waiting for approval" in _text(mine)
    assert "the Security Official of a newly registered organization" in _text(mine)
    assert accessibility_problems(_text(mine)) == []


def test_org_7_dmepos_refused_on_the_form_page_with_the_reason(portal: Portal):
    dave = portal.sign_in("dave")
    form = "/requests/new/organization"
    refused = _post(
        dave,
        form,
        {"name": "Medical & Supply Co", "identifier": "555666777", "provider_type": "dmepos"},
        form,
    )
    assert refused.status_code == 422
    body = _text(refused)
    assert 'role="alert"' in body
    assert "DMEPOS" in body and "ORG-7" in body
    assert 'value="Medical &amp; Supply Co"' in body  # what was typed comes back, escaped
    assert accessibility_problems(body) == []
    hostile = _post(
        dave,
        form,
        {
            "name": "<script>alert(1)</script>",
            "identifier": "555666777",
            "provider_type": "hospital",
        },
        form,
    )
    assert hostile.status_code == 400
    assert "<script>alert(1)" not in _text(hostile)
    assert "&lt;script&gt;" in _text(hostile)
    assert 'aria-invalid="true"' in _text(hostile)
    assert "You hold no role yet" in _text(dave.get("/my"))


def test_org_5_only_the_security_official_gets_the_profile_form(portal: Portal):
    portal.organization("sofia")
    portal.grant("sofia", "ben", "backup_security_official", organization_id=ORG)
    page = f"/organizations/{ORG}"
    action = f'action="/organizations/{ORG}/profile"'
    sofia = portal.sign_in("sofia")
    ben = portal.sign_in("ben")
    assert action in _text(sofia.get(page))
    assert action not in _text(ben.get(page))
    _assert_accessible(sofia, page)
    refused = _post(ben, f"{page}/profile", {"name": "Renamed by BSO"}, page)
    assert refused.status_code == 403
    assert "ORG-5" in _text(refused)
    updated = _post(sofia, f"{page}/profile", {"name": "Lakeside Medical", "phone": "555"}, page)
    assert updated.status_code == 302
    assert "Lakeside Medical" in _text(sofia.get(page))


def test_org_6_completeness_is_shown_on_the_organization_page(portal: Portal):
    portal.organization("sofia")
    sofia = portal.sign_in("sofia")
    assert "Incomplete" in _text(sofia.get(f"/organizations/{ORG}"))
    portal.user_group(ORG, "sofia", "uma")
    assert "Complete: 2 approved users" in _text(sofia.get(f"/organizations/{ORG}"))


def test_bso_2_the_security_official_approves_from_the_approvals_page(portal: Portal):
    portal.organization("sofia")
    ben = portal.sign_in("ben")
    form = "/requests/new/backup-security-official"
    assert _post(ben, form, {"organization_id": "12-3456789"}, form).status_code == 302
    sofia = portal.sign_in("sofia")
    queue = sofia.get("/approvals")
    assert "Approve Ben Test" in _text(queue) and "ben@example.test" in _text(queue)
    assert accessibility_problems(_text(queue)) == []
    request_id = portal.api("ben").get("/requests").json["requests"][0]["id"]
    approved = _post(sofia, f"/approvals/{request_id}", {"decision": "approve"}, "/approvals")
    assert approved.status_code == 302
    assert "Backup Security Official" in _text(ben.get("/my"))
    again = _post(sofia, f"/approvals/{request_id}", {"decision": "approve"}, "/approvals")
    assert again.status_code == 409
    assert "DEC-3" in _text(again)


def test_uga_3_group_profile_through_the_group_page(portal: Portal):
    portal.organization("sofia")
    group = portal.user_group(ORG, "sofia", "uma")
    portal.grant("uma", "eve", "end_user", organization_id=ORG, group_id=group)
    page = f"/organizations/{ORG}/groups/{group}"
    uma = portal.sign_in("uma")
    eve = portal.sign_in("eve")
    _assert_accessible(uma, page)
    assert f'action="{page}/profile"' not in _text(eve.get(page))
    refused = _post(eve, f"{page}/profile", {"name": "Mine", "description": ""}, page)
    assert refused.status_code == 403
    assert "UGA-3" in _text(refused)
    saved = _post(uma, f"{page}/profile", {"name": "Billing", "description": "Claims"}, page)
    assert saved.status_code == 302
    assert "Claims" in _text(uma.get(page))


def test_eu_2_end_user_form_refused_while_the_group_has_no_uga(portal: Portal):
    portal.organization("sofia")
    portal.api("uma").file("user_group_administrator", organization_id=ORG, group_name="Billing")
    eve = portal.sign_in("eve")
    form = "/requests/new/end-user"
    refused = _post(eve, form, {"organization_id": ORG, "group_id": "billing"}, form)
    assert refused.status_code == 422
    assert 'role="alert"' in _text(refused)
    assert "EU-2" in _text(refused)


def test_sug_1_registering_a_surrogate_group_through_the_form(portal: Portal):
    portal.organization("sofia")
    carl = portal.sign_in("carl")
    form = "/requests/new/surrogate-group"
    sent = _post(carl, form, {"organization_id": ORG, "name": "Acme Clearinghouse"}, form)
    assert sent.status_code == 302
    request_id = portal.api("carl").get("/requests").json["requests"][0]["id"]
    portal.api("sofia").decide(request_id)
    _assert_accessible(carl, "/surrogate-groups/acme-clearinghouse", "/my")


def test_ind_1_practitioner_form(portal: Portal):
    ada = portal.sign_in("ada")
    form = "/requests/new/practitioner"
    refused = _post(ada, form, {"npi": "1003000142"}, form)
    assert refused.status_code == 422
    assert "IND-1" in _text(refused)
    assert _post(ada, form, {"npi": "1003000126"}, form).status_code == 302


def test_dec_3_reject_with_a_reason_then_a_second_decision_is_refused(portal: Portal):
    portal.organization("sofia")
    filed = portal.api("ben").file("backup_security_official", organization_id=ORG)
    sofia = portal.sign_in("sofia")
    path = f"/approvals/{filed.json['id']}"
    no_reason = _post(sofia, path, {"decision": "reject", "reason": ""}, "/approvals")
    assert no_reason.status_code == 400
    rejected = _post(sofia, path, {"decision": "reject", "reason": "not on staff"}, "/approvals")
    assert rejected.status_code == 302
    again = _post(sofia, path, {"decision": "approve"}, "/approvals")
    assert again.status_code == 409
    detail = portal.sign_in("ben").get(f"/requests/{filed.json['id']}")
    assert "Rejected" in _text(detail) and "not on staff" in _text(detail)


def test_aud_2_the_audit_page_for_the_security_official_only(portal: Portal):
    portal.organization("sofia")
    group = portal.user_group(ORG, "sofia", "uma")
    portal.grant("uma", "eve", "end_user", organization_id=ORG, group_id=group)
    sofia = portal.sign_in("sofia")
    _assert_accessible(sofia, f"/organizations/{ORG}/audit")
    assert "Approved a request" in _text(sofia.get(f"/organizations/{ORG}/audit"))
    refused = portal.sign_in("eve").get(f"/organizations/{ORG}/audit")
    assert refused.status_code == 403
    assert "AUD-2" in _text(refused)


def test_lc_1_resign_from_my_page_and_revoke_from_the_organization_page(portal: Portal):
    portal.organization("sofia")
    portal.grant("sofia", "ben", "backup_security_official", organization_id=ORG)
    group = portal.user_group(ORG, "sofia", "uma")
    portal.grant("uma", "eve", "end_user", organization_id=ORG, group_id=group)
    eve = portal.sign_in("eve")
    resign = {
        "username": "eve",
        "role": "end_user",
        "scope_kind": "user_group",
        "scope_id": group,
        "organization_id": ORG,
        "return_to": "/my",
        "confirmed": "yes",
        "reason": "leaving",
    }
    assert "Resign as End User" in _text(eve.get("/my"))
    assert _post(eve, "/roles/revoke", resign, "/my").status_code == 302
    assert portal.api("eve").memberships() == set()
    sofia = portal.sign_in("sofia")
    page = f"/organizations/{ORG}"
    org_page = _text(sofia.get(page))
    assert "Revoke Ben Test" in org_page
    # Her own row: the last Security Official cannot resign, and is told the way (LC-4).
    assert "Revoke Sofia Test" not in org_page and "ask the EUS help desk" in org_page
    revoke_bso = {
        "username": "ben",
        "role": "backup_security_official",
        "scope_kind": "organization",
        "scope_id": ORG,
        "organization_id": "",
        "return_to": "https://evil.example/",
        "confirmed": "yes",
        "reason": "left the organization",
    }
    done = _post(sofia, "/roles/revoke", revoke_bso, page)
    assert done.status_code == 302
    assert done.headers["Location"] == "/my"  # an outside return_to is ignored
    assert portal.api("ben").memberships() == set()
    refused = _post(portal.sign_in("uma"), "/roles/revoke", {**revoke_bso, "username": "sofia"})
    assert refused.status_code == 403


def test_lc_4_help_desk_console(portal: Portal):
    portal.organization("sofia")
    pending = portal.api("olga").file(
        "register_organization", name="Other", identifier="987654321", provider_type="hospital"
    )
    portal.person("nina")
    helpdesk = portal.sign_in(portal.help_desk())
    console = helpdesk.get("/help-desk", query_string={"q": "lake"})
    assert console.status_code == 200
    body = _text(console)
    assert "Approve Olga Test" in body
    assert "Lakeside General" in body
    assert accessibility_problems(body) == []
    _assert_accessible(helpdesk, "/help-desk/audit")
    approved = _post(
        helpdesk, f"/approvals/{pending.json['id']}", {"decision": "approve"}, "/help-desk"
    )
    assert approved.status_code == 302
    replaced = _post(
        helpdesk,
        "/help-desk/replace-security-official",
        {
            "organization_id": "123456789",
            "successor": "nina",
            "reason": "sofia left",
            "confirmed": "yes",
        },
        "/help-desk",
    )
    assert replaced.status_code == 302
    assert portal.api("nina").memberships() == {("security_official", "organization", ORG)}
    refused = portal.sign_in("sofia").get("/help-desk")
    assert refused.status_code == 403


def test_a_form_post_without_csrf_token_is_refused_and_changes_nothing(portal: Portal):
    portal.organization("sofia")
    filed = portal.api("ben").file("backup_security_official", organization_id=ORG)
    sofia = portal.sign_in("sofia")
    refused = sofia.post(f"/approvals/{filed.json['id']}", data={"decision": "approve"})
    assert refused.status_code == 400
    forged = sofia.post(
        f"/approvals/{filed.json['id']}", data={"decision": "approve", "csrf_token": "x"}
    )
    assert forged.status_code == 400
    other_session_token = csrf_token(portal.sign_in("ben"), "/my")
    replayed = sofia.post(
        f"/approvals/{filed.json['id']}",
        data={"decision": "approve", "csrf_token": other_session_token},
    )
    assert replayed.status_code == 400
    assert portal.api("ben").get(f"/requests/{filed.json['id']}").json["status"] == "pending"


def test_healthz_checks_the_directory(portal: Portal):
    answer = portal.app.test_client().get("/healthz")
    assert answer.status_code == 200
    assert answer.json == {"status": "ok", "directory": "ok"}
