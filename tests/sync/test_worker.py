"""The worker loop on the real servers: full then incremental runs, cursor, retries, HTTP.

The session's slapd (``tests/fixtures/slapd.py``): memberships are written as the root DN through
``iacs.directory.Directory`` and the worker reads them, and slapd's accesslog, with the sync bind
account. The session's Keycloak: a fresh realm per test. Keycloak users are created through the
admin API as a stand-in for LDAP federation (accounts only). Stopping and starting the servers
themselves is ``test_resilience.py``'s business (it has servers of its own).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
import requests

import sync.worker as worker_module
from iacs.directory import Directory
from iacs.settings import Settings, SyncSettings
from iacs.stack.process import free_port
from sync.feed import CursorFile
from sync.gateway import KeycloakGateway
from sync.http import serve
from sync.keycloak_state import read_actual
from sync.worker import SyncWorker
from tests.fixtures.keycloak import keycloak_settings_for

from .conftest import PASSWORD, Retries, newest_change
from .factories import ORG_A, end_user, org, user_group

pytestmark = pytest.mark.servers
T = TypeVar("T")
EU_A = f"/iacs/{ORG_A}/billing/end-user"


@pytest.fixture
def settings(tmp_path, ldap_settings) -> Settings:
    return Settings(
        ldap=ldap_settings,
        sync=SyncSettings(
            cursor_file=tmp_path / "cursor.json",
            poll_interval_seconds=0.05,
            listen=f"127.0.0.1:{free_port()}",
        ),
    )


@pytest.fixture
def billing(root_directory: Directory, make_person) -> Callable[..., Directory]:
    """Organization A with its billing group; ``billing("eve", ...)`` adds people who hold
    nothing yet. Returns the root directory (for the test's approvals and revocations)."""
    root_directory.create_organization(org(ORG_A))
    root_directory.create_user_group(user_group(ORG_A, "billing"))

    def people(*usernames: str) -> Directory:
        for username in usernames:
            make_person(username)
        return root_directory

    return people


def _wait(check: Callable[[], T], seconds: float, what: str, interval: float = 0.05) -> T:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {seconds:.0f}s")
        time.sleep(interval)


def test_full_then_incremental_run_applies_only_what_changed(
    settings, billing, sync_directory, gateway, make_users, login, refresh
) -> None:
    root = billing("eve", "bob")
    root.add_member(end_user(ORG_A, "billing"), "eve")
    make_users("eve", "bob")
    worker = SyncWorker(settings, directory=sync_directory, gateway_factory=lambda: gateway)
    first = worker.step()
    assert first is not None and first.report.total_writes > 0  # the start is a full run
    assert worker.metrics.runs.labels("full")._value.get() == 1
    assert read_actual(gateway).members[EU_A] == {"eve"}
    assert worker.step() is None  # nothing new: no run at all
    token = login("eve")

    reads = []
    full_read = gateway.get
    gateway.get = lambda *a, **kw: reads.append(a) or full_read(*a, **kw)
    root.remove_member(end_user(ORG_A, "billing"), "eve")
    root.add_member(end_user(ORG_A, "billing"), "bob")
    try:
        result = _wait(worker.step, 5, "a run after the directory writes")
    finally:
        del gateway.get
    assert worker.metrics.runs.labels("incremental")._value.get() == 1
    # Incremental: diffed against what the worker wrote, Keycloak's groups are not read again.
    assert not [path for path in reads if str(path[0]).startswith("groups")], reads
    assert result.plan.summary() == {
        **dict.fromkeys(result.plan.summary(), 0),
        "add_members": 1,
        "remove_members": 1,
        "logouts": 1,
    }
    assert result.plan.logouts == ("eve",)
    assert read_actual(gateway).members[EU_A] == {"bob"}
    assert refresh(token["refresh_token"]).status_code == 400
    assert worker.step() is None

    head = newest_change(sync_directory)
    assert worker.feed.cursor == head
    assert CursorFile(settings.sync.cursor_file).load() == (head, True)


def test_drift_check_reads_in_the_background_and_keeps_what_was_written_meanwhile(
    settings, billing, sync_directory, gateway, make_users, monkeypatch
) -> None:
    """The periodic full reconcile does not hold up changes, and its stale read undoes none."""
    root = billing("eve", "bob", "cal")
    root.add_member(end_user(ORG_A, "billing"), "eve")
    root.add_member(end_user(ORG_A, "billing"), "cal")
    ids = make_users("eve", "bob", "cal")
    worker = SyncWorker(settings, directory=sync_directory, gateway_factory=lambda: gateway)
    assert worker.step() is not None  # the first run is a full one
    runs = worker.metrics.runs
    group = gateway.admin.get_group_by_path(EU_A)
    gateway.admin.group_user_remove(ids["cal"], group["id"])  # drift, behind the worker's back

    read, release = threading.Event(), threading.Event()
    real_read = worker_module.read_actual

    def stale_read(reader: KeycloakGateway):
        state = real_read(reader)
        read.set()
        release.wait(30)  # the read is over; its result arrives late
        return state

    monkeypatch.setattr(worker_module, "read_actual", stale_read)
    assert worker.start_drift_check()
    assert not worker.start_drift_check()  # one at a time
    assert read.wait(30)
    root.remove_member(end_user(ORG_A, "billing"), "eve")
    root.add_member(end_user(ORG_A, "billing"), "bob")
    moved = _wait(worker.step, 5, "an incremental run while the drift check reads")
    assert runs.labels("incremental")._value.get() == 1
    assert moved.plan.logouts == ("eve",)

    release.set()
    checked = _wait(worker.step, 10, "the drift check's reconcile")
    assert runs.labels("full")._value.get() == 2
    # Only the drift is corrected; eve's removal and bob's addition are not undone or redone.
    assert [(c.username, c.path) for c in checked.plan.add_members] == [("cal", EU_A)]
    assert not checked.plan.remove_members and not checked.plan.logouts
    assert read_actual(gateway).members[EU_A] == {"bob", "cal"}
    assert worker.step() is None


def test_lc_1_a_refresh_in_flight_at_the_revocation_does_not_keep_the_session(
    settings, billing, sync_directory, gateway, make_users, login, refresh
) -> None:
    """LC-1: Keycloak lets a refresh racing the logout write its session back; the worker
    deletes the session by id, so the revoked person's refresh token stops working."""
    people = [f"racer{n}" for n in range(12)]
    root = billing(*people)
    for person in people:
        root.add_member(end_user(ORG_A, "billing"), person)
    make_users(*people)
    worker = SyncWorker(settings, directory=sync_directory, gateway_factory=lambda: gateway)
    assert worker.step() is not None
    survivors = []
    for person in people:
        latest = [login(person)["refresh_token"]]
        stop = threading.Event()

        def hammer(latest: list[str] = latest, stop: threading.Event = stop) -> None:
            while not stop.is_set():  # a client refreshing as fast as it can
                response = refresh(latest[0])
                if response.status_code == 200:
                    latest[0] = response.json()["refresh_token"]

        thread = threading.Thread(target=hammer)
        thread.start()
        try:
            time.sleep(0.05)
            root.remove_member(end_user(ORG_A, "billing"), person)
            result = _wait(worker.step, 10, "the revocation's run")
            assert result.plan.logouts == (person,)
        finally:
            stop.set()
            thread.join()
        if refresh(latest[0]).status_code == 200:
            survivors.append(person)
    assert survivors == []


@pytest.fixture
def retries() -> Iterator[Retries]:
    handler = Retries()
    logging.getLogger("sync.worker").addHandler(handler)
    yield handler
    logging.getLogger("sync.worker").removeHandler(handler)


def test_keycloak_refusing_is_retried_with_backoff_and_the_cursor_waits(
    settings,
    billing,
    sync_directory,
    keycloak,
    realm_name,
    keycloak_admin_factory,
    retries,
    monkeypatch,
) -> None:
    """The worker's realm does not exist yet, so Keycloak refuses its client's every request;
    once the realm is applied (realm as code) the worker catches up. (Keycloak actually stopped
    and started again: ``test_resilience.py``.)"""
    monkeypatch.setattr(worker_module, "MAX_BACKOFF_SECONDS", 2.0)
    settings = settings.model_copy(update={"keycloak": keycloak_settings_for(keycloak, realm_name)})
    root = billing("eve")
    root.add_member(end_user(ORG_A, "billing"), "eve")
    worker = SyncWorker(  # its own client, as in production
        settings,
        directory=sync_directory,
        gateway_factory=lambda: KeycloakGateway.from_settings(settings.keycloak),
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        _wait(lambda: len(retries.records) >= 4, 30, "four failed attempts")
        assert worker.feed.cursor is None and not settings.sync.cursor_file.exists()
        healthy, details = worker.health()
        assert not healthy and details["consecutive_failures"] >= 4

        from keycloak_config.apply import apply_from_settings

        apply_from_settings(settings, with_federation=False)  # the realm appears
        keycloak_admin_factory(realm_name).create_user(
            {
                "username": "eve",
                "enabled": True,
                "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}],
            }
        )
        head = newest_change(sync_directory)
        _wait(lambda: worker.feed.cursor == head, 30, "the cursor at the newest change")
        worker.nudge()  # in case the run came between the realm and eve's account
        gateway = KeycloakGateway.from_settings(settings.keycloak)
        _wait(lambda: read_actual(gateway).members.get(EU_A) == {"eve"}, 30, "eve in Keycloak")
    finally:
        worker.stop()
        thread.join(timeout=60)
    assert not thread.is_alive()

    failures = list(retries.records)
    delays = [record.retry_in_seconds for record in failures]
    assert delays[:4] == [0.5, 1.0, 2.0, 2.0]  # exponential, then capped
    gaps = [b.created - a.created for a, b in itertools.pairwise(failures)]
    assert all(gap >= delay * 0.9 for gap, delay in zip(gaps, delays, strict=False)), gaps
    assert worker.metrics.errors.labels("keycloak")._value.get() == len(failures)
    assert worker.health()[0] is True
    assert CursorFile(settings.sync.cursor_file).load() == (head, True)


def test_http_health_metrics_and_nudge(settings, billing, sync_directory, gateway) -> None:
    billing()
    worker = SyncWorker(settings, directory=sync_directory, gateway_factory=lambda: gateway)
    server = serve(worker, settings.sync.listen)
    base = f"http://{settings.sync.listen}"
    try:
        worker.step()
        assert requests.get(f"{base}/healthz", timeout=5).json()["status"] == "ok"
        metrics = requests.get(f"{base}/metrics", timeout=5).text
        for name in (
            "iacs_sync_lag_seconds",
            "iacs_sync_changes_applied_total",
            "iacs_sync_errors_total",
            "iacs_sync_last_full_reconcile_timestamp_seconds",
        ):
            assert name in metrics
        assert worker.step() is None
        assert requests.post(f"{base}/nudge", timeout=5).status_code == 202
        assert worker.step() is not None  # a nudge runs even with no change in the feed
        worker.last_error = "KeycloakUnavailable: down"
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 503
    finally:
        server.shutdown()
