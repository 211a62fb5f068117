"""The sync workers' lease against the real slapd: one holder at a time, by compare-and-swap."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import ldap3
import pytest

from iacs.directory import AccessDenied, Directory
from iacs.settings import LdapSettings, SyncSettings
from iacs.stack.slapd import SlapdInstance
from sync.lease import Lease, LeaseLost, LeaseValue


class Clock:
    """A monotonic clock the test moves (the wall clock stays real: slapd never reads it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def free_lease(slapd: SlapdInstance) -> Iterator[None]:
    """The session directory's lease entry with no value (as the root DN)."""

    def clear() -> None:
        connection = slapd.connect()
        try:
            connection.modify(
                f"cn=sync-lease,ou=system,{slapd.base_dn}",
                {"iacsLease": [(ldap3.MODIFY_REPLACE, [])]},
            )
            assert connection.result["result"] == 0, connection.result
        finally:
            connection.unbind()

    clear()
    yield
    clear()


@pytest.fixture
def two_workers(ldap_settings: LdapSettings, free_lease: None) -> Iterator[tuple[Directory, ...]]:
    first, second = (Directory(ldap_settings, account="sync") for _ in range(2))
    yield first, second
    first.close()
    second.close()


def test_one_holder_at_a_time_and_the_standby_takes_an_expired_lease(two_workers) -> None:
    clock = Clock()
    a = Lease(two_workers[0], duration=10, renew_interval=2, holder="a", monotonic=clock)
    b = Lease(two_workers[1], duration=10, renew_interval=2, holder="b", monotonic=clock)
    assert a.tick() and a.held()
    assert not b.tick() and not b.held()
    assert LeaseValue.parse(two_workers[1].read_lease() or "").holder == "a"  # type: ignore[union-attr]

    clock.now += 9  # a has not renewed: it stops trusting the lease before anyone may take it
    assert not a.held()
    with pytest.raises(LeaseLost):
        a.check()


def test_renewal_keeps_it_and_a_stale_swap_loses(two_workers) -> None:
    a = Lease(two_workers[0], duration=10, renew_interval=2, holder="a")
    b = Lease(two_workers[1], duration=10, renew_interval=2, holder="b")
    assert a.tick()
    seen = two_workers[1].read_lease()
    expired = LeaseValue("a", datetime.now(UTC) - timedelta(seconds=1)).render()
    # b read the value; a renews meanwhile: b's swap of what it read must fail (one modify that
    # deletes the old value: slapd refuses it once the value changed).
    a._renew_at = float("-inf")
    assert a.tick()
    assert two_workers[1].read_lease() != seen
    assert not two_workers[1].swap_lease(seen, "b " + expired.split()[1])
    assert not b.tick()
    assert a.held()


def test_taking_a_free_lease_twice_at_once_lets_exactly_one_win(two_workers) -> None:
    """Two adds to the SINGLE-VALUE attribute at the same moment: slapd keeps one."""
    barrier = threading.Barrier(8)
    wins: list[str] = []
    directories = [two_workers[index % 2] for index in range(8)]

    def take(index: int) -> None:
        value = LeaseValue(f"w{index}", datetime.now(UTC) + timedelta(seconds=10)).render()
        barrier.wait()
        if directories[index].swap_lease(None, value):
            wins.append(value)

    threads = [threading.Thread(target=take, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1
    assert two_workers[0].read_lease() == wins[0]


def test_release_lets_the_standby_take_over_at_once(two_workers) -> None:
    a = Lease(two_workers[0], duration=10, renew_interval=2, holder="a")
    b = Lease(two_workers[1], duration=10, renew_interval=2, holder="b")
    assert a.tick()
    assert not b.tick()
    a.release()
    assert not a.held()
    assert b.tick()
    assert b.takeovers == 1


def test_settings_refuse_a_renew_interval_longer_than_half_the_lease() -> None:
    with pytest.raises(ValueError, match="at most half"):
        SyncSettings(lease_duration_seconds=4, lease_renew_interval_seconds=3)


def test_sec_lease_cannot_be_taken_by_the_portal_account(
    ldap_settings: LdapSettings, free_lease: None
) -> None:
    """A compromised portal must not silence the worker by holding its lease."""
    portal = Directory(ldap_settings, account="portal")
    try:
        forever = LeaseValue("portal", datetime.now(UTC) + timedelta(days=3650)).render()
        with pytest.raises(AccessDenied):
            portal.swap_lease(None, forever)
    finally:
        portal.close()
    sync = Directory(ldap_settings, account="sync")
    try:
        assert sync.read_lease() is None
    finally:
        sync.close()


def test_lease_renewals_are_not_in_the_change_feed(two_workers) -> None:
    """A renewal every few seconds must neither wake the worker nor be re-read while idle."""
    reader = two_workers[1]
    before = [change.cursor for change in reader.changes_since(None, limit=100000)]
    lease = Lease(two_workers[0], duration=10, renew_interval=2, holder="a")
    for _ in range(3):
        lease._renew_at = float("-inf")
        assert lease.tick()
    after = reader.changes_since(None, limit=100000)
    assert [change.cursor for change in after] == before
    assert all("sync-lease" not in change.dn for change in after)
