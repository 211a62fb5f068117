"""The audit views cannot be flooded (issue 13, item 7), against the real slapd and Keycloak.

An outsider's denied attempts are recorded (AUD-1) but shown apart from the organization's own
history; the views page, filter (who, action, outcome, period) and count on the server side;
and a person refused again and again is answered 429 before the service is asked anything.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.approval_portal.conftest import Portal

pytestmark = pytest.mark.servers

ORG = "org-123456789"
FLOOD = 30


def _denied_by(portal: Portal, actor: str) -> int:
    helpdesk = portal.api(portal.help_desk())
    answer = helpdesk.get("/audit", query_string={"actor": actor, "outcome": "denied"})
    return answer.json["total"]


def test_sec_audit_flood_by_an_outsider_does_not_hide_the_organizations_history(portal: Portal):
    portal.organization("sofia")
    filed = portal.api("ben").file("backup_security_official", organization_id=ORG)
    mallory = portal.api("mallory")
    for _ in range(FLOOD):  # the attack: denied decisions, each one recorded for the org
        assert mallory.decide(filed.json["id"]).status_code == 403
    assert portal.api("sofia").decide(filed.json["id"]).status_code == 200
    sofia = portal.api("sofia")

    history = sofia.get(f"/organizations/{ORG}/audit", query_string={"per_page": 3}).json
    assert history["total"] == 4  # register, its approval, the BSO request, its approval
    assert history["refused_total"] == FLOOD
    assert history["pages"] == 2 and history["filters"]["outcome"] == "ok"
    second = sofia.get(f"/organizations/{ORG}/audit", query_string={"per_page": 3, "page": 2})
    everything = history["records"] + second.json["records"]
    assert {(r["actor"], r["action"]) for r in everything} == {
        ("sofia", "request:register_organization"),
        ("helpdesk", "decide:approved"),
        ("ben", "request:backup_security_official"),
        ("sofia", "decide:approved"),
    }
    assert everything[0]["actor"] == "sofia" and everything[0]["action"] == "decide:approved"
    stamps = [r["at"] for r in everything]
    assert stamps == sorted(stamps, reverse=True)

    refused = sofia.get(
        f"/organizations/{ORG}/audit", query_string={"outcome": "denied", "per_page": 10}
    ).json
    assert refused["total"] == FLOOD and len(refused["records"]) == 10
    assert {(r["actor"], r["outcome"]) for r in refused["records"]} == {("mallory", "denied")}

    def total(**criteria: str) -> int:
        answer = sofia.get(f"/organizations/{ORG}/audit", query_string=criteria)
        assert answer.status_code == 200, answer.json
        return answer.json["total"]

    assert total(outcome="all") == 4 + FLOOD
    assert total(actor="mallory", outcome="all") == FLOOD
    assert total(actor="ben") == 1
    assert total(action="decide") == 2
    assert total(action="decide:approved", actor="helpdesk") == 1
    assert total(action="request") == 2
    today = datetime.now(UTC).date()
    assert total(since=today.isoformat(), until=today.isoformat()) == 4
    assert total(since=(today + timedelta(days=1)).isoformat()) == 0
    assert total(until=(today - timedelta(days=1)).isoformat()) == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("outcome", "bogus"),
        ("since", "yesterday"),
        ("until", "2026-13-01"),
        ("actor", "eve\n"),
        ("actor", "*)(uid=*"),
        ("action", "decide*"),
        ("page", "0"),
        ("per_page", "100000"),
        ("sort", "at"),
    ],
)
def test_sec_audit_filters_refuse_malformed_values(portal: Portal, name: str, value: str):
    portal.organization("sofia")
    answer = portal.api("sofia").get(f"/organizations/{ORG}/audit", query_string={name: value})
    assert answer.status_code == 400
    assert answer.json["error"]["code"] == "invalid_input"


def test_sec_the_audit_page_pages_and_filters_too(portal: Portal):
    portal.organization("sofia")
    filed = portal.api("ben").file("backup_security_official", organization_id=ORG)
    assert portal.api("mallory").decide(filed.json["id"]).status_code == 403
    browser = portal.sign_in("sofia")
    page = browser.get(f"/organizations/{ORG}/audit").get_data(as_text=True)
    assert "Filed a request: backup security official" in page and "mallory" not in page
    assert "Refused attempts (1)" in page
    refused = browser.get(f"/organizations/{ORG}/audit?outcome=denied").get_data(as_text=True)
    assert "mallory" in refused
    one = browser.get(f"/organizations/{ORG}/audit?per_page=1").get_data(as_text=True)
    assert "page 1 of 3" in one and 'rel="next"' in one


def test_sec_repeated_refusals_are_rate_limited_with_retry_after(portal: Portal):
    portal.organization("sofia")
    filed = portal.api("ben").file("backup_security_official", organization_id=ORG)
    limited = portal.with_portal_settings(refused_attempts_per_minute=5)
    mallory = limited.api("mallory")
    for _ in range(5):
        assert mallory.decide(filed.json["id"]).status_code == 403
    blocked = mallory.decide(filed.json["id"])
    assert blocked.status_code == 429
    assert blocked.json["error"]["code"] == "too_many_requests"
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    assert mallory.get("/me").status_code == 429  # every call, until the window has room
    # The blocked attempts never reached the service: five denials on the record, not more.
    assert _denied_by(portal, "mallory") == 5
    # The limit is shared through Redis: another portal instance refuses mallory too ...
    other = portal.with_portal_settings(refused_attempts_per_minute=5)
    assert other.api("mallory").get("/me").status_code == 429
    # ... and it is per person: the organization's own people are served as before.
    assert limited.api("sofia").decide(filed.json["id"]).status_code == 200
