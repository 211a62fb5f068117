"""Active/standby sync workers: one lease in the directory, taken and renewed by compare-and-swap.

The lease is one value, ``"<holder> <expiry>"`` (``iacsLease`` of ``cn=sync-lease,ou=system``),
on the designated provider (``IACS_LDAP__WRITE_URL``). A worker takes it when it is free or
expired and renews it every ``lease_renew_interval_seconds``, each time with ONE LDAP modify that
deletes the exact value it read and adds its own (``Directory.swap_lease``): when another
worker changed the value in between, slapd refuses the modify and this worker has lost. So at
most one worker's swap wins per value, exactly as DEC-3 decides a request once.

Renewal runs on its own thread, so a long full reconcile does not let the lease lapse.

Fencing, and its window. A holder trusts its lease (``held()``) until
``sent + duration - renew_interval``, where ``sent`` is its monotonic clock just BEFORE it sent
the swap that won: the expiry it wrote is its wall clock at that moment plus ``duration``, so
it stops trusting ``renew_interval`` seconds before any other worker may take the lease, whatever
the network delay of the swap. The worker asks ``held()`` before each run and the Keycloak
gateway asks it before EVERY admin-API write (``KeycloakGateway.fence``), so a holder that lost
the lease (killed renewal, a partition, a paused process) sends no new write. What remains:

- clock skew between the workers' hosts eats into that margin: with NTP it is milliseconds,
  and the margin is ``renew_interval`` (2 s by default);
- a write already sent before the trust ended and still in flight: at most one per gateway
  thread, bounded by the gateway's 30 s HTTP timeout. Such a late write can only re-apply what
  the directory held at the old holder's last read. The new holder's first run is a full
  reconcile, and it runs another full reconcile ``LATE_WRITE_SECONDS`` after taking over,
  which puts right anything such a late write changed after the first one read Keycloak.

Nothing is applied twice harmfully: every write is idempotent (a membership added twice is one
membership; a removal of an absent one is tolerated), and the standby starts from a full read
of both sides rather than from anyone's cursor. Nothing is lost: the lease only decides who
applies; what to apply is always read from the directory.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from iacs.directory import DirectoryError
from iacs.directory.errors import InvalidEntry
from iacs.directory.mapping import from_generalized_time, to_generalized_time

log = logging.getLogger("sync.lease")

LATE_WRITE_SECONDS = 30.0
"""How long after a takeover the confirming full reconcile runs: the Keycloak gateway's HTTP
timeout, the longest a write the previous holder sent can still be in flight."""


class LeaseLost(RuntimeError):
    """This worker no longer holds the lease: it must not write to Keycloak."""


class LeaseStore(Protocol):
    """What the lease needs of ``iacs.directory.Directory``."""

    def read_lease(self) -> str | None: ...

    def swap_lease(self, expected: str | None, new: str | None) -> bool: ...


@dataclass(frozen=True, slots=True)
class LeaseValue:
    """A parsed ``iacsLease`` value."""

    holder: str
    expires: datetime

    @classmethod
    def parse(cls, text: str) -> LeaseValue | None:
        """The value, or None when unreadable (then anyone may take it over by swap)."""
        holder, _, expiry = text.partition(" ")
        try:
            return cls(holder, from_generalized_time(expiry))
        except InvalidEntry:
            return None

    def render(self) -> str:
        return f"{self.holder} {to_generalized_time(self.expires, fraction='micro')}"


def default_holder() -> str:
    """A holder id unique to this process: host, pid and a random part (no spaces)."""
    host = "".join(c for c in socket.gethostname() if c.isalnum() or c in "-.") or "host"
    return f"{host[:64]}/{os.getpid()}/{secrets.token_hex(4)}"


class Lease:
    """One worker's view of the lease: ``held()`` now, ``tick()`` to take or renew it."""

    def __init__(
        self,
        store: LeaseStore,
        *,
        duration: float,
        renew_interval: float,
        holder: str | None = None,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < renew_interval * 2 <= duration:
            raise ValueError("the renew interval must be at most half the lease duration")
        self.store = store
        self.holder = holder or default_holder()
        if " " in self.holder or not self.holder:
            raise ValueError("a lease holder id has no spaces")
        self.duration = duration
        self.renew_interval = renew_interval
        self._wall, self._monotonic = wall, monotonic
        self._lock = threading.Lock()
        self._mine: str | None = None
        """The value this worker last wrote (what its next renewal swaps out)."""
        self._trusted_until = float("-inf")
        self._renew_at = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.takeovers = 0
        """How many times this worker took the lease (from free, expired or another holder)."""

    # -- the seam the worker and its scheduled jobs ask ---------------------------------------

    def held(self) -> bool:
        """True while this worker may write: it holds the lease with margin to spare."""
        return self._monotonic() < self._trusted_until

    def check(self) -> None:
        """Raise ``LeaseLost`` unless ``held()`` (the gateway's fence before each write)."""
        if not self.held():
            raise LeaseLost(f"{self.holder} no longer holds the sync lease")

    # -- taking and renewing ----------------------------------------------------------------

    def tick(self) -> bool:
        """Take the lease if free or expired, renew it if due; whether it is held after.

        A directory failure is no crash: the lease simply stops being trusted once its time
        runs out, and the next tick tries again.
        """
        with self._lock:
            now = self._monotonic()
            if self._mine is not None and now < self._renew_at and self.held():
                return True
            try:
                self._try_swap()
            except DirectoryError as exc:
                log.warning("cannot reach the lease", extra={"error": str(exc)})
            return self.held()

    def _try_swap(self) -> None:
        current = self.store.read_lease()
        parsed = LeaseValue.parse(current) if current is not None else None
        mine = current is not None and current == self._mine
        if not mine and parsed is not None and parsed.expires > self._wall():
            self._lose(f"held by {parsed.holder}")
            return
        sent = self._monotonic()
        value = LeaseValue(self.holder, self._wall() + timedelta(seconds=self.duration)).render()
        if value == current:  # two swaps within a microsecond of wall time: nothing to do
            return
        if self.store.swap_lease(current, value):
            if not mine:
                self.takeovers += 1
                log.info(
                    "took the sync lease",
                    extra={"holder": self.holder, "previous": parsed.holder if parsed else None},
                )
            self._mine = value
            self._trusted_until = sent + self.duration - self.renew_interval
            self._renew_at = sent + self.renew_interval
        else:
            self._lose("another worker swapped first")

    def _lose(self, why: str) -> None:
        if self._mine is not None:
            log.warning("lost the sync lease", extra={"holder": self.holder, "why": why})
        self._mine = None
        self._trusted_until = float("-inf")

    def release(self) -> None:
        """Give the lease up now (a clean stop), so a standby need not wait for it to expire."""
        with self._lock:
            mine, self._mine = self._mine, None
            self._trusted_until = float("-inf")
            if mine is None:
                return
            try:
                self.store.swap_lease(mine, None)
            except DirectoryError as exc:
                log.warning("cannot release the sync lease", extra={"error": str(exc)})

    # -- the renewal thread -----------------------------------------------------------------

    def start(self, on_change: Callable[[], None] | None = None) -> None:
        """Tick every ``renew_interval / 2`` on a daemon thread; ``on_change`` when won or lost."""

        def loop() -> None:
            was = False
            while not self._stop.is_set():
                now = self.tick()
                if now != was and on_change is not None:
                    on_change()
                was = now
                self._stop.wait(self.renew_interval / 2)

        self._thread = threading.Thread(target=loop, name="sync-lease", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the renewal thread and release the lease."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.release()
