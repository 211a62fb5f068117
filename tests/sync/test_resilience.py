"""The worker survives its servers going away: Keycloak or slapd stopped and started again.

The module starts its OWN slapd (durable, fixed port) and its OWN Keycloak (quick start, fixed
port) with the project's launchers, so it can stop and start them again without disturbing the
session's servers; a restart with the same run directory and port keeps the data (slapd's mdb
files, Keycloak's dev-file database, hence the realm). The realm is ``realm.json`` applied
without federation; only the user accounts are created through the admin API (a stand-in for
LDAP federation). The worker runs as in production: ``SyncWorker.run`` in a thread, its own
``Directory`` bound as the sync account, its own confidential client for Keycloak.

"Converged" means the plan from the directory's projection to what Keycloak holds now is empty:
every approval present, every revoked membership gone, nothing else under ``/iacs``.

Deadlines are generous (a Keycloak start takes 15-40 s on the 2-core machine, longer under
load); conditions are polled, never slept on. The backoff cap is lowered to a few seconds so
that the worker does not sleep for 30 s after a server is back.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

import sync.worker as worker_module
from iacs.catalogue import load_catalogue
from iacs.directory import Directory
from iacs.settings import Settings, SyncSettings
from iacs.stack.keycloak import KeycloakInstance, start_keycloak
from iacs.stack.process import free_port
from iacs.stack.slapd import SlapdInstance, start_slapd
from sync.diff import diff
from sync.feed import CursorFile
from sync.gateway import KeycloakGateway
from sync.keycloak_state import read_actual
from sync.main import build_worker
from sync.model import ActualState, Plan
from sync.project import project
from sync.worker import SyncWorker
from tests.fixtures.keycloak import AppliedRealm, apply_test_realm, unique_realm_name
from tests.fixtures.slapd import reset_tree

from .conftest import PASSWORD, Retries, newest_change
from .factories import ORG_A, ORG_B, end_user, org, security_official, user_group

pytestmark = pytest.mark.servers

T = TypeVar("T")
CATALOGUE = load_catalogue()
PEOPLE = ("ann", "ben", "cal", "dee", "eli", "fay")
EU_A = f"/iacs/{ORG_A}/billing/end-user"
EU_B = f"/iacs/{ORG_B}/billing/end-user"
SO_A = f"/iacs/{ORG_A}/security-official"
KEYCLOAK_START_TIMEOUT = float(os.environ.get("IACS_TEST_KEYCLOAK_START_TIMEOUT", "480"))
CATCH_UP_SECONDS = 120.0
"""From a server being back to Keycloak equal to the directory (a fresh Keycloak is slow)."""
BACKOFF_CAP_SECONDS = 4.0


# --------------------------------------------------------------------------------------------
# The module's own servers


@dataclass
class Servers:
    """A private slapd and Keycloak that the tests may stop and start again."""

    slapd: SlapdInstance
    keycloak: KeycloakInstance
    realm: AppliedRealm
    slapd_port: int
    keycloak_port: int

    def stop_keycloak(self) -> None:
        self.keycloak.stop()

    def start_keycloak(self) -> None:
        """Start Keycloak again on the same run directory (same database) and port."""
        self.keycloak = start_keycloak(
            self.keycloak.run_dir,
            admin_username=self.keycloak.admin_username,
            admin_password=self.keycloak.admin_password,
            port=self.keycloak_port,
            quick_start=True,
            timeout=KEYCLOAK_START_TIMEOUT,
        )

    def stop_slapd(self) -> None:
        self.slapd.stop()

    def start_slapd(self) -> None:
        """Start slapd again on the same run directory (durable data) and port."""
        self.slapd = start_slapd(self.slapd.run_dir, port=self.slapd_port, durable=True)

    def ensure_running(self) -> None:
        """Start whatever an earlier (failed) test left stopped."""
        if not self.slapd.running:
            self.start_slapd()
        if not self.keycloak.running:
            self.start_keycloak()

    def root(self) -> Directory:
        """The directory as its root DN (the password changes on every slapd start)."""
        return Directory(
            self.slapd.ldap_settings(),
            bind_dn=self.slapd.root_dn,
            password=self.slapd.root_password,
        )

    def sync_account(self) -> Directory:
        return Directory(self.slapd.ldap_settings(), "sync")

    def gateway(self) -> KeycloakGateway:
        """A fresh admin-API client of the realm (a new token: Keycloak may have restarted)."""
        return KeycloakGateway(self.realm.admin(), workers=4)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    slapd_port, keycloak_port = free_port(), free_port()
    slapd = start_slapd(tmp_path_factory.mktemp("own-slapd"), port=slapd_port, durable=True)
    try:
        keycloak = start_keycloak(
            tmp_path_factory.mktemp("own-keycloak"),
            admin_username="admin",
            admin_password=secrets.token_urlsafe(18),
            port=keycloak_port,
            quick_start=True,
            timeout=KEYCLOAK_START_TIMEOUT,
        )
    except BaseException:
        slapd.stop()
        raise
    own = Servers(slapd, keycloak, None, slapd_port, keycloak_port)  # type: ignore[arg-type]
    try:
        own.realm = apply_test_realm(keycloak, unique_realm_name())
        admin = own.realm.admin()
        for username in PEOPLE:  # accounts only: authority comes from the sync
            admin.create_user(
                {
                    "username": username,
                    "enabled": True,
                    "email": f"{username}@example.test",
                    "firstName": username.title(),
                    "lastName": "Test",
                    "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}],
                },
                exist_ok=True,
            )
        yield own
    finally:
        own.keycloak.stop()  # the current instances: a restart replaced the first ones
        own.slapd.stop()


@pytest.fixture
def directory(servers: Servers) -> Iterator[Directory]:
    """A clean tree with organizations A and B, their billing groups and every test person."""
    servers.ensure_running()
    reset_tree(servers.slapd)
    root = _populate(servers.root())
    yield root
    root.close()


def _populate(root: Directory) -> Directory:
    from iacs.domain import Person

    for org_id in (ORG_A, ORG_B):
        root.create_organization(org(org_id))
        root.create_user_group(user_group(org_id, "billing"))
    for username in PEOPLE:
        root.add_person(
            Person(username=username, display_name=username.title(), email=f"{username}@x.test")
        )
    return root


# --------------------------------------------------------------------------------------------
# The worker, as ``iacs sync run`` runs it (without the HTTP endpoint)


@dataclass
class RunningWorker:
    worker: SyncWorker
    thread: threading.Thread
    retries: Retries
    crashed: list[BaseException]

    @property
    def cursor(self) -> str | None:
        return self.worker.feed.cursor

    def saved_cursor(self) -> str | None:
        return CursorFile(self.worker.settings.sync.cursor_file).load()[0]

    def errors(self, kind: str) -> float:
        return self.worker.metrics.errors.labels(kind)._value.get()

    def assert_alive(self) -> None:
        assert not self.crashed, f"the worker thread died: {self.crashed[0]!r}"
        assert self.thread.is_alive()


def _settings(servers: Servers, slapd: SlapdInstance, cursor_file: Path) -> Settings:
    return Settings(
        ldap=slapd.ldap_settings(),
        keycloak=servers.realm.settings.keycloak,  # the worker's own confidential client
        sync=SyncSettings(cursor_file=cursor_file, poll_interval_seconds=0.05),
    )


@pytest.fixture
def running(
    servers: Servers, directory: Directory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningWorker]:
    monkeypatch.setattr(worker_module, "MAX_BACKOFF_SECONDS", BACKOFF_CAP_SECONDS)
    worker = build_worker(_settings(servers, servers.slapd, tmp_path / "cursor.json"))
    retries = Retries()
    logging.getLogger("sync.worker").addHandler(retries)
    crashed: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as exc:
            crashed.append(exc)
            raise

    thread = threading.Thread(target=run, name="sync-worker", daemon=True)
    thread.start()
    try:
        yield RunningWorker(worker, thread, retries, crashed)
    finally:
        worker.stop()
        thread.join(timeout=90)
        logging.getLogger("sync.worker").removeHandler(retries)
        worker.directory.close()
    assert not thread.is_alive(), "the worker did not stop"


# --------------------------------------------------------------------------------------------
# Waiting and comparing


def _wait(check: Callable[[], T], seconds: float, what: str, interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something true; a server error counts as "not yet"."""
    deadline = time.monotonic() + seconds
    last: object = None
    while True:
        try:
            value = check()
        except Exception as exc:  # a server coming back may refuse for a moment
            value, last = None, exc
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {seconds:.0f}s (last: {last!r})")
        time.sleep(interval)


def _plan_and_actual(servers: Servers) -> tuple[Plan, ActualState]:
    """The plan from the directory's projection to Keycloak's managed state, and that state."""
    with servers.sync_account() as reader:
        desired = project(reader.snapshot(), CATALOGUE)
    actual = read_actual(servers.gateway())
    return diff(desired, actual), actual


def _wait_converged(servers: Servers, seconds: float) -> ActualState:
    """Keycloak's managed state once it equals the projection of the directory."""
    seen: dict[str, Any] = {}

    def converged() -> ActualState | None:
        plan, actual = _plan_and_actual(servers)
        seen["plan"] = plan.summary()
        return actual if plan.is_empty else None

    try:
        return _wait(converged, seconds, "Keycloak equal to the directory", interval=0.25)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last plan {seen.get('plan')}") from None


def _members(actual: ActualState, path: str) -> frozenset[str]:
    return actual.members.get(path, frozenset())


def _assert_applied_up_to_cursor(
    cursor: str | None, changes: dict[str, tuple[str, bool]], actual: ActualState
) -> None:
    """Every change at or before the cursor has its effect in Keycloak.

    ``changes`` maps a change's reqStart to (username, present-after-it) in EU_A.
    """
    for at, (username, present) in changes.items():
        if cursor is not None and cursor >= at:
            assert (username in _members(actual, EU_A)) is present, (
                f"the cursor {cursor} is past the change {at} of {username}, "
                "which Keycloak does not have"
            )


# --------------------------------------------------------------------------------------------
# The tests


def test_keycloak_stopped_mid_sync_converges_and_loses_nothing(
    servers: Servers, directory: Directory, running: RunningWorker
) -> None:
    root, worker = directory, running.worker
    root.add_member(end_user(ORG_A, "billing"), "ann")
    root.add_member(end_user(ORG_A, "billing"), "ben")
    actual = _wait_converged(servers, 60)
    assert _members(actual, EU_A) == {"ann", "ben"}
    assert worker.health()[0]

    with servers.sync_account() as reader:
        # Mid-sync: approvals written, Keycloak stopped at once (they may or may not make it).
        before_stop = newest_change(reader)
        root.add_member(end_user(ORG_A, "billing"), "cal")
        root.add_member(security_official(ORG_A), "dee")
        in_flight = reader.changes_since(before_stop)
        retries_at = len(running.retries.records)
        servers.stop_keycloak()

        # While it is down: more approvals and a revocation.
        mark = newest_change(reader)
        root.add_member(end_user(ORG_B, "billing"), "eli")
        root.add_member(end_user(ORG_A, "billing"), "fay")
        root.remove_member(end_user(ORG_A, "billing"), "ann")
        while_down = reader.changes_since(mark)
    assert len(in_flight) == 2 and len(while_down) == 3

    errors_at = running.errors("keycloak")  # attempts that saw the writes made while down
    _wait(
        lambda: (
            running.errors("keycloak") >= errors_at + 2
            and len(running.retries.since(retries_at)) >= 3
        ),
        60,
        "failed attempts while Keycloak is down",
    )
    running.assert_alive()
    healthy, details = worker.health()
    assert not healthy and details["status"] == "failing"
    assert details["consecutive_failures"] >= 3
    # The cursor stays before every change that could not be applied, in memory and on disk.
    for cursor in (running.cursor, running.saved_cursor()):
        assert cursor is None or cursor < while_down[0].cursor
    stalled_at = running.cursor
    # Backoff: each retry waits longer (0.5 s, 1 s, 2 s, ...), up to the cap.
    retries = running.retries.since(retries_at)
    delays = [record.retry_in_seconds for record in retries]
    assert delays[:3] == [0.5, 1.0, 2.0], delays
    assert all(b >= a for a, b in itertools.pairwise(delays)), delays
    gaps = [b.created - a.created for a, b in itertools.pairwise(retries)]
    assert all(gap >= delay * 0.9 for gap, delay in zip(gaps, delays, strict=False)), (gaps, delays)

    servers.start_keycloak()
    actual = _wait_converged(servers, CATCH_UP_SECONDS)
    assert _members(actual, EU_A) == {"ben", "cal", "fay"}  # ann's revocation reached Keycloak
    assert _members(actual, EU_B) == {"eli"}
    assert _members(actual, SO_A) == {"dee"}
    assert not any("ann" in names for names in actual.members.values())

    _wait(lambda: worker.health()[0], 30, "the worker healthy again")
    running.assert_alive()
    assert running.cursor is not None and running.cursor >= while_down[-1].cursor
    assert running.saved_cursor() == running.cursor
    assert stalled_at is None or stalled_at <= running.cursor


def test_slapd_stopped_then_started_the_worker_catches_up(
    servers: Servers, directory: Directory, running: RunningWorker
) -> None:
    root, worker = directory, running.worker
    root.add_member(end_user(ORG_A, "billing"), "ann")
    root.add_member(end_user(ORG_A, "billing"), "ben")
    actual = _wait_converged(servers, 60)
    assert _members(actual, EU_A) == {"ann", "ben"}

    with servers.sync_account() as reader:
        # Mid-sync: an approval and a revocation written, slapd stopped at once.
        before_stop = newest_change(reader)
        root.add_member(end_user(ORG_A, "billing"), "cal")
        root.remove_member(end_user(ORG_A, "billing"), "ann")
        in_flight = reader.changes_since(before_stop)
    assert len(in_flight) == 2
    root.close()
    errors_at = running.errors("directory")
    servers.stop_slapd()

    _wait(
        lambda: running.errors("directory") >= errors_at + 3,
        60,
        "three failed attempts while slapd is down",
    )
    running.assert_alive()
    healthy, details = worker.health()
    assert not healthy and "Directory" in details["last_error"]
    stalled_at = running.cursor
    # Never past a change whose effect is not in Keycloak (Keycloak is up: look).
    actual = read_actual(servers.gateway())
    effects = {in_flight[0].cursor: ("cal", True), in_flight[1].cursor: ("ann", False)}
    _assert_applied_up_to_cursor(stalled_at, effects, actual)
    _assert_applied_up_to_cursor(running.saved_cursor(), effects, actual)
    failures = running.errors("directory")
    _wait(lambda: running.errors("directory") > failures, 30, "one more failed attempt")
    assert running.cursor == stalled_at  # failed runs never move it

    servers.start_slapd()
    actual = _wait_converged(servers, CATCH_UP_SECONDS)
    assert _members(actual, EU_A) == {"ben", "cal"}  # nothing written before the stop was lost

    # After the restart the worker follows the feed again (new root password, same data).
    with servers.root() as root_again:
        root_again.add_member(end_user(ORG_B, "billing"), "eli")
        root_again.add_member(security_official(ORG_A), "dee")
        root_again.remove_member(end_user(ORG_A, "billing"), "ben")
    actual = _wait_converged(servers, 60)
    assert _members(actual, EU_A) == {"cal"}
    assert _members(actual, EU_B) == {"eli"}
    assert _members(actual, SO_A) == {"dee"}

    _wait(lambda: worker.health()[0], 30, "the worker healthy again")
    running.assert_alive()
    with servers.sync_account() as reader:
        head = newest_change(reader)
    _wait(lambda: running.cursor == head, 30, "the cursor at the newest change")
    assert running.saved_cursor() == head


PURGE_AFTER = "00:00:03"
"""The feed-gap test's slapd keeps its change log 3 seconds (production: 7 days)."""


@pytest.fixture
def purging_slapd(servers: Servers, tmp_path: Path) -> Iterator[SlapdInstance]:
    """A slapd of its own whose accesslog forgets writes after 3 s (checked every second)."""
    servers.ensure_running()
    slapd = start_slapd(
        tmp_path / "slapd", durable=False, extra_config=f"logpurge {PURGE_AFTER} 00:00:01"
    )
    yield slapd
    slapd.stop()


def test_feed_gap_falls_back_to_a_full_reconcile(
    servers: Servers, purging_slapd: SlapdInstance, tmp_path: Path
) -> None:
    """The worker is away longer than the log keeps writes: the next run is a full one.

    The worker is stepped by hand ("away" = no step). Writes made meanwhile are purged from the
    log, so an incremental run could never see them; Keycloak is also changed behind the
    worker's back, which only a full run (that re-reads Keycloak) puts right.
    """
    slapd = purging_slapd
    root = _populate(
        Directory(slapd.ldap_settings(), bind_dn=slapd.root_dn, password=slapd.root_password)
    )
    reader = Directory(slapd.ldap_settings(), "sync")
    settings = _settings(servers, slapd, tmp_path / "cursor.json")
    worker = SyncWorker(
        settings,
        directory=reader,
        gateway_factory=lambda: KeycloakGateway.from_settings(settings.keycloak),
    )
    runs = worker.metrics.runs

    def converged() -> ActualState:
        desired = project(reader.snapshot(), CATALOGUE)
        actual = read_actual(servers.gateway())
        plan = diff(desired, actual)
        assert plan.is_empty, plan.summary()
        return actual

    def purged(after: str) -> bool:
        oldest = reader.oldest_change_cursor()
        return oldest is None or oldest > after

    def step_until_run():
        return _wait(worker.step, 10, "a run of the worker", interval=0.05)

    try:
        root.add_member(end_user(ORG_A, "billing"), "ann")
        root.add_member(end_user(ORG_A, "billing"), "ben")
        assert worker.step() is not None and runs.labels("full")._value.get() == 1
        assert _members(converged(), EU_A) == {"ann", "ben"}
        root.add_member(end_user(ORG_A, "billing"), "cal")
        step_until_run()
        assert runs.labels("incremental")._value.get() == 1
        assert _members(converged(), EU_A) == {"ann", "ben", "cal"}
        assert worker.feed.exact

        # 1. Away until the whole log is purged (nothing newer to stand on).
        cursor = worker.feed.cursor
        root.remove_member(end_user(ORG_A, "billing"), "ann")
        root.add_member(security_official(ORG_A), "dee")
        _wait(lambda: reader.oldest_change_cursor() is None, 30, "the log purged empty")
        _drift(servers, "ben")
        assert worker.step() is not None, "a feed gap with an empty log went unnoticed"
        assert runs.labels("full")._value.get() == 2
        actual = converged()
        assert _members(actual, EU_A) == {"ben", "cal"} and _members(actual, SO_A) == {"dee"}
        assert worker.feed.cursor >= cursor and not worker.feed.exact
        assert worker.step() is None  # caught up: no full run on every poll

        # 2. Away until the cursor's entry is purged while newer writes are retained.
        root.add_member(end_user(ORG_B, "billing"), "eli")
        step_until_run()
        assert runs.labels("incremental")._value.get() == 2 and worker.feed.exact
        cursor = worker.feed.cursor
        root.remove_member(end_user(ORG_A, "billing"), "cal")  # purged before the worker looks
        (removal,) = reader.changes_since(cursor)
        _wait(lambda: purged(removal.cursor), 30, "the log purged past the revocation")
        root.add_member(end_user(ORG_A, "billing"), "fay")  # retained: the log is not empty
        _drift(servers, "ben")
        assert worker.step() is not None
        assert runs.labels("full")._value.get() == 3
        actual = converged()
        assert _members(actual, EU_A) == {"ben", "fay"}  # cal's revocation was not lost
        assert _members(actual, EU_B) == {"eli"}
        assert worker.feed.exact and worker.feed.cursor > cursor
        assert CursorFile(tmp_path / "cursor.json").load() == (worker.feed.cursor, True)
    finally:
        root.close()
        reader.close()


def _drift(servers: Servers, username: str) -> None:
    """Take ``username`` out of EU_A in Keycloak behind the worker's back."""
    admin = servers.realm.admin()
    group = admin.get_group_by_path(EU_A)
    admin.group_user_remove(admin.get_user_id(username), group["id"])
