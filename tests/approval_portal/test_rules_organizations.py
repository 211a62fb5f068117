"""ORG, BSO and IND rules through the JSON API, with bearer tokens from the real Keycloak.

Each test names its rule and shows both sides: what the rule refuses (status, rule ID, nothing
changed) and what it allows.
"""

from __future__ import annotations

import pytest

from tests.approval_portal.conftest import Portal

pytestmark = pytest.mark.servers

ORG = "org-123456789"


def _error(answer) -> dict:
    return answer.json["error"]


def test_org_1_security_official_registration_creates_the_organization(portal: Portal):
    sofia = portal.api("sofia")
    filed = sofia.file(
        "register_organization",
        name="Lakeside General",
        identifier="12-3456789",
        provider_type="hospital",
        address="1 Lake Road",
        phone="555-0100",
    )
    assert filed.status_code == 201
    assert filed.headers["Location"] == f"/api/v1/requests/{filed.json['id']}"
    assert filed.json["organization_id"] == ORG
    assert filed.json["status"] == "pending"
    portal.api(portal.help_desk()).decide(filed.json["id"])
    view = sofia.get(f"/organizations/{ORG}")
    assert view.status_code == 200
    assert view.json["name"] == "Lakeside General"
    assert view.json["identifier"] == "123456789"
    assert view.json["status"] == "active"
    assert [h["username"] for h in view.json["security_officials"]] == ["sofia"]


def test_org_1_no_request_can_name_an_unregistered_organization(portal: Portal):
    ben = portal.api("ben")
    for kind, fields in [
        ("backup_security_official", {"organization_id": ORG}),
        ("user_group_administrator", {"organization_id": ORG, "group_name": "Billing"}),
        ("end_user", {"organization_id": ORG, "group_id": "billing"}),
        ("register_surrogate_group", {"organization_id": ORG, "name": "Acme"}),
    ]:
        refused = ben.file(kind, **fields)
        assert refused.status_code == 422, (kind, refused.json)
        assert _error(refused)["rule"] in ("ORG-1", "EU-1"), refused.json
    assert ben.get("/requests").json["requests"] == []


def test_org_2_second_security_official_is_refused(portal: Portal):
    first = portal.api("sofia").file(
        "register_organization", name="Lakeside", identifier="123456789", provider_type="hospital"
    )
    assert first.status_code == 201
    second = portal.api("mallory").file(
        "register_organization",
        name="Lakeside Hospital",
        identifier="12 345 6789",  # the same number written differently
        provider_type="hospital",
    )
    assert second.status_code == 409
    assert _error(second)["rule"] == "ORG-2"
    assert "already registered" in _error(second)["message"]
    assert portal.api("mallory").get("/requests").json["requests"] == []
    # Also once the first is approved: still exactly one Security Official.
    portal.api(portal.help_desk()).decide(first.json["id"])
    third = portal.api("mallory").file(
        "register_organization", name="Other", identifier="123456789", provider_type="hospital"
    )
    assert third.status_code == 409
    assert _error(third)["rule"] == "ORG-2"


def test_org_3_only_the_help_desk_decides_a_security_official_registration(portal: Portal):
    other_org = portal.organization("olga", identifier="987654321", name="Other Org")
    filed = portal.api("sofia").file(
        "register_organization", name="Lakeside", identifier="123456789", provider_type="hospital"
    )
    olga = portal.api("olga")  # the SO of another organization
    refused = olga.decide(filed.json["id"])
    assert refused.status_code == 403
    assert _error(refused)["rule"] == "ORG-3"
    assert filed.json["id"] not in {r["id"] for r in olga.get("/approvals").json["requests"]}
    assert other_org != ORG
    helpdesk = portal.api(portal.help_desk())
    assert filed.json["id"] in {r["id"] for r in helpdesk.get("/approvals").json["requests"]}
    approved = helpdesk.decide(filed.json["id"])
    assert approved.status_code == 200
    assert approved.json["status"] == "approved"


def test_org_4_nothing_is_approved_before_the_security_official(portal: Portal):
    registration = portal.api("sofia").file(
        "register_organization", name="Lakeside", identifier="123456789", provider_type="hospital"
    )
    bso_request = portal.api("ben").file("backup_security_official", organization_id=ORG)
    assert bso_request.status_code == 201  # may be filed: the organization is registered
    helpdesk = portal.api(portal.help_desk())
    refused = helpdesk.decide(bso_request.json["id"])
    assert refused.status_code == 403
    assert _error(refused)["rule"] == "ORG-4"
    assert ("backup_security_official", "organization", ORG) not in portal.api("ben").memberships()
    helpdesk.decide(registration.json["id"])
    allowed = portal.api("sofia").decide(bso_request.json["id"])
    assert allowed.status_code == 200


def test_org_5_only_the_security_official_and_help_desk_update_the_profile(portal: Portal):
    portal.organization("sofia")
    portal.grant("sofia", "ben", "backup_security_official", organization_id=ORG)
    refused = portal.api("ben").patch(f"/organizations/{ORG}", {"name": "Renamed by BSO"})
    assert refused.status_code == 403
    assert _error(refused)["rule"] == "ORG-5"
    assert portal.api("sofia").get(f"/organizations/{ORG}").json["name"] == "Lakeside General"
    updated = portal.api("sofia").patch(f"/organizations/{ORG}", {"phone": "555-0199"})
    assert updated.status_code == 200
    assert updated.json["phone"] == "555-0199"
    by_help_desk = portal.api(portal.help_desk()).patch(
        f"/organizations/{ORG}", {"address": "2 Lake Road"}
    )
    assert by_help_desk.status_code == 200
    view = portal.api("sofia").get(f"/organizations/{ORG}").json
    assert (view["phone"], view["address"]) == ("555-0199", "2 Lake Road")
    assert view["may_edit_profile"] is True
    assert portal.api("ben").get(f"/organizations/{ORG}").json["may_edit_profile"] is False


def test_org_6_organization_is_incomplete_until_two_users_one_with_application_access(
    portal: Portal,
):
    portal.organization("sofia")
    sofia = portal.api("sofia")
    alone = sofia.get(f"/organizations/{ORG}").json["completeness"]
    assert alone["complete"] is False
    assert alone["approved_users"] == 1
    portal.grant("sofia", "ben", "backup_security_official", organization_id=ORG)
    officials_only = sofia.get(f"/organizations/{ORG}").json["completeness"]
    assert officials_only["complete"] is False  # SO and BSO hold no application access
    assert officials_only["approved_users"] == 2
    assert officials_only["users_with_application_access"] == 0
    portal.user_group(ORG, "sofia", "uma")
    complete = sofia.get(f"/organizations/{ORG}").json["completeness"]
    assert complete == {
        "complete": True,
        "approved_users": 3,
        "users_with_application_access": 1,
        "missing": [],
    }


SEED_PROVIDER_TYPES = (
    "hospital",
    "home_health_agency",
    "skilled_nursing_facility",
    "independent_diagnostic_testing_facility",
    "ambulance_company",
    "ambulatory_surgical_center",
    "physician_group_practice",
    "individual_practitioner_with_staff",
)


def test_org_7_every_organization_type_of_the_seed_may_register(portal: Portal):
    sofia = portal.api("sofia")
    for number, provider_type in enumerate(SEED_PROVIDER_TYPES):
        filed = sofia.file(
            "register_organization",
            name=f"Provider {number}",
            identifier=f"10000000{number}",
            provider_type=provider_type,
        )
        assert filed.status_code == 201, (provider_type, filed.json)
        assert filed.json["details"]["provider_type"] == provider_type


def test_org_7_dmepos_suppliers_are_refused_with_the_reason(portal: Portal):
    refused = portal.api("dave").file(
        "register_organization", name="DME Depot", identifier="555666777", provider_type="dmepos"
    )
    assert refused.status_code == 422
    assert _error(refused)["rule"] == "ORG-7"
    assert "DMEPOS" in _error(refused)["message"]
    assert "at this time" in _error(refused)["message"]
    assert portal.api("dave").get("/requests").json["requests"] == []
    unknown = portal.api("dave").file(
        "register_organization", name="X", identifier="555666777", provider_type="spaceport"
    )
    assert unknown.status_code == 400


def test_bso_1_an_organization_has_zero_or_more_backup_security_officials(portal: Portal):
    portal.organization("sofia")
    assert portal.api("sofia").get(f"/organizations/{ORG}").json["backup_security_officials"] == []
    for name in ("ben", "bea"):
        portal.grant("sofia", name, "backup_security_official", organization_id=ORG)
    view = portal.api("sofia").get(f"/organizations/{ORG}").json
    assert [h["username"] for h in view["backup_security_officials"]] == ["bea", "ben"]


def test_bso_2_only_the_security_official_approves_a_bso(portal: Portal):
    portal.organization("sofia")
    portal.grant("sofia", "ben", "backup_security_official", organization_id=ORG)
    second = portal.api("bea").file("backup_security_official", organization_id=ORG)
    by_bso = portal.api("ben").decide(second.json["id"])
    assert by_bso.status_code == 403
    assert _error(by_bso)["rule"] == "BSO-2"
    assert second.json["id"] not in {
        r["id"] for r in portal.api("ben").get("/approvals").json["requests"]
    }
    by_help_desk = portal.api(portal.help_desk()).decide(second.json["id"])
    assert by_help_desk.status_code == 403
    by_so = portal.api("sofia").decide(second.json["id"])
    assert by_so.status_code == 200
    assert ("backup_security_official", "organization", ORG) in portal.api("bea").memberships()


def test_bso_3_a_bso_approves_group_administrators_and_end_users(portal: Portal):
    portal.organization("sofia")
    portal.grant("sofia", "ben", "backup_security_official", organization_id=ORG)
    group = portal.user_group(ORG, "ben", "uma")  # the BSO approves the UGA
    portal.grant("ben", "eve", "end_user", organization_id=ORG, group_id=group)
    assert ("end_user", "user_group", group) in portal.api("eve").memberships()
    # ...and administers groups: profile and revocation of the UGA.
    updated = portal.api("ben").patch(
        f"/organizations/{ORG}/groups/{group}", {"description": "Claims and billing"}
    )
    assert updated.status_code == 200
    # ...but not the organization profile (ORG-5), nor other BSOs (BSO-2, LC-1).
    assert portal.api("ben").patch(f"/organizations/{ORG}", {"name": "X"}).status_code == 403


def test_ind_1_practitioner_enrolled_after_november_2003_registers_alone(portal: Portal):
    ada = portal.api("ada")
    filed = ada.file("individual_practitioner", npi="1003000126")  # enrolled 2005
    assert filed.status_code == 201
    assert filed.json["organization_id"] is None
    portal.organization("sofia")
    refused_by_stranger = portal.api("sofia").decide(filed.json["id"])  # an SO, not the help desk
    assert refused_by_stranger.status_code == 403
    assert _error(refused_by_stranger)["rule"] == "IND-1"
    approved = portal.api(portal.help_desk()).decide(filed.json["id"])
    assert approved.status_code == 200
    assert ("individual_practitioner", "practitioner", "1003000126") in ada.memberships()


def test_ind_1_practitioner_not_enrolled_after_november_2003_is_refused(portal: Portal):
    charles = portal.api("charles")
    old = charles.file("individual_practitioner", npi="1003000142")  # enrolled 2001
    assert old.status_code == 422
    assert _error(old)["rule"] == "IND-1"
    unknown = charles.file("individual_practitioner", npi="1999999999")
    assert unknown.status_code == 422
    assert _error(unknown)["rule"] == "IND-1"
    malformed = charles.file("individual_practitioner", npi="12345")
    assert malformed.status_code == 400
    assert charles.get("/requests").json["requests"] == []
