"""DEC, AUD and LC rules through the JSON API, with bearer tokens from the real Keycloak."""

from __future__ import annotations

import pytest

from tests.approval_portal.conftest import Portal

pytestmark = pytest.mark.servers

ORG = "org-123456789"
OTHER = "org-987654321"


def _error(answer) -> dict:
    return answer.json["error"]


# ------------------------------------------------------------------ every decision


def test_dec_1_nobody_decides_their_own_request(portal: Portal):
    helpdesk = portal.help_desk("helpdesk")
    own = portal.api(helpdesk).file(
        "register_organization", name="Lakeside", identifier="123456789", provider_type="hospital"
    )
    refused = portal.api(helpdesk).decide(own.json["id"])
    assert refused.status_code == 403
    assert _error(refused)["rule"] == "DEC-1"
    assert own.json["id"] not in {
        r["id"] for r in portal.api(helpdesk).get("/approvals").json["requests"]
    }
    colleague = portal.help_desk("helpdesk2")
    assert portal.api(colleague).decide(own.json["id"]).status_code == 200


def test_dec_2_authority_is_checked_against_the_directory_at_decision_time(portal: Portal):
    portal.organization("sofia")
    portal.organization("olga", identifier="987654321", name="Other")
    portal.grant("sofia", "ben", "backup_security_official", organization_id=ORG)
    first = portal.api("uma").file("user_group_administrator", organization_id=ORG, group_name="A")
    outside = portal.api("olga").decide(first.json["id"])  # an approver outside the organization
    assert outside.status_code == 403
    # Revoke the BSO; the token Ben holds is still valid, but his authority is gone.
    revoked = portal.api("sofia").post(
        "/revocations",
        {
            "username": "ben",
            "role": "backup_security_official",
            "scope_kind": "organization",
            "scope_id": ORG,
        },
    )
    assert revoked.status_code == 204
    after_revocation = portal.api("ben").decide(first.json["id"])
    assert after_revocation.status_code == 403
    assert portal.api("uma").get(f"/requests/{first.json['id']}").json["status"] == "pending"
    assert portal.api("sofia").decide(first.json["id"]).status_code == 200


def test_dec_3_a_request_is_decided_once_with_decider_time_and_reason(portal: Portal):
    portal.organization("sofia")
    filed = portal.api("ben").file("backup_security_official", organization_id=ORG)
    no_reason = portal.api("sofia").decide(filed.json["id"], "reject")
    assert no_reason.status_code == 400  # a rejection needs a reason
    rejected = portal.api("sofia").decide(filed.json["id"], "reject", "not on staff")
    assert rejected.status_code == 200
    assert rejected.json["status"] == "rejected"
    assert rejected.json["decided_by"] == "sofia"
    assert rejected.json["decided_at"]
    assert rejected.json["reason"] == "not on staff"
    again = portal.api("sofia").decide(filed.json["id"], "approve")
    assert again.status_code == 409
    assert _error(again)["rule"] == "DEC-3"
    assert _error(again)["code"] == "already_decided"
    assert portal.api("ben").get(f"/requests/{filed.json['id']}").json["status"] == "rejected"
    assert portal.api("ben").memberships() == set()


def test_dec_3_a_doubled_submission_is_refused(portal: Portal):
    portal.organization("sofia")
    first = portal.api("ben").file("backup_security_official", organization_id=ORG)
    assert first.status_code == 201
    doubled = portal.api("ben").file("backup_security_official", organization_id=ORG)
    assert doubled.status_code == 409
    assert _error(doubled)["rule"] == "DEC-3"
    assert len(portal.api("ben").get("/requests").json["requests"]) == 1


def test_dec_4_a_role_is_written_only_by_an_approved_request(portal: Portal):
    portal.organization("sofia")
    ben = portal.api("ben")
    filed = ben.file("backup_security_official", organization_id=ORG)
    assert ben.memberships() == set()
    portal.api("sofia").decide(filed.json["id"])
    assert ben.memberships() == {("backup_security_official", "organization", ORG)}
    already = ben.file("backup_security_official", organization_id=ORG)
    assert already.status_code == 422
    assert _error(already)["rule"] == "DEC-4"
    # No API call writes a membership directly.
    for method, path in [("put", "/memberships"), ("post", "/memberships")]:
        assert getattr(portal.api("sofia"), method)(path, {}).status_code in (404, 405)


# ------------------------------------------------------------------ accountability


def test_aud_1_requests_decisions_revocations_and_profile_changes_are_recorded(portal: Portal):
    portal.organization("sofia")
    filed = portal.api("ben").file("backup_security_official", organization_id=ORG)
    portal.api("sofia").decide(filed.json["id"])
    portal.api("ben").patch(f"/organizations/{ORG}", {"name": "refused"})  # denied: recorded
    portal.api("sofia").patch(f"/organizations/{ORG}", {"phone": "555-0100"})
    portal.api("sofia").post(
        "/revocations",
        {
            "username": "ben",
            "role": "backup_security_official",
            "scope_kind": "organization",
            "scope_id": ORG,
            "reason": "left",
        },
    )
    records = portal.api(portal.help_desk()).get("/audit").json["records"]
    seen = {(r["actor"], r["action"], r["outcome"]) for r in records}
    assert ("sofia", "request:register_organization", "ok") in seen
    assert ("helpdesk", "decide:approved", "ok") in seen
    assert ("ben", "request:backup_security_official", "ok") in seen
    assert ("sofia", "decide:approved", "ok") in seen
    assert ("ben", "update_profile", "denied") in seen
    assert ("sofia", "update_profile", "ok") in seen
    assert ("sofia", "revoke", "ok") in seen
    for record in records:
        assert record["at"] and record["actor"] and record["action"] and record["outcome"]
    revocation = next(r for r in records if r["action"] == "revoke")
    assert (revocation["subject"], revocation["organization_id"]) == ("ben", ORG)
    # The record is append-only: no API route changes or removes it.
    helpdesk = portal.api("helpdesk")
    assert helpdesk.delete("/audit").status_code == 405
    assert helpdesk.patch("/audit", {}).status_code == 405


def test_aud_2_the_security_official_reads_the_organizations_record(portal: Portal):
    portal.organization("sofia")
    portal.organization("olga", identifier="987654321", name="Other")
    group = portal.user_group(ORG, "sofia", "uma")
    portal.grant("uma", "eve", "end_user", organization_id=ORG, group_id=group)
    own = portal.api("sofia").get(f"/organizations/{ORG}/audit")
    assert own.status_code == 200
    assert own.json["records"]
    assert {r["organization_id"] for r in own.json["records"]} == {ORG}
    for reader, org in [("eve", ORG), ("uma", ORG), ("sofia", OTHER)]:
        refused = portal.api(reader).get(f"/organizations/{org}/audit")
        assert refused.status_code == 403, reader
        assert _error(refused)["rule"] == "AUD-2"
    whole = portal.api("sofia").get("/audit")
    assert whole.status_code == 403
    everything = portal.api(portal.help_desk()).get("/audit")
    assert everything.status_code == 200
    assert {ORG, OTHER} <= {r["organization_id"] for r in everything.json["records"]}


# ------------------------------------------------------------------ lifecycle


REVOKE_BSO = {"role": "backup_security_official", "scope_kind": "organization", "scope_id": ORG}


def test_lc_1_who_may_revoke_whose_role(portal: Portal):
    portal.organization("sofia")
    portal.grant("sofia", "ben", "backup_security_official", organization_id=ORG)
    portal.grant("sofia", "bea", "backup_security_official", organization_id=ORG)
    billing = portal.user_group(ORG, "sofia", "uma", name="Billing")
    records = portal.user_group(ORG, "sofia", "vic", name="Records")
    portal.grant("uma", "eve", "end_user", organization_id=ORG, group_id=billing)
    portal.grant("uma", "ed", "end_user", organization_id=ORG, group_id=billing)
    end_user = {
        "role": "end_user",
        "scope_kind": "user_group",
        "scope_id": billing,
        "organization_id": ORG,
    }
    # Deny: a BSO does not revoke another BSO; a UGA of another group does not revoke.
    refused = portal.api("ben").post("/revocations", {"username": "bea", **REVOKE_BSO})
    assert refused.status_code == 403
    assert _error(refused)["rule"] == "LC-1"
    refused = portal.api("vic").post("/revocations", {"username": "eve", **end_user})
    assert refused.status_code == 403
    assert _error(refused)["rule"] == "LC-1"
    # Nobody but the help desk removes the Security Official (LC-4).
    so = {
        "username": "sofia",
        "role": "security_official",
        "scope_kind": "organization",
        "scope_id": ORG,
    }
    assert portal.api("ben").post("/revocations", so).status_code == 403
    # Allow: the UGA revokes an End User of the group, the SO a BSO, anyone resigns.
    assert (
        portal.api("uma").post("/revocations", {"username": "eve", **end_user}).status_code == 204
    )
    assert portal.api("eve").memberships() == set()
    assert (
        portal.api("sofia").post("/revocations", {"username": "bea", **REVOKE_BSO}).status_code
        == 204
    )
    assert portal.api("ed").post("/revocations", {"username": "ed", **end_user}).status_code == 204
    assert portal.api("ed").memberships() == set()
    # The BSO still administers the organization's groups: revokes the UGA of Records.
    uga = {
        "username": "vic",
        "role": "user_group_administrator",
        "scope_kind": "user_group",
        "scope_id": records,
        "organization_id": ORG,
    }
    assert portal.api("ben").post("/revocations", uga).status_code == 204
    # Revoking what is not held is a clear 404.
    assert (
        portal.api("sofia").post("/revocations", {"username": "bea", **REVOKE_BSO}).status_code
        == 404
    )
    ended = [r for r in portal.api("ed").get("/requests").json["requests"] if r["ended_at"]]
    assert [r["end_reason"] for r in ended] == ["resigned"]


def test_lc_2_a_pending_request_expires(portal: Portal):
    portal.organization("sofia")
    filed = portal.api("ben").file("backup_security_official", organization_id=ORG)
    portal.clock.advance(days=31)
    late = portal.api("sofia").decide(filed.json["id"])
    assert late.status_code == 403
    assert _error(late)["rule"] == "LC-2"
    assert portal.service.expire_pending() == 1
    assert portal.api("ben").get(f"/requests/{filed.json['id']}").json["status"] == "expired"
    assert portal.api("sofia").get("/approvals").json["requests"] == []


def test_lc_3_roles_are_recertified_by_someone_who_could_approve_them(portal: Portal):
    portal.organization("sofia")
    bso = portal.grant("sofia", "ben", "backup_security_official", organization_id=ORG)
    group = portal.user_group(ORG, "sofia", "uma")
    eve = portal.grant("uma", "eve", "end_user", organization_id=ORG, group_id=group)
    own = portal.api("ben").post(f"/requests/{bso['id']}/recertification")
    assert own.status_code == 403
    assert _error(own)["rule"] == "DEC-1"
    by_bso = portal.api("eve").post(f"/requests/{bso['id']}/recertification")
    assert by_bso.status_code in (403, 404)
    portal.clock.advance(days=300)
    recertified = portal.api("sofia").post(f"/requests/{bso['id']}/recertification")
    assert recertified.status_code == 200
    assert recertified.json["recertified_at"]
    portal.clock.advance(days=100)  # Eve's role is 400 days old and was never recertified
    assert portal.service.lapse_unrecertified() >= 1
    assert portal.api("eve").memberships() == set()
    assert ("backup_security_official", "organization", ORG) in portal.api("ben").memberships()
    lapsed = portal.api("eve").get(f"/requests/{eve['id']}").json
    assert lapsed["end_reason"] == "lapsed"


def test_lc_4_the_help_desk_replaces_a_departed_security_official(portal: Portal):
    portal.organization("sofia")
    portal.grant("sofia", "ben", "backup_security_official", organization_id=ORG)
    portal.person("nina")
    path = f"/organizations/{ORG}/security-official"
    refused = portal.api("ben").put(path, {"successor": "nina"})
    assert refused.status_code == 403
    assert _error(refused)["rule"] == "LC-4"
    unknown = portal.api(portal.help_desk()).put(path, {"successor": "nobody-here"})
    assert unknown.status_code == 404
    replaced = portal.api("helpdesk").put(path, {"successor": "nina"})
    assert replaced.status_code == 200
    assert replaced.json["requester"] == "nina"
    assert replaced.json["decided_by"] == "helpdesk"
    view = portal.api("nina").get(f"/organizations/{ORG}").json
    assert [h["username"] for h in view["security_officials"]] == ["nina"]
    assert portal.api("sofia").memberships() == set()
