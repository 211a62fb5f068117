"""LC-1 across a failure: the logout owed after a removal survives Keycloak failing and a kill.

Before the fix, a run that failed (or was killed) after removing a revoked person's membership
in Keycloak and before logging them out left them logged in for good: the retried run found
the membership already gone, planned nothing, and the refresh token kept working. Now each
plan's logouts are recorded durably before its first write (``sync.pending_logouts``) and every
run finishes what the record holds. The failure is placed at that exact point by the worker's
fault-injection hook (``sync.apply.FAULT_INJECTION.before_logout``): raising there is Keycloak
failing the logout; blocking there lets the test SIGKILL a worker process.

Real servers: the session's slapd (written as root, read by the sync account) and the session's
Keycloak (a fresh realm per test; accounts created through the admin API, as in the other sync
tests).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

import sync.worker as worker_module
from iacs.directory import Directory
from iacs.domain import Person
from iacs.settings import Settings, SyncSettings
from sync.apply import FAULT_INJECTION
from sync.gateway import KeycloakUnavailable
from sync.keycloak_state import read_actual
from sync.pending_logouts import PendingLogouts
from sync.worker import SyncWorker, pending_logouts_path

from .factories import ORG_A, end_user, org, user_group

pytestmark = pytest.mark.servers
T = TypeVar("T")
EU_A = f"/iacs/{ORG_A}/billing/end-user"
REPO = Path(__file__).resolve().parents[2]


def _wait(check: Callable[[], T], seconds: float, what: str, interval: float = 0.05) -> T:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {seconds:.0f}s")
        time.sleep(interval)


@pytest.fixture
def eve_in_billing(root_directory: Directory, make_users) -> Directory:
    """Eve, End User of organization A's billing group, in the directory and in Keycloak."""
    root_directory.create_organization(org(ORG_A))
    root_directory.create_user_group(user_group(ORG_A, "billing"))
    for username in ("eve", "bob"):
        root_directory.add_person(Person(username, username.title(), f"{username}@x.test"))
        root_directory.add_member(end_user(ORG_A, "billing"), username)
    make_users("eve", "bob")
    return root_directory


@pytest.fixture
def settings(tmp_path: Path, ldap_settings) -> Settings:
    return Settings(
        ldap=ldap_settings,
        sync=SyncSettings(cursor_file=tmp_path / "cursor.json", poll_interval_seconds=0.05),
    )


@pytest.fixture
def no_fault() -> Iterator[None]:
    yield
    FAULT_INJECTION.before_logout = None


def test_sec_keycloak_failing_at_the_logout_still_ends_the_sessions(
    eve_in_billing, settings, sync_directory, gateway, login, refresh, no_fault, monkeypatch
) -> None:
    monkeypatch.setattr(worker_module, "MAX_BACKOFF_SECONDS", 1.0)
    root = eve_in_billing
    worker = SyncWorker(settings, directory=sync_directory, gateway_factory=lambda: gateway)
    assert worker.step() is not None  # the first, full run
    assert read_actual(gateway).members[EU_A] == {"eve", "bob"}
    eve, bob = login("eve"), login("bob")

    struck: list[list[str]] = []

    def keycloak_fails_the_logout(usernames) -> None:
        struck.append(list(usernames))
        if len(struck) == 1:
            raise KeycloakUnavailable("fault injected: the logout request failed")

    FAULT_INJECTION.before_logout = keycloak_fails_the_logout
    root.remove_member(end_user(ORG_A, "billing"), "eve")
    loop = threading.Thread(target=worker.run, name="sync-worker", daemon=True)
    loop.start()
    try:
        _wait(lambda: len(struck) >= 1, 30, "the worker reaching the logout")
        _wait(lambda: refresh(eve["refresh_token"]).status_code == 400, 60, "eve logged out")
        _wait(lambda: not PendingLogouts(pending_logouts_path(settings)).load(), 30, "record empty")
    finally:
        worker.stop()
        loop.join(30)
    assert struck[0] == ["eve"]  # the fault struck eve's logout, after her removal
    assert worker.metrics.errors.labels("keycloak")._value.get() >= 1
    assert read_actual(gateway).members[EU_A] == {"bob"}
    assert refresh(bob["refresh_token"]).status_code == 200  # nobody else was logged out


def test_sec_worker_killed_between_removal_and_logout_ends_the_sessions_on_restart(
    eve_in_billing, settings, slapd, keycloak_server, realm, gateway, login, refresh, tmp_path
) -> None:
    root = eve_in_billing
    marker = tmp_path / "at-the-logout.json"
    env = {
        **os.environ,
        **slapd.settings_env(),
        "IACS_ENVIRONMENT": "development",
        "IACS_SYNC__CURSOR_FILE": str(settings.sync.cursor_file),
        "IACS_SYNC__POLL_INTERVAL_SECONDS": "0.05",
        "TEST_KEYCLOAK_ADMIN": json.dumps(
            [
                keycloak_server.url,
                keycloak_server.admin_username,
                keycloak_server.admin_password,
                realm,
            ]
        ),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.sync.killable_worker", str(marker)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait(
            lambda: process.poll() is None and read_actual(gateway).members.get(EU_A),
            120,
            "the worker process's first run",
            interval=0.25,
        )
        eve = login("eve")
        root.remove_member(end_user(ORG_A, "billing"), "eve")
        _wait(lambda: marker.exists() or process.poll() is not None, 60, "the fault point")
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        os.kill(process.pid, signal.SIGKILL)  # between the removal and the logout
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    assert json.loads(marker.read_text()) == ["eve"]
    assert read_actual(gateway).members[EU_A] == {"bob"}  # eve's removal did land ...
    assert refresh(eve["refresh_token"]).status_code == 200  # ... and her session lived on
    assert PendingLogouts(pending_logouts_path(settings)).load() == {"eve"}

    with Directory(settings.ldap, "sync") as reader:  # the worker started again
        restarted = SyncWorker(settings, directory=reader, gateway_factory=lambda: gateway)
        assert restarted.health()[1]["pending_logouts"] == 1  # what an operator sees
        restarted.step()
        assert refresh(eve["refresh_token"]).status_code == 400
        assert not restarted.pending_logouts.load()
        assert restarted.step() is None  # nothing more to do
