"""The worker on the real directory: slapd's accesslog drives an incremental run within ~1 s.

slapd from the project's fixtures (``tests/fixtures/slapd.py``), the sync bind account, the
accesslog change feed; Keycloak users are created through the admin API as a stand-in for LDAP
federation (accounts only).
"""

from __future__ import annotations

import time

import pytest

from iacs.domain import EntityStatus
from iacs.settings import Settings, SyncSettings
from sync.keycloak_state import read_actual
from sync.worker import SyncWorker

from .factories import ORG_A, end_user, org, user_group

pytestmark = pytest.mark.servers
EU_A = f"/iacs/{ORG_A}/billing/end-user"


@pytest.fixture
def directories(root_directory, sync_directory):
    return root_directory, sync_directory


def _wait_for_run(worker: SyncWorker, deadline_seconds: float = 5.0):
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        result = worker.step()
        if result is not None:
            return result
        time.sleep(0.05)
    raise AssertionError("the change never reached the worker")


def test_lc_1_revocation_in_the_directory_reaches_keycloak_on_the_next_run(
    directories, tmp_path, gateway, make_users, login, refresh
) -> None:
    """LC-1: a membership removed in slapd leaves Keycloak and ends the person's sessions."""
    root, sync_directory = directories
    root.create_organization(org(ORG_A))
    root.create_user_group(user_group(ORG_A, "billing"))
    for username in ("eve", "bob"):
        root.add_person(_person(username), "person-test-secret")
        root.add_member(end_user(ORG_A, "billing"), username)
    make_users("eve", "bob")

    settings = Settings(sync=SyncSettings(cursor_file=tmp_path / "cursor.json"))
    worker = SyncWorker(settings, directory=sync_directory, gateway_factory=lambda: gateway)
    assert worker.step() is not None  # the first run is a full one
    assert read_actual(gateway).members[EU_A] == {"eve", "bob"}
    token = login("eve")

    snapshots = []
    full_snapshot = sync_directory.snapshot
    sync_directory.snapshot = lambda **kw: snapshots.append(1) or full_snapshot(**kw)

    root.remove_member(end_user(ORG_A, "billing"), "eve")
    result = _wait_for_run(worker)
    assert result.plan.logouts == ("eve",)
    assert read_actual(gateway).members[EU_A] == {"bob"}
    assert refresh(token["refresh_token"]).status_code == 400
    saved_cursor, exact = worker.feed.cursor_file.load()
    assert exact and saved_cursor == worker.feed.cursor
    assert worker.step() is None  # nothing new after the cursor
    assert snapshots == []  # a membership change re-reads only that person

    root.set_user_group_status(ORG_A, "billing", EntityStatus.REJECTED)
    result = _wait_for_run(worker)
    assert snapshots == [1]  # a group's status changed: the whole snapshot is read again
    assert result.plan.logouts == ("bob",)
    assert EU_A not in read_actual(gateway).groups


def _person(username: str):
    from iacs.domain import Person

    return Person(username=username, display_name=username.title(), email=f"{username}@x.test")
