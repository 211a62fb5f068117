"""Two portal instances behind one TLS address: either serves any session; lose one, lose nothing.

Each instance is ``iacs portal serve`` (gunicorn, its own processes), configured only through
``IACS_*`` variables as a deployment configures it: the directory over ldaps, Keycloak at the
proxy's ``/auth`` (the clustered nodes behind it), sessions in the shared Redis. The proxy
(nginx, ``iacs.stack.proxy``) ends TLS and spreads the requests over both. A person signs in
through the proxy; the session cookie is then accepted by each instance asked directly. One
instance is stopped while a browser keeps calling through the proxy: every call is answered.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from iacs.settings import LdapSettings, PortalSettings, Settings
from iacs.stack.local import settings_to_env
from iacs.stack.process import ManagedProcess
from iacs.stack.redis import RedisInstance
from tests.approval_portal.oidc import login_through_form
from tests.fixtures.cluster import KeycloakCluster
from tests.fixtures.keycloak import (
    delete_realm_if_present,
    keycloak_settings_for,
    unique_realm_name,
)

pytestmark = [pytest.mark.servers, pytest.mark.slow]

PASSWORD = "Portal-Test-Password-1"
COOKIE = "iacs_portal"
START_TIMEOUT = 120.0


@dataclass
class PortalInstances:
    """The two ``iacs portal serve`` processes and the one address in front of them."""

    url: str
    """The proxy: ``https://127.0.0.1:<port>``."""
    ports: list[int]
    processes: list[ManagedProcess]
    start: Callable[[int], ManagedProcess]

    def direct(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"


def _healthy(url: str) -> bool:
    return requests.get(f"{url}/healthz", timeout=2).status_code == 200


@pytest.fixture(scope="module")
def portal_instances(
    keycloak_cluster: KeycloakCluster,
    ldap_settings: LdapSettings,
    redis_server: RedisInstance,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PortalInstances]:
    """The realm applied (with LDAP federation) through the proxy, two portals started on it."""
    from keycloak_config.apply import apply_from_settings

    realm = unique_realm_name()
    settings = Settings(
        environment="development",
        ldap=ldap_settings,
        keycloak=keycloak_settings_for(keycloak_cluster, realm),
        portal=PortalSettings(
            public_url=keycloak_cluster.proxy.url,
            session_store_url=redis_server.url,
            trusted_proxies=1,
            refused_attempts_per_minute=1000,
        ),
    )
    apply_from_settings(settings, with_federation=True)
    env = {
        **os.environ,
        **settings_to_env(settings),
        "REQUESTS_CA_BUNDLE": str(keycloak_cluster.tls.ca_file),
    }
    run_dir: Path = tmp_path_factory.mktemp("portals")
    ports = keycloak_cluster.portal_ports

    def start(index: int) -> ManagedProcess:
        process = ManagedProcess(
            f"portal-{index}",
            [
                sys.executable,
                "-m",
                "iacs.cli",
                "portal",
                "serve",
                "--port",
                str(ports[index]),
                "--workers",
                "1",
                "--threads",
                "4",
            ],
            run_dir / f"portal-{index}.log",
            env=env,
        )
        process.start()
        process.wait_ready(lambda: _healthy(f"http://127.0.0.1:{ports[index]}"), START_TIMEOUT)
        return process

    processes: list[ManagedProcess] = []
    try:
        for index in (0, 1):
            processes.append(start(index))
        yield PortalInstances(keycloak_cluster.proxy.url, ports, processes, start)
    finally:
        for process in processes:
            process.stop()
        delete_realm_if_present(keycloak_cluster, realm)


def _signed_in(portal: PortalInstances, make_person: Callable[..., object]) -> tuple[str, str]:
    """Sign a new person in through the proxy (portal -> Keycloak -> portal); their cookie."""
    username = f"pat-{uuid.uuid4().hex[:6]}"
    make_person(username, password=PASSWORD, display_name="Pat Test")
    browser = requests.Session()
    start = browser.get(f"{portal.url}/auth/login?next=/my", allow_redirects=False, timeout=30)
    assert start.status_code == 302, start.text
    back = login_through_form(browser, start.headers["Location"], username, PASSWORD)
    parts = urlsplit(back)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{portal.url}/auth/callback"
    done = browser.get(back, allow_redirects=False, timeout=30)
    assert done.status_code == 302 and done.headers["Location"] == "/my", done.text
    cookie = browser.cookies.get(COOKIE)
    assert cookie, "no session cookie"
    return username, cookie


def _me(url: str, cookie: str) -> requests.Response:
    return requests.get(f"{url}/api/v1/me", headers={"Cookie": f"{COOKIE}={cookie}"}, timeout=30)


def test_a_session_started_through_the_proxy_is_valid_on_each_instance(
    portal_instances: PortalInstances, make_person
) -> None:
    username, cookie = _signed_in(portal_instances, make_person)
    for index in (0, 1):
        answer = _me(portal_instances.direct(index), cookie)
        assert answer.status_code == 200, (index, answer.text)
        assert answer.json()["username"] == username
    assert _me(portal_instances.url, cookie).status_code == 200
    assert _me(portal_instances.direct(1), "forged" + cookie).status_code == 401


def test_stopping_one_instance_loses_no_request(
    portal_instances: PortalInstances, make_person
) -> None:
    _, cookie = _signed_in(portal_instances, make_person)
    answers: list[int] = []
    stop = threading.Event()

    def browse() -> None:
        with requests.Session() as browser:
            while not stop.is_set():
                try:
                    answer = browser.get(
                        f"{portal_instances.url}/api/v1/me",
                        headers={"Cookie": f"{COOKIE}={cookie}"},
                        timeout=30,
                    )
                    answers.append(answer.status_code)
                except requests.RequestException as exc:  # a lost request: counted, not raised
                    answers.append(-1)
                    print("lost:", exc)

    browsers = [threading.Thread(target=browse) for _ in range(3)]
    for thread in browsers:
        thread.start()
    try:
        time.sleep(2)
        portal_instances.processes[0].stop()  # gunicorn's graceful stop: SIGTERM
        stopped_at = len(answers)
        time.sleep(4)
    finally:
        stop.set()
        for thread in browsers:
            thread.join(timeout=60)
        portal_instances.processes[0] = portal_instances.start(0)
    assert stopped_at > 0 and len(answers) > stopped_at + 3, "too few calls to show anything"
    assert set(answers) == {200}, {code: answers.count(code) for code in set(answers)}
    print(f"{len(answers)} calls, {len(answers) - stopped_at} after the stop, all answered")


def test_the_portal_signs_people_in_while_a_keycloak_node_is_down(
    portal_instances: PortalInstances, make_person, keycloak_cluster: KeycloakCluster
) -> None:
    """The portal knows only the proxy's address for Keycloak: code exchange, keys and the
    browser's login pages all reach the living node."""
    keycloak_cluster.nodes[0].stop()
    try:
        username, cookie = _signed_in(portal_instances, make_person)
        for index in (0, 1):
            answer = _me(portal_instances.direct(index), cookie)
            assert answer.status_code == 200, (index, answer.text)
            assert answer.json()["username"] == username
    finally:
        keycloak_cluster.restart(0)
