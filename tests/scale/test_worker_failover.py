"""Active and standby sync workers (``iacs sync run`` processes) on the replicated directory.

Two real worker processes share the lease in the directory (``sync.lease``): exactly one
applies; SIGKILL it during a stream of approvals and revocations and the standby takes over
within a few seconds and converges, with nothing lost and nothing extra. Then the provider the
worker reads from is stopped under load: it fails over to the other provider (a full
reconcile: a foreign cursor is a gap) and still loses nothing.

Keycloak is the session's; the realm is ``realm.json`` applied without federation, people's
accounts are made through the admin API (a stand-in for LDAP federation, as in
``tests/sync/test_resilience.py``). Deadlines are generous; the takeover time and the
convergence time are printed (run with ``-s``), never asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from iacs.catalogue import load_catalogue
from iacs.directory import Directory
from iacs.domain import Person
from iacs.settings import Settings, SyncSettings, settings_to_env
from iacs.stack.process import free_port
from sync.diff import diff
from sync.gateway import KeycloakGateway
from sync.keycloak_state import read_actual
from sync.model import ActualState
from sync.project import project
from tests.fixtures.keycloak import (
    AppliedRealm,
    apply_test_realm,
    delete_realm_if_present,
    unique_realm_name,
)
from tests.sync.factories import ORG_A, end_user, org, user_group

from .conftest import Providers, wait_for

pytestmark = [pytest.mark.servers, pytest.mark.slow]

CATALOGUE = load_catalogue()
PEOPLE = tuple(f"p{number:02d}" for number in range(30))
GROUPS = ("billing", "claims")
PASSWORD = "Correct-Horse-9"
CONVERGE_SECONDS = 120.0


@dataclass
class Stack:
    providers: Providers
    realm: AppliedRealm

    def gateway(self) -> KeycloakGateway:
        return KeycloakGateway(self.realm.admin(), workers=4)


@pytest.fixture(scope="module")
def stack(providers: Providers, keycloak) -> Iterator[Stack]:
    realm = apply_test_realm(keycloak, unique_realm_name())
    admin = realm.admin()
    for username in PEOPLE:
        admin.create_user(
            {
                "username": username,
                "enabled": True,
                "email": f"{username}@example.test",
                "firstName": username,
                "lastName": "Test",
                "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}],
            },
            exist_ok=True,
        )
    try:
        yield Stack(providers, realm)
    finally:
        delete_realm_if_present(keycloak, realm.name)


@pytest.fixture
def tree(stack: Stack, clean_providers: Providers) -> None:
    """Organization A with its groups and every person, on the designated provider."""
    with clean_providers.root(0) as root:
        root.create_organization(org(ORG_A))
        for group in GROUPS:
            root.create_user_group(user_group(ORG_A, group))
        for username in PEOPLE:
            if root.get_person(username) is None:
                root.add_person(
                    Person(username=username, display_name=username, email=f"{username}@x.test")
                )


@dataclass
class WorkerProcess:
    """One ``iacs sync run`` with its own listen port and cursor file."""

    name: str
    process: subprocess.Popen
    port: int
    log_path: Path
    events: list[str] = field(default_factory=list)

    def health(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
            return json.loads(r.read())

    def role(self) -> str | None:
        try:
            return self.health().get("role")
        except OSError:
            return None

    def admin_writes(self) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
            text = r.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("iacs_sync_admin_writes_total")
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _start_worker(stack: Stack, name: str, state: Path, order: tuple[int, ...]) -> WorkerProcess:
    port = free_port()
    settings = Settings(
        environment="development",
        ldap=stack.providers.settings(order),
        keycloak=stack.realm.settings.keycloak,
        sync=SyncSettings(
            cursor_file=state / f"{name}-cursor.json",
            # Shared by the workers (one volume): logouts a killed worker still owed are
            # settled by the one that takes over.
            pending_logouts_file=state / "pending-logouts.json",
            listen=f"127.0.0.1:{port}",
            poll_interval_seconds=0.1,
            lease_duration_seconds=4,
            lease_renew_interval_seconds=1,
            lease_holder=name,
        ),
    )
    iacs = shutil.which("iacs", path=str(Path(sys.executable).parent)) or "iacs"
    log_path = state / f"{name}.log"
    env = {**os.environ, **settings_to_env(settings)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [iacs, "sync", "run"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    worker = WorkerProcess(name, process, port, log_path)
    wait_for(lambda: worker.role() is not None, 60, f"{name} answering /healthz", 0.1)
    return worker


def _converged(stack: Stack) -> ActualState | None:
    with Directory(stack.providers.settings((0, 1)), "sync") as reader:
        desired = project(reader.snapshot(), CATALOGUE)
    actual = read_actual(stack.gateway())
    return actual if diff(desired, actual).is_empty else None


def _members(actual: ActualState, group: str) -> frozenset[str]:
    return actual.members.get(f"/iacs/{ORG_A}/{group}/end-user", frozenset())


def _full_runs(worker: WorkerProcess) -> int:
    """How many full reconciles the worker has logged."""
    lines = worker.log_path.read_text(encoding="utf-8").splitlines()
    return sum('"msg": "full run done"' in line for line in lines)


class Load:
    """Approvals and revocations written to the directory on a thread, as the portal would."""

    def __init__(self, stack: Stack, rate: float = 25.0) -> None:
        self.portal = Directory(stack.providers.settings((0, 1)), "portal")
        self.expected: dict[str, set[str]] = {group: set() for group in GROUPS}
        self.refused = 0
        self.rate = rate
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        steps = [(group, username, True) for username in PEOPLE for group in GROUPS]
        steps += [(group, username, False) for username in PEOPLE[::3] for group in GROUPS[:1]]
        for group, username, approve in steps:
            membership = end_user(ORG_A, group)
            try:
                if approve:
                    self.portal.add_member(membership, username)
                    self.expected[group].add(username)
                else:
                    self.portal.remove_member(membership, username)
                    self.expected[group].discard(username)
            except Exception:  # refused as unavailable: never acknowledged, so not expected
                self.refused += 1
            time.sleep(1 / self.rate)

    def start(self) -> Load:
        self._thread.start()
        return self

    def join(self) -> None:
        self._thread.join(timeout=120)
        self.portal.close()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path


def test_standby_takes_over_from_a_killed_active_worker_and_loses_nothing(
    stack: Stack, tree: None, state: Path
) -> None:
    workers = [
        _start_worker(stack, "worker-a", state, (0, 1)),
        _start_worker(stack, "worker-b", state, (1, 0)),
    ]
    try:
        wait_for(
            lambda: sorted(worker.role() or "" for worker in workers) == ["active", "standby"],
            30,
            "one active worker and one standby",
            0.1,
        )
        active = next(worker for worker in workers if worker.role() == "active")
        standby = next(worker for worker in workers if worker is not active)

        load = Load(stack).start()
        wait_for(lambda: active.admin_writes() >= 10, 60, "the active worker applying", 0.05)
        assert standby.admin_writes() == 0  # exactly one applies
        assert standby.role() == "standby"

        active.process.send_signal(signal.SIGKILL)  # mid-stream: killed while applying
        killed_at = time.monotonic()
        active.process.wait(timeout=10)
        wait_for(lambda: standby.role() == "active", 60, "the standby taking over", 0.05)
        takeover = time.monotonic() - killed_at

        load.join()
        actual = wait_for(lambda: _converged(stack), CONVERGE_SECONDS, "converged", 0.25)
        converged = time.monotonic() - killed_at
        for group in GROUPS:
            assert _members(actual, group) == load.expected[group]
        assert load.refused == 0
        print(
            f"\nlease takeover after SIGKILL of the active worker: {takeover:.2f} s "
            f"(lease 4 s, renewal every 1 s); converged {converged:.1f} s after the kill"
        )
    finally:
        for worker in workers:
            worker.stop()


def test_the_provider_the_worker_reads_stopped_under_load_loses_nothing(
    stack: Stack, tree: None, state: Path
) -> None:
    """The worker reads from provider 2 and writes its lease to provider 1 (designated)."""
    worker = _start_worker(stack, "worker-c", state, (1, 0))
    try:
        wait_for(lambda: worker.role() == "active", 30, "the worker active", 0.1)
        load = Load(stack).start()
        wait_for(lambda: worker.admin_writes() >= 10, 60, "the worker applying", 0.05)
        full_runs = _full_runs(worker)
        stack.providers.stop(1)
        stopped_at = time.monotonic()
        load.join()
        actual = wait_for(lambda: _converged(stack), CONVERGE_SECONDS, "converged", 0.25)
        for group in GROUPS:
            assert _members(actual, group) == load.expected[group]
        assert load.refused == 0  # the designated provider stayed up: every write accepted
        assert _full_runs(worker) > full_runs  # p1's log lacks the cursor: a full reconcile
        print(
            f"\nprovider 2 stopped under load: converged through provider 1 "
            f"{time.monotonic() - stopped_at:.1f} s later"
        )
        assert worker.process.poll() is None
    finally:
        worker.stop()
        stack.providers.ensure_running()
