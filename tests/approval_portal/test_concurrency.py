"""ORG-2 and DEC-3 under concurrency: eight simultaneous calls over real HTTP, one winner.

The portal runs in a threaded HTTP server on loopback; eight threads wait at a barrier and then
send their call at the same instant with their own bearer tokens from the real Keycloak.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from werkzeug.serving import make_server

from tests.approval_portal.conftest import Portal

pytestmark = pytest.mark.servers

PARALLEL = 8
ORG = "org-123456789"


@pytest.fixture
def served(portal: Portal) -> Iterator[str]:
    """The portal behind a threaded HTTP server on a free loopback port."""
    server = make_server("127.0.0.1", 0, portal.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/v1"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def _at_once(calls: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], requests.Response]) -> requests.Response:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def _bearer(portal: Portal, username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {portal.token_response(username)['access_token']}"}


def test_org_2_eight_simultaneous_security_official_registrations_one_wins(
    portal: Portal, served: str
):
    people = [f"official-{n}" for n in range(PARALLEL)]
    headers = {name: _bearer(portal, name) for name in people}

    def register(name: str) -> Callable[[], requests.Response]:
        body = {
            "kind": "register_organization",
            "name": f"Lakeside ({name})",
            "identifier": "12-345-6789",
            "provider_type": "hospital",
        }
        return lambda: requests.post(
            f"{served}/requests", json=body, headers=headers[name], timeout=60
        )

    answers = _at_once([register(name) for name in people])
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [409] * (PARALLEL - 1), [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            error = answer.json()["error"]
            assert error["rule"] == "ORG-2"
            assert "already registered" in error["message"]
    winner = next(a.json() for a in answers if a.status_code == 201)
    helpdesk = portal.api(portal.help_desk())
    pending = [r for r in helpdesk.get("/approvals").json["requests"]]
    assert [r["id"] for r in pending] == [winner["id"]]
    assert helpdesk.decide(winner["id"]).status_code == 200
    view = portal.api(winner["requester"]).get(f"/organizations/{ORG}").json
    assert [h["username"] for h in view["security_officials"]] == [winner["requester"]]


def test_dec_3_eight_simultaneous_approvals_of_one_request_one_wins(portal: Portal, served: str):
    filed = portal.api("sofia").file(
        "register_organization", name="Lakeside", identifier="123456789", provider_type="hospital"
    )
    headers = _bearer(portal, portal.help_desk())
    url = f"{served}/requests/{filed.json['id']}/decision"

    def approve() -> requests.Response:
        return requests.post(url, json={"decision": "approve"}, headers=headers, timeout=60)

    answers = _at_once([approve for _ in range(PARALLEL)])
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [409] * (PARALLEL - 1), [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["error"]["rule"] == "DEC-3"
    decisions = [
        r
        for r in portal.api("helpdesk").get("/audit").json["records"]
        if r["action"] == "decide:approved" and r["outcome"] == "ok"
    ]
    assert len(decisions) == 1
    assert portal.api("sofia").memberships() == {("security_official", "organization", ORG)}
