"""The worker loop against a real Keycloak: full then incremental runs, cursor, retries, HTTP.

The directory here is a small in-memory stand-in (snapshot plus a change log); the worker's
use of the real slapd is covered by the end-to-end test.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import requests
from keycloak.exceptions import KeycloakConnectionError

from iacs.settings import Settings, SyncSettings
from iacs.stack.process import free_port
from sync.feed import generalized_time
from sync.http import serve
from sync.keycloak_state import read_actual
from sync.worker import SyncWorker

from .factories import ORG_A, end_user, world

pytestmark = pytest.mark.servers
EU_A = f"/iacs/{ORG_A}/billing/end-user"


@dataclass(frozen=True)
class Change:
    cursor: str


class MemoryDirectory:
    """What the worker needs of ``iacs.directory.Directory``: a snapshot and a change log."""

    def __init__(self, people: dict) -> None:
        self.people = people
        self.log: list[Change] = []

    def write(self, people: dict) -> None:
        self.people = people
        self.log.append(Change(generalized_time(datetime.now(UTC))))

    def snapshot(self):
        return world(self.people)

    def changes_since(self, cursor: str | None, *, limit: int = 1000) -> list[Change]:
        return [c for c in self.log if cursor is None or c.cursor > cursor][:limit]

    def oldest_change_cursor(self) -> str | None:
        return self.log[0].cursor if self.log else None


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        sync=SyncSettings(
            cursor_file=tmp_path / "cursor.json",
            poll_interval_seconds=0.05,
            listen=f"127.0.0.1:{free_port()}",
        )
    )


def test_full_then_incremental_run_reaches_keycloak_within_a_second(
    settings, gateway, make_users, login, refresh
) -> None:
    make_users("eve", "bob")
    directory = MemoryDirectory({"eve": [end_user(ORG_A, "billing")], "bob": []})
    worker = SyncWorker(settings, directory=directory, gateway_factory=lambda: gateway)
    first = worker.step()
    assert first is not None and first.report.total_writes > 0  # the start is a full run
    assert worker.step() is None  # nothing new: no run at all
    token = login("eve")

    directory.write({"eve": [], "bob": [end_user(ORG_A, "billing")]})
    started = time.perf_counter()
    result = worker.step()
    assert time.perf_counter() - started < 1.0
    assert result.timings["read"] < 0.01  # incremental: diffed against what it wrote
    assert result.plan.logouts == ("eve",)
    assert read_actual(gateway).members[EU_A] == {"bob"}
    assert refresh(token["refresh_token"]).status_code == 400
    assert settings.sync.cursor_file.exists()
    assert worker.feed.cursor == directory.log[-1].cursor


def test_keycloak_down_is_retried_with_backoff_and_the_cursor_waits(settings, gateway) -> None:
    directory = MemoryDirectory({})
    directory.write({})
    attempts = []

    def flaky():
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise KeycloakConnectionError("Can't connect to server")
        return gateway

    worker = SyncWorker(settings, directory=directory, gateway_factory=flaky)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while worker.feed.cursor is None and time.monotonic() < deadline:
            assert worker.feed.cursor is None or len(attempts) >= 3
            time.sleep(0.05)
    finally:
        worker.stop()
        thread.join(timeout=10)
    assert len(attempts) == 3
    assert attempts[2] - attempts[1] > attempts[1] - attempts[0] >= 0.4  # exponential backoff
    assert worker.feed.cursor == directory.log[-1].cursor
    assert worker.metrics.errors.labels("keycloak")._value.get() == 2
    assert worker.health()[0] is True


def test_http_health_metrics_and_nudge(settings, gateway) -> None:
    worker = SyncWorker(settings, directory=MemoryDirectory({}), gateway_factory=lambda: gateway)
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
        assert requests.post(f"{base}/nudge", timeout=5).status_code == 202
        assert worker.step() is not None  # a nudge runs even with no change in the feed
        worker.last_error = "KeycloakUnavailable: down"
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 503
    finally:
        server.shutdown()
