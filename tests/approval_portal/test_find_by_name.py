"""Finding organizations and groups by name (issue 9 item 4), against the real servers.

The look-ups answer any signed-in person, match case-insensitively, and treat what was typed
as a literal value of an escaped LDAP filter; the request forms resolve a typed name without
JavaScript (one match is used, several are offered as a choice).
"""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from tests.approval_portal.conftest import Portal, csrf_token

pytestmark = pytest.mark.servers

ORG = "org-123456789"


def _post(client, path: str, data: dict, page: str):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, page)})


def test_organizations_are_found_by_part_of_their_name_or_number_ignoring_case(portal: Portal):
    portal.organization("sofia", name="Lakeside General Hospital")
    portal.organization("olga", identifier="987654321", name="Harbor Clinic")
    ben = portal.sign_in("ben")
    found = ben.get("/lookup/organizations", query_string={"q": "LAKESIDE gen"})
    assert [o["name"] for o in found.json["organizations"]] == ["Lakeside General Hospital"]
    by_number = ben.get("/lookup/organizations", query_string={"q": "98-765"})
    assert [o["id"] for o in by_number.json["organizations"]] == ["org-987654321"]
    assert portal.app.test_client().get("/lookup/organizations?q=lake").status_code == 302


def test_sec_lookup_text_is_a_literal_filter_value(portal: Portal):
    """An LDAP filter typed into the search-as-you-type box matches nothing and breaks nothing."""
    portal.organization("sofia", name="Lakeside General Hospital")
    ben = portal.sign_in("ben")
    for hostile in ("*", "*)(ou=*", "\\2a", ")(|(objectClass=*"):
        answer = ben.get("/lookup/organizations", query_string={"q": hostile})
        assert answer.status_code == 200, hostile
        assert answer.json["organizations"] == [], hostile


def test_groups_are_found_by_name_within_the_organization(portal: Portal):
    portal.organization("sofia", name="Lakeside General Hospital")
    portal.user_group(ORG, "sofia", "uma", name="Billing Office")
    portal.organization("olga", identifier="987654321", name="Harbor Clinic")
    portal.user_group("org-987654321", "olga", "hugo", name="Billing Desk")
    eve = portal.sign_in("eve")
    found = eve.get("/lookup/groups", query_string={"organization": "lakeside", "q": "BILL"})
    assert found.json["groups"] == [{"id": "billing-office", "name": "Billing Office"}]

    # The form without JavaScript: names typed, resolved by the server; the request is filed.
    form = "/requests/new/end-user"
    sent = _post(eve, form, {"organization_id": "Lakeside", "group_id": "billing"}, form)
    assert sent.status_code == 302, sent.get_data(as_text=True)
    filed = portal.api("eve").get("/requests").json["requests"][0]
    assert (filed["organization_id"], filed["group_id"]) == (ORG, "billing-office")


def test_a_name_matching_several_organizations_offers_the_choice(portal: Portal):
    portal.organization("sofia", name="Lakeside General Hospital")
    portal.organization("olga", identifier="987654321", name="Lakeside Clinic")
    ben = portal.sign_in("ben")
    form = "/requests/new/backup-security-official"
    answer = _post(ben, form, {"organization_id": "lakeside"}, form)
    assert answer.status_code == 400
    body = answer.get_data(as_text=True)
    assert "matches several organizations" in body
    assert 'type="radio"' in body and 'value="987654321"' in body
    chosen = ben.post(
        form,
        data=MultiDict(
            [
                ("csrf_token", csrf_token(ben, form)),
                ("organization_id", "lakeside"),
                ("organization_id", "987654321"),
            ]
        ),
    )
    assert chosen.status_code == 302
    filed = portal.api("ben").get("/requests").json["requests"][0]
    assert filed["organization_id"] == "org-987654321"


def test_every_field_error_at_once_beside_its_field_with_labels(portal: Portal):
    """Issue 9 item 6: all errors together, each beside its field and linked from the summary;
    messages use the labels, and what was typed comes back."""
    ada = portal.sign_in("ada")
    form = "/requests/new/organization"
    answer = _post(
        ada,
        form,
        {"name": "", "identifier": "12-34", "provider_type": "", "phone": "555 <b>"},
        form,
    )
    assert answer.status_code == 400
    body = answer.get_data(as_text=True)
    for field in ("name", "identifier", "provider_type", "phone"):
        assert f'<a href="#field-{field}">' in body, field
        assert f'id="error-{field}"' in body, field
    assert body.count('aria-invalid="true"') == 4
    assert 'aria-describedby="hint-identifier error-identifier"' in body
    assert "TIN/EIN or NPI must be" in body and "Organization name is required" in body
    assert "identifier:" not in body and "provider_type:" not in body  # no internal names
    assert 'value="12-34"' in body  # what was typed is kept
    assert "There are 4 problems" in body
