"""Two Keycloak nodes in one cluster on PostgreSQL, behind one TLS proxy: lose one, lose nothing.

The realm as code is applied once, through the proxy; both nodes then serve it (one database).
A person signs in on node A; node B refreshes the tokens (the user session is in the cluster's
distributed cache and, in Keycloak 26, persisted in the database). Node A is stopped: the
refresh token issued before goes on working through B and through the proxy, a new sign-in
through the proxy works, and the sync worker's gateway (which, like the portal, knows only the
proxy's address) keeps reading the realm. The proxy is the decision for failover: clients get
one address, the proxy knows the nodes and skips a dead one (``iacs.stack.proxy``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
import requests

from sync.gateway import KeycloakGateway
from tests.fixtures.cluster import KeycloakCluster, PinnedSession
from tests.fixtures.keycloak import (
    AppliedRealm,
    apply_test_realm,
    browser_code_flow,
    delete_realm_if_present,
    unique_realm_name,
)

pytestmark = [pytest.mark.servers, pytest.mark.slow]

PASSWORD = "Correct-Horse-Battery-9"
CLIENT = "psr"


@pytest.fixture(scope="module")
def cluster_realm(keycloak_cluster: KeycloakCluster) -> Iterator[AppliedRealm]:
    """``realm.json`` applied once, through the proxy, into a fresh realm of the cluster."""
    name = unique_realm_name()
    try:
        yield apply_test_realm(keycloak_cluster, name)
    finally:
        keycloak_cluster.restart(0)
        delete_realm_if_present(keycloak_cluster, name)


def _person(realm: AppliedRealm) -> str:
    username = f"ann-{uuid.uuid4().hex[:6]}"
    realm.admin().create_user(
        {
            "username": username,
            "enabled": True,
            "email": f"{username}@example.test",
            "emailVerified": True,
            "firstName": "Ann",
            "lastName": "Tester",
            "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}],
        }
    )
    return username


def _sign_in(realm: AppliedRealm, username: str, browser: requests.Session) -> dict:
    flow = browser_code_flow(
        realm.issuer, CLIENT, realm.redirect_uris[CLIENT], username, PASSWORD, session=browser
    )
    assert "code" in flow.params, flow.location
    answer = browser.post(
        f"{realm.issuer}/protocol/openid-connect/token",
        data={
            "grant_type": "authorization_code",
            "code": flow.params["code"],
            "redirect_uri": realm.redirect_uris[CLIENT],
            "code_verifier": flow.code_verifier,
        },
        auth=(CLIENT, realm.client_secrets[CLIENT]),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _refresh(realm: AppliedRealm, refresh_token: str, via: requests.Session) -> requests.Response:
    return via.post(
        f"{realm.issuer}/protocol/openid-connect/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(CLIENT, realm.client_secrets[CLIENT]),
        timeout=30,
    )


def _pinned(cluster: KeycloakCluster, index: int) -> PinnedSession:
    return PinnedSession(cluster.public_origin, cluster.node_origin(index))


def test_both_nodes_form_one_cluster_and_serve_the_realm_applied_once(
    keycloak_cluster: KeycloakCluster, cluster_realm: AppliedRealm
) -> None:
    for index in (0, 1):
        keys = _pinned(keycloak_cluster, index).get(
            f"{cluster_realm.issuer}/.well-known/openid-configuration", timeout=30
        )
        assert keys.status_code == 200
        assert keys.json()["issuer"] == cluster_realm.issuer  # the proxy's address, on each node
    log = keycloak_cluster.nodes[1].log_path.read_text(errors="replace")
    # Infinispan's own word that B joined A: a cluster view with two members (ISPN000094).
    assert re.search(r"ISPN000094: Received new cluster view for channel ISPN: \S+ \(2\)", log), (
        "node B never saw a two-member cluster view"
    )


def test_a_session_started_on_node_a_refreshes_on_node_b(
    keycloak_cluster: KeycloakCluster, cluster_realm: AppliedRealm
) -> None:
    username = _person(cluster_realm)
    tokens = _sign_in(cluster_realm, username, _pinned(keycloak_cluster, 0))
    refreshed = _refresh(cluster_realm, tokens["refresh_token"], _pinned(keycloak_cluster, 1))
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["session_state"] == tokens["session_state"]


def test_stopping_node_a_keeps_sessions_sign_ins_and_the_worker_going(
    keycloak_cluster: KeycloakCluster, cluster_realm: AppliedRealm
) -> None:
    gateway = KeycloakGateway.from_settings(cluster_realm.settings.keycloak)  # the proxy's URL
    gateway.check()
    username = _person(cluster_realm)
    before = _sign_in(cluster_realm, username, _pinned(keycloak_cluster, 0))

    keycloak_cluster.nodes[0].stop()
    assert not keycloak_cluster.nodes[0].running

    on_b = _refresh(cluster_realm, before["refresh_token"], _pinned(keycloak_cluster, 1))
    assert on_b.status_code == 200, on_b.text
    assert on_b.json()["session_state"] == before["session_state"]  # the same session
    proxy = requests.Session()
    for _ in range(4):  # the proxy may first try the dead node: each answer must still be right
        through_proxy = _refresh(cluster_realm, on_b.json()["refresh_token"], proxy)
        assert through_proxy.status_code == 200, through_proxy.text
        on_b = through_proxy
    after = _sign_in(cluster_realm, _person(cluster_realm), requests.Session())
    assert _refresh(cluster_realm, after["refresh_token"], proxy).status_code == 200
    gateway.check()  # the worker's reads and its service-account token, through the proxy
    assert gateway.get("users", username=username, exact="true")[0]["username"] == username


def test_sec_forged_host_headers_do_not_move_the_issuer(
    keycloak_cluster: KeycloakCluster, cluster_realm: AppliedRealm
) -> None:
    """A client's Host / X-Forwarded-* headers cannot make a node announce another issuer or
    login URL (a poisoned discovery document would send browsers elsewhere): every node has one
    fixed public address (``--hostname``) whatever the request says."""
    forged = {"Host": "evil.test", "X-Forwarded-Host": "evil.test", "X-Forwarded-Proto": "http"}
    for session in (requests.Session(), _pinned(keycloak_cluster, 1)):
        answer = session.get(
            f"{cluster_realm.issuer}/.well-known/openid-configuration", headers=forged, timeout=30
        )
        assert answer.status_code == 200, answer.text
        document = answer.json()
        assert document["issuer"] == cluster_realm.issuer
        assert document["authorization_endpoint"].startswith(cluster_realm.issuer + "/")
        assert "evil.test" not in answer.text
