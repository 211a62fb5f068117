"""Malformed, hostile and out-of-scope input gets a clear 4xx and changes nothing."""

from __future__ import annotations

import pytest

from tests.approval_portal.conftest import Portal

pytestmark = pytest.mark.servers

ORG = "org-123456789"
OTHER = "org-987654321"


def _audit_count(portal: Portal) -> int:
    return len(portal.api(portal.help_desk()).get("/audit").json["records"])


def test_markup_and_control_characters_in_names_are_refused(portal: Portal):
    sofia = portal.api("sofia")
    for name in ("<script>alert(1)</script>", 'Lake"side', "Lake`side", "Lake\x00side", "a\nb"):
        refused = sofia.file(
            "register_organization", name=name, identifier="123456789", provider_type="hospital"
        )
        assert refused.status_code == 400, name
        assert refused.json["error"]["code"] == "invalid_input"
        assert refused.json["error"]["message"].startswith("name:")
    assert sofia.get("/requests").json["requests"] == []


def test_ldap_and_dn_metacharacters_are_stored_verbatim_never_interpreted(portal: Portal):
    hostile = r"Acme, Inc. (East) *=+;\ #1"
    portal.organization("sofia", name=hostile)
    view = portal.api("sofia").get(f"/organizations/{ORG}").json
    assert view["name"] == hostile
    group = portal.api("uma").file(
        "user_group_administrator", organization_id=ORG, group_name="a,ou=evil+cn=x*)(uid=*"
    )
    assert group.status_code == 201
    assert group.json["group_id"] == "a-ou-evil-cn-x-uid"  # a safe id, never a DN fragment
    for group_id in ("x,ou=evil", "*", "a)(uid=*", "A-UPPER", "-dash", "x" * 70):
        refused = portal.api("eve").file("end_user", organization_id=ORG, group_id=group_id)
        assert refused.status_code == 400, group_id
    helpdesk = portal.api("helpdesk")
    everything = helpdesk.get("/search", query_string={"q": "*"})
    assert everything.status_code == 200
    assert everything.json["people"] == []  # '*' is a literal, not a wildcard
    injected = helpdesk.get("/search", query_string={"q": "*)(uid=*"})
    assert injected.status_code == 200
    assert injected.json == {"query": "*)(uid=*", "people": [], "organizations": []}
    literal = helpdesk.get("/search", query_string={"q": "(East) *"})
    assert [o["id"] for o in literal.json["organizations"]] == [ORG]


MALFORMED_PATHS = (
    "/organizations/org-1*",
    "/organizations/org-1%2Cou%3Devil",
    "/organizations/ORG-123456789",
    "/organizations/org-123456789/groups/a%2Cb",
    "/surrogate-groups/%2A",
    "/requests/not-a-request-id",
    "/requests/" + "A" * 32,
)


def test_malformed_ids_in_urls_are_refused(portal: Portal):
    sofia = portal.api("sofia")
    for path in MALFORMED_PATHS:
        answer = sofia.get(path)
        assert answer.status_code == 400, (path, answer.json)
        assert answer.json["error"]["code"] == "invalid_input"


def test_unknown_ids_are_not_found(portal: Portal):
    portal.organization("sofia")
    sofia = portal.api("sofia")
    for path in (
        "/organizations/org-999999999",
        f"/organizations/{ORG}/groups/no-such-group",
        "/surrogate-groups/no-such-sug",
        "/requests/" + "0" * 32,
    ):
        answer = sofia.get(path)
        assert answer.status_code == 404, path
        assert answer.json["error"]["code"] == "not_found"
    assert sofia.decide("0" * 32).status_code == 404


def test_another_organizations_ids_are_refused(portal: Portal):
    portal.organization("sofia")
    portal.organization("olga", identifier="987654321", name="Other")
    other_request = portal.api("ben").file("backup_security_official", organization_id=OTHER)
    before = _audit_count(portal)
    sofia = portal.api("sofia")
    assert sofia.get(f"/organizations/{OTHER}").status_code == 404
    assert sofia.get(f"/organizations/{OTHER}/audit").status_code == 403
    assert sofia.patch(f"/organizations/{OTHER}", {"name": "Mine now"}).status_code == 403
    assert sofia.get(f"/requests/{other_request.json['id']}").status_code == 404
    assert sofia.decide(other_request.json["id"]).status_code == 403
    revoke = {"username": "olga", "role": "security_official", "scope_kind": "organization"}
    assert sofia.post("/revocations", {**revoke, "scope_id": OTHER}).status_code == 403
    assert portal.api("olga").get(f"/organizations/{OTHER}").json["name"] == "Other"
    assert (
        portal.api("ben").get(f"/requests/{other_request.json['id']}").json["status"] == "pending"
    )
    # Every refusal is on the record (AUD-1), nothing else changed.
    assert _audit_count(portal) > before


MALFORMED_BODIES = (
    {"kind": "teleport"},
    {},
    {"kind": "end_user", "organization_id": ORG, "group_id": "billing", "admin": "true"},
    {"kind": "end_user", "organization_id": ["org-123456789"], "group_id": "billing"},
    {"kind": "end_user", "organization_id": {"$ne": ""}, "group_id": "billing"},
    {"kind": "register_organization", "name": 7, "identifier": "123456789"},
    {"kind": "individual_practitioner", "npi": "1003000126x"},
    {
        "kind": "register_organization",
        "name": "x" * 500,
        "identifier": "123456789",
        "provider_type": "hospital",
    },
)


def test_malformed_request_bodies_are_refused(portal: Portal):
    eve = portal.api("eve")
    for body in MALFORMED_BODIES:
        answer = eve.post("/requests", body)
        assert answer.status_code == 400, (body, answer.json)
        assert set(answer.json["error"]) >= {"code", "message"}
    assert eve.get("/requests").json["requests"] == []


def test_malformed_decisions_and_revocations_are_refused(portal: Portal):
    portal.organization("sofia")
    filed = portal.api("ben").file("backup_security_official", organization_id=ORG)
    sofia = portal.api("sofia")
    path = f"/requests/{filed.json['id']}/decision"
    for body in (
        {},
        {"decision": "maybe"},
        {"decision": True},
        {"decision": "approve", "extra": "x"},
        {"decision": "reject", "reason": "<b>no</b>"},
        {"decision": "reject", "reason": "x" * 600},
    ):
        assert sofia.post(path, body).status_code == 400, body
    assert portal.api("ben").get(f"/requests/{filed.json['id']}").json["status"] == "pending"
    for body in (
        {"username": "ben", "role": "emperor", "scope_kind": "organization", "scope_id": ORG},
        {"username": "ben", "role": "end_user", "scope_kind": "galaxy", "scope_id": ORG},
        {"username": "ben", "role": "end_user", "scope_kind": "user_group", "scope_id": "g"},
        {"username": "*", "role": "end_user", "scope_kind": "organization", "scope_id": ORG},
        {"username": "ben", "role": "end_user", "scope_kind": "organization", "scope_id": "a,b"},
    ):
        assert sofia.post("/revocations", body).status_code == 400, body


def test_a_decided_request_decided_again_changes_nothing(portal: Portal):
    portal.organization("sofia")
    filed = portal.api("ben").file("backup_security_official", organization_id=ORG)
    assert portal.api("sofia").decide(filed.json["id"]).status_code == 200
    for decision, reason in (("approve", ""), ("reject", "changed my mind")):
        again = portal.api("sofia").decide(filed.json["id"], decision, reason)
        assert again.status_code == 409
        assert again.json["error"]["rule"] == "DEC-3"
    final = portal.api("ben").get(f"/requests/{filed.json['id']}").json
    assert (final["status"], final["reason"]) == ("approved", None)
    assert ("backup_security_official", "organization", ORG) in portal.api("ben").memberships()
