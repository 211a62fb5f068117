"""UGA, EU and SUG rules through the JSON API, with bearer tokens from the real Keycloak."""

from __future__ import annotations

import pytest

from tests.approval_portal.conftest import Portal

pytestmark = pytest.mark.servers

ORG = "org-123456789"
OTHER = "org-987654321"


def _error(answer) -> dict:
    return answer.json["error"]


def _ids(answer) -> set[str]:
    return {r["id"] for r in answer.json["requests"]}


# ------------------------------------------------------------------ user groups


def test_uga_1_register_a_new_group_or_join_an_existing_one(portal: Portal):
    portal.organization("sofia")
    new_group = portal.api("uma").file(
        "user_group_administrator",
        organization_id=ORG,
        group_name="Billing Office",
        description="Claims",
    )
    assert new_group.status_code == 201
    assert new_group.json["group_id"] == "billing-office"
    assert new_group.json["details"]["new_group"] == "true"
    taken = portal.api("ursula").file(
        "user_group_administrator", organization_id=ORG, group_name="billing office"
    )
    assert taken.status_code in (409, 422)
    assert _error(taken)["rule"] == "UGA-1"
    assert "join" in _error(taken)["message"]
    portal.api("sofia").decide(new_group.json["id"])
    joined = portal.api("ursula").file(
        "user_group_administrator", organization_id=ORG, group_id="billing-office"
    )
    assert joined.status_code == 201
    portal.api("sofia").decide(joined.json["id"])
    view = portal.api("sofia").get(f"/organizations/{ORG}/groups/billing-office").json
    assert [h["username"] for h in view["administrators"]] == ["uma", "ursula"]
    unknown = portal.api("ursula").file(
        "user_group_administrator", organization_id=ORG, group_id="no-such-group"
    )
    assert unknown.status_code == 422
    assert _error(unknown)["rule"] == "UGA-1"


def test_uga_2_a_uga_is_approved_by_the_so_or_a_bso_only(portal: Portal):
    portal.organization("sofia")
    portal.organization("olga", identifier="987654321", name="Other")
    portal.grant("sofia", "ben", "backup_security_official", organization_id=ORG)
    group = portal.user_group(ORG, "sofia", "uma")
    filed = portal.api("ursula").file(
        "user_group_administrator", organization_id=ORG, group_id=group
    )
    for stranger in ("olga", "uma", portal.help_desk()):  # other SO, a UGA, the help desk
        refused = portal.api(stranger).decide(filed.json["id"])
        assert refused.status_code == 403, stranger
        assert _error(refused)["rule"] == "UGA-2"
    assert filed.json["id"] in _ids(portal.api("ben").get("/approvals"))
    assert portal.api("ben").decide(filed.json["id"]).status_code == 200


def test_uga_3_only_the_group_administrators_and_officials_update_the_group_profile(
    portal: Portal,
):
    portal.organization("sofia")
    billing = portal.user_group(ORG, "sofia", "uma", name="Billing")
    portal.user_group(ORG, "sofia", "vic", name="Records")
    portal.grant("uma", "eve", "end_user", organization_id=ORG, group_id=billing)
    path = f"/organizations/{ORG}/groups/{billing}"
    for outsider in ("eve", "vic"):  # an End User of it, a UGA of another group
        refused = portal.api(outsider).patch(path, {"description": "hijacked"})
        assert refused.status_code == 403, outsider
        assert _error(refused)["rule"] == "UGA-3"
    assert portal.api("uma").patch(path, {"description": "Claims"}).status_code == 200
    assert portal.api("sofia").patch(path, {"name": "Billing and Claims"}).status_code == 200
    helpdesk = portal.help_desk()
    assert portal.api(helpdesk).patch(path, {"description": "By EUS"}).status_code == 200
    view = portal.api("uma").get(path).json
    assert (view["name"], view["description"]) == ("Billing and Claims", "By EUS")


def test_uga_4_a_new_group_becomes_usable_when_its_first_uga_is_approved(portal: Portal):
    portal.organization("sofia")
    filed = portal.api("uma").file(
        "user_group_administrator", organization_id=ORG, group_name="Billing"
    )
    path = f"/organizations/{ORG}/groups/billing"
    assert portal.api("sofia").get(path).json["status"] == "pending"
    too_early = portal.api("eve").file("end_user", organization_id=ORG, group_id="billing")
    assert too_early.status_code == 422
    assert _error(too_early)["rule"] == "EU-2"
    portal.api("sofia").decide(filed.json["id"])
    assert portal.api("sofia").get(path).json["status"] == "active"
    assert (
        portal.api("eve").file("end_user", organization_id=ORG, group_id="billing").status_code
        == 201
    )


def test_uga_4_a_rejected_group_is_discarded(portal: Portal):
    portal.organization("sofia")
    filed = portal.api("uma").file(
        "user_group_administrator", organization_id=ORG, group_name="Billing"
    )
    rejected = portal.api("sofia").decide(filed.json["id"], "reject", "not needed")
    assert rejected.status_code == 200
    assert portal.api("sofia").get(f"/organizations/{ORG}/groups/billing").status_code == 404


# ------------------------------------------------------------------ End Users


def test_eu_1_an_end_user_is_approved_by_a_uga_of_that_group_or_the_officials(portal: Portal):
    portal.organization("sofia")
    billing = portal.user_group(ORG, "sofia", "uma", name="Billing")
    portal.user_group(ORG, "sofia", "vic", name="Records")
    first = portal.api("eve").file("end_user", organization_id=ORG, group_id=billing)
    refused = portal.api("vic").decide(first.json["id"])  # UGA of another group
    assert refused.status_code == 403
    assert _error(refused)["rule"] == "EU-1"
    assert first.json["id"] not in _ids(portal.api("vic").get("/approvals"))
    assert first.json["id"] in _ids(portal.api("uma").get("/approvals"))
    assert portal.api("uma").decide(first.json["id"]).status_code == 200
    second = portal.api("ed").file("end_user", organization_id=ORG, group_id=billing)
    assert portal.api("sofia").decide(second.json["id"]).status_code == 200  # the SO may too
    view = portal.api("uma").get(f"/organizations/{ORG}/groups/{billing}").json
    assert [h["username"] for h in view["end_users"]] == ["ed", "eve"]


def test_eu_2_no_end_user_registers_in_a_group_without_an_approved_uga(portal: Portal):
    portal.organization("sofia")
    portal.api("uma").file("user_group_administrator", organization_id=ORG, group_name="Billing")
    refused = portal.api("eve").file("end_user", organization_id=ORG, group_id="billing")
    assert refused.status_code == 422
    assert _error(refused)["rule"] == "EU-2"
    assert "User Group Administrator" in _error(refused)["message"]
    assert portal.api("eve").get("/requests").json["requests"] == []


def test_eu_3_a_person_is_an_end_user_of_many_groups_each_approved_on_its_own(portal: Portal):
    portal.organization("sofia")
    portal.organization("olga", identifier="987654321", name="Other")
    billing = portal.user_group(ORG, "sofia", "uma", name="Billing")
    records = portal.user_group(ORG, "sofia", "vic", name="Records")
    elsewhere = portal.user_group(OTHER, "olga", "otto", name="Front Desk")
    sug = portal.surrogate_group(ORG, "sofia", "carl", "Acme Clearinghouse")
    eve = portal.api("eve")
    pending = [
        eve.file("end_user", organization_id=ORG, group_id=billing),
        eve.file("end_user", organization_id=ORG, group_id=records),
        eve.file("end_user", organization_id=OTHER, group_id=elsewhere),
        eve.file("surrogate_end_user", surrogate_group_id=sug),
    ]
    assert [p.status_code for p in pending] == [201, 201, 201, 201]
    portal.api("uma").decide(pending[0].json["id"])
    assert eve.memberships() == {("end_user", "user_group", billing)}
    portal.api("vic").decide(pending[1].json["id"])
    portal.api("otto").decide(pending[2].json["id"])
    portal.api("carl").decide(pending[3].json["id"])
    assert eve.memberships() == {
        ("end_user", "user_group", billing),
        ("end_user", "user_group", records),
        ("end_user", "user_group", elsewhere),
        ("end_user", "surrogate_group", sug),
    }


# ------------------------------------------------------------------ Surrogate User Groups


def test_sug_1_the_first_registrant_of_a_surrogate_group_is_its_uga(portal: Portal):
    portal.organization("sofia")
    filed = portal.api("carl").file(
        "register_surrogate_group", organization_id=ORG, name="Acme Clearinghouse"
    )
    assert filed.status_code == 201
    sug = filed.json["surrogate_group_id"]
    assert sug == "acme-clearinghouse"
    early_end_user = portal.api("sam").file("surrogate_end_user", surrogate_group_id=sug)
    assert early_end_user.status_code == 422  # nobody joins before its UGA is approved
    taken = portal.api("cora").file(
        "register_surrogate_group", organization_id=ORG, name="ACME clearinghouse"
    )
    assert taken.status_code in (409, 422)
    assert _error(taken)["rule"] == "SUG-1"
    portal.api("sofia").decide(filed.json["id"])
    assert ("user_group_administrator", "surrogate_group", sug) in portal.api("carl").memberships()
    view = portal.api("carl").get(f"/surrogate-groups/{sug}").json
    assert view["status"] == "active"
    assert view["associated_organizations"] == [ORG]


def test_sug_2_the_surrogate_uga_is_approved_by_the_providers_officials(portal: Portal):
    portal.organization("sofia")
    portal.organization("olga", identifier="987654321", name="Other")
    portal.grant("sofia", "ben", "backup_security_official", organization_id=ORG)
    filed = portal.api("carl").file("register_surrogate_group", organization_id=ORG, name="Acme")
    refused = portal.api("olga").decide(filed.json["id"])  # SO of another provider
    assert refused.status_code == 403
    assert _error(refused)["rule"] == "SUG-2"
    assert portal.api("ben").decide(filed.json["id"]).status_code == 200


def test_sug_3_an_approved_surrogate_uga_associates_with_further_providers(portal: Portal):
    portal.organization("sofia")
    portal.organization("olga", identifier="987654321", name="Other")
    sug = portal.surrogate_group(ORG, "sofia", "carl", "Acme")
    not_a_uga = portal.api("sam").file(
        "surrogate_association", surrogate_group_id=sug, organization_id=OTHER
    )
    assert not_a_uga.status_code == 422
    assert _error(not_a_uga)["rule"] == "SUG-3"
    filed = portal.api("carl").file(
        "surrogate_association", surrogate_group_id=sug, organization_id=OTHER
    )
    assert filed.status_code == 201
    wrong_provider = portal.api("sofia").decide(filed.json["id"])
    assert wrong_provider.status_code == 403
    assert _error(wrong_provider)["rule"] == "SUG-3"
    assert portal.api("olga").decide(filed.json["id"]).status_code == 200
    view = portal.api("carl").get(f"/surrogate-groups/{sug}").json
    assert view["associated_organizations"] == sorted([ORG, OTHER])
    again = portal.api("carl").file(
        "surrogate_association", surrogate_group_id=sug, organization_id=OTHER
    )
    assert again.status_code == 422
    assert _error(again)["rule"] == "SUG-3"
    # Either side ends the association.
    assert (
        portal.api("olga").delete(f"/surrogate-groups/{sug}/organizations/{OTHER}").status_code
        == 204
    )
    assert portal.api("carl").get(f"/surrogate-groups/{sug}").json["associated_organizations"] == [
        ORG
    ]


def test_sug_4_further_surrogate_ugas_are_approved_by_a_served_providers_officials(
    portal: Portal,
):
    portal.organization("sofia")
    portal.organization("olga", identifier="987654321", name="Other")
    sug = portal.surrogate_group(ORG, "sofia", "carl", "Acme")
    filed = portal.api("cora").file("surrogate_administrator", surrogate_group_id=sug)
    assert filed.status_code == 201
    refused = portal.api("olga").decide(filed.json["id"])  # Acme does not work for Other
    assert refused.status_code == 403
    assert _error(refused)["rule"] == "SUG-4"
    assert portal.api("sofia").decide(filed.json["id"]).status_code == 200
    view = portal.api("carl").get(f"/surrogate-groups/{sug}").json
    assert [h["username"] for h in view["administrators"]] == ["carl", "cora"]


def test_sug_5_surrogate_end_users_are_approved_by_a_uga_of_that_surrogate_group(
    portal: Portal,
):
    portal.organization("sofia")
    sug = portal.surrogate_group(ORG, "sofia", "carl", "Acme")
    filed = portal.api("sam").file("surrogate_end_user", surrogate_group_id=sug)
    refused = portal.api("sofia").decide(filed.json["id"])  # the provider's SO may not
    assert refused.status_code == 403
    assert _error(refused)["rule"] == "SUG-5"
    assert filed.json["id"] in _ids(portal.api("carl").get("/approvals"))
    assert portal.api("carl").decide(filed.json["id"]).status_code == 200
    assert ("end_user", "surrogate_group", sug) in portal.api("sam").memberships()


def test_sug_6_surrogate_membership_is_recorded_as_surrogate_never_as_a_provider_group(
    portal: Portal,
):
    """SUG-6: PS&R access is projected by the sync worker from the membership's scope.

    The portal's part is to record a surrogate's End User as a member of the surrogate group,
    never of the provider's own groups (from which PS&R flows), and not to count them among the
    provider's own users.
    """
    portal.organization("sofia")
    billing = portal.user_group(ORG, "sofia", "uma")
    sug = portal.surrogate_group(ORG, "sofia", "carl", "Acme")
    portal.grant("carl", "sam", "surrogate_end_user", surrogate_group_id=sug)
    assert portal.api("sam").memberships() == {("end_user", "surrogate_group", sug)}
    view = portal.api("sofia").get(f"/organizations/{ORG}").json
    provider_people = {
        h["username"] for g in view["groups"] for h in g["administrators"] + g["end_users"]
    }
    assert "sam" not in provider_people and "carl" not in provider_people
    assert [s["id"] for s in view["surrogate_groups"]] == [sug]
    # A provider End User who is also a surrogate keeps both memberships apart.
    portal.grant("uma", "sam", "end_user", organization_id=ORG, group_id=billing)
    assert portal.api("sam").memberships() == {
        ("end_user", "surrogate_group", sug),
        ("end_user", "user_group", billing),
    }


def test_sug_7_no_cms_side_approval_for_a_surrogate_group(portal: Portal):
    portal.organization("sofia")
    helpdesk = portal.api(portal.help_desk())
    filed = portal.api("carl").file("register_surrogate_group", organization_id=ORG, name="Acme")
    assert filed.json["id"] not in _ids(helpdesk.get("/approvals"))
    refused = helpdesk.decide(filed.json["id"])
    assert refused.status_code == 403
    assert _error(refused)["rule"] == "SUG-7"
    assert portal.api("sofia").decide(filed.json["id"]).status_code == 200
