"""The worker's ``/nudge`` and ``/metrics`` are not open to whoever can reach the port.

The worker's own HTTP server (``sync.http.serve``) on a free port, with a real worker over the
session's slapd (sync account); no Keycloak is needed, as nothing here runs the worker. Each
test performs the call an attacker would and shows it refused.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from pydantic import SecretStr

from iacs.settings import Settings, SyncSettings
from iacs.stack.process import free_port
from iacs.wiring import SyncNudge
from sync.http import UnprotectedListenAddress, serve
from sync.worker import SyncWorker

pytestmark = pytest.mark.servers
TOKEN = "nudge-test-token-0123456789"


def _no_keycloak():
    raise AssertionError("these tests never run the worker")


@pytest.fixture
def worker(tmp_path, sync_directory) -> SyncWorker:
    settings = Settings(sync=SyncSettings(cursor_file=tmp_path / "cursor.json"))
    return SyncWorker(settings, directory=sync_directory, gateway_factory=_no_keycloak)


@pytest.fixture
def protected(worker: SyncWorker) -> Iterator[str]:
    """The endpoint on loopback with a nudge token; yields its base URL."""
    listen = f"127.0.0.1:{free_port()}"
    server = serve(worker, listen, SecretStr(TOKEN))
    try:
        yield f"http://{listen}"
    finally:
        server.shutdown()


def test_sec_nudge_without_or_with_a_wrong_token_is_refused(worker, protected) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": TOKEN},  # the token without the scheme
        {"Authorization": f"Basic {TOKEN}"},
    ):
        answer = requests.post(f"{protected}/nudge", headers=headers, timeout=5)
        assert answer.status_code == 401, headers
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert not worker._nudged.is_set(), f"nudged with {headers}"
    accepted = requests.post(
        f"{protected}/nudge", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    )
    assert accepted.status_code == 202
    assert worker._nudged.is_set()


def test_sec_metrics_need_the_token_and_health_stays_open(protected) -> None:
    assert requests.get(f"{protected}/metrics", timeout=5).status_code == 401
    wrong = {"Authorization": "Bearer wrong-token"}
    assert requests.get(f"{protected}/metrics", headers=wrong, timeout=5).status_code == 401
    right = {"Authorization": f"Bearer {TOKEN}"}
    metrics = requests.get(f"{protected}/metrics", headers=right, timeout=5)
    assert metrics.status_code == 200 and "iacs_sync_lag_seconds" in metrics.text
    health = requests.get(f"{protected}/healthz", timeout=5)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["pending_logouts"] == 0


def test_sec_worker_refuses_a_non_loopback_address_without_a_token(worker) -> None:
    port = free_port()
    for listen in (f"0.0.0.0:{port}", f"10.0.0.1:{port}", f"sync:{port}"):
        with pytest.raises(UnprotectedListenAddress, match="IACS_SYNC__NUDGE_TOKEN"):
            serve(worker, listen)
    with pytest.raises(requests.ConnectionError):  # nothing was bound
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    server = serve(worker, f"0.0.0.0:{port}", SecretStr(TOKEN))  # with a token it serves
    try:
        answer = requests.post(f"http://127.0.0.1:{port}/nudge", timeout=5)
        assert answer.status_code == 401
    finally:
        server.shutdown()


def test_the_portals_nudge_carries_the_token(worker, protected) -> None:
    SyncNudge(f"{protected}/nudge", token=SecretStr(TOKEN))()
    deadline = time.monotonic() + 10
    while not worker._nudged.is_set():
        assert time.monotonic() < deadline, "the portal's nudge did not reach the worker"
        time.sleep(0.02)
