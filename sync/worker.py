"""The sync worker: keeps Keycloak's ``/iacs`` groups equal to the directory's approved roles.

Two kinds of run, both ``snapshot -> project -> diff -> apply``:

- **full**: the whole directory projected and diffed against Keycloak read in full; at start,
  after a gap in the change feed, after any failure, and as the periodic drift check every
  ``reconcile_interval_seconds``. The drift check reads Keycloak in the background (a minute at
  20,000 groups) while incremental runs go on, then reconciles against that read with the paths
  written meanwhile taken from the worker's own state (``sync.reconcile.overlay``);
- **incremental**: when the change feed has something after the cursor, or on a nudge (the
  portal posts ``/nudge`` after each decision). Only the people the changes touched are
  projected and diffed (``sync.incremental``), against the state the worker itself left
  Keycloak in, so a change reaches Keycloak in tens of milliseconds without re-reading it.

The cursor moves only once a run's writes are done; a failed run leaves it where it was and is
retried with exponential backoff (Keycloak or slapd down), as a full run.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import requests
from keycloak.exceptions import KeycloakError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from iacs.catalogue import Catalogue, load_catalogue
from iacs.directory import DirectoryError, DirectorySnapshot
from iacs.settings import Settings

from .apply import log_out
from .feed import Batch, ChangeFeed, CursorFile
from .gateway import KeycloakGateway, KeycloakUnavailable
from .incremental import DesiredIndex
from .keycloak_state import read_actual
from .model import ActualState, DesiredState
from .pending_logouts import PendingLogouts
from .ports import SyncDirectory
from .reconcile import ReconcileResult, Written, overlay, reconcile, reconcile_people

log = logging.getLogger("sync.worker")
T = TypeVar("T")
MAX_BACKOFF_SECONDS = 30.0


def _retryable() -> tuple[type[BaseException], ...]:
    """Failures that mean "a server is down or busy": retry later, never crash."""
    return (DirectoryError, KeycloakUnavailable, KeycloakError, requests.RequestException, OSError)


class Metrics:
    """The worker's Prometheus metrics, in a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.lag = Gauge(
            "iacs_sync_lag_seconds",
            "Age of the oldest directory change not yet applied to Keycloak (0 when caught up)",
            registry=r,
        )
        self.propagation = Histogram(
            "iacs_sync_propagation_seconds",
            "From a directory write (reqStart) to its application in Keycloak",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=r,
        )
        self.changes_applied = Counter(
            "iacs_sync_changes_applied", "Directory changes applied to Keycloak", registry=r
        )
        self.admin_writes = Counter(
            "iacs_sync_admin_writes", "Keycloak admin-API writes", ["kind"], registry=r
        )
        self.logouts = Counter(
            "iacs_sync_logouts", "Users logged out after losing authority", registry=r
        )
        self.errors = Counter(
            "iacs_sync_errors", "Runs that failed (and will be retried)", ["kind"], registry=r
        )
        self.runs = Counter("iacs_sync_runs", "Runs completed", ["kind"], registry=r)
        self.run_seconds = Histogram(
            "iacs_sync_run_seconds",
            "Duration of a run",
            ["kind"],
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300),
            registry=r,
        )
        self.last_full = Gauge(
            "iacs_sync_last_full_reconcile_timestamp_seconds",
            "When the last full reconcile finished (Unix time)",
            registry=r,
        )
        self.missing_users = Gauge(
            "iacs_sync_missing_users",
            "Users with approved roles who are not in Keycloak (last run)",
            registry=r,
        )


class SyncWorker:
    """One worker: its connections, its cursor, its cached Keycloak state and its metrics.

    It is handed its directory and a factory of Keycloak gateways (``sync.main.build_worker``
    builds the production ones); the factory is called again after a Keycloak failure, for a
    fresh token and session.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        directory: SyncDirectory,
        gateway_factory: Callable[[], KeycloakGateway],
        catalogue: Catalogue | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.catalogue = catalogue or load_catalogue(settings.sync.catalogue_file)
        self._leaves: dict = {}
        """Leaf groups already projected with this catalogue (see ``sync.project.project``)."""
        self.directory = directory
        self.gateway_factory = gateway_factory
        self.gateway: KeycloakGateway | None = None
        self.feed = ChangeFeed(directory, CursorFile(settings.sync.cursor_file))
        self.pending_logouts = PendingLogouts(pending_logouts_path(settings))
        self.pending_logouts.load()  # an unreadable record stops the start, never forgotten
        self.metrics = metrics or Metrics()
        self.cache: ActualState | None = None
        self._desired: DesiredState | None = None
        self._index: DesiredIndex | None = None
        """The last desired state and its index: an incremental run moves them forward."""
        self._drift: Future[ActualState] | None = None
        self._written = Written()
        """What the worker wrote since the running drift check began to read."""
        self._snapshot: DirectorySnapshot | None = None
        self.last_error: str | None = None
        self.last_success: float | None = None
        self._next_full = 0.0
        self._failures = 0
        self._nudged = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()

    # -- control -----------------------------------------------------------------------------

    def nudge(self) -> None:
        """Run now (the portal calls this after each decision)."""
        self._nudged.set()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy unless the last run failed; with what an operator wants to see."""
        details = {
            "status": "failing" if self.last_error else "ok",
            "last_success": self.last_success,
            "last_error": self.last_error,
            "cursor": self.feed.cursor,
            "consecutive_failures": self._failures,
            "pending_logouts": len(self.pending_logouts.load()),
        }
        return self.last_error is None, details

    # -- runs --------------------------------------------------------------------------------

    def step(self, *, full: bool = False) -> ReconcileResult | None:
        """One run if there is anything to do (a full one when ``full`` or the feed has a gap).

        When a drift check's read of Keycloak has finished, this run is that full reconcile.
        Then the logouts still owed (a run that failed or was killed between a removal and its
        logout) are finished, whether or not there was anything else to do.
        """
        result = self._step(full=full)
        self.settle_logouts()
        return result

    def settle_logouts(self) -> int:
        """Log out everyone the durable record still owes a logout; returns how many were owed.

        A run's own logouts leave the record as they are done; whatever remains is from a run
        that failed or was killed after its removals, when the retried run plans no logout.
        """
        owed = self.pending_logouts.load()
        if not owed:
            return 0
        if self.gateway is None:
            self.gateway = self.gateway_factory()
        user_ids = dict(self.cache.user_ids) if self.cache is not None else {}
        problems = log_out(self.gateway, owed, user_ids, self.pending_logouts)
        self.metrics.logouts.inc(len(owed))
        log.warning(
            "logouts owed by an interrupted run were done",
            extra={"usernames": sorted(owed)[:20], "problem_list": problems[:20]},
        )
        return len(owed)

    def _step(self, *, full: bool) -> ReconcileResult | None:
        nudged = self._nudged.is_set()
        self._nudged.clear()
        batch = self.feed.pending()
        full = full or batch.gap or self.cache is None
        oldest = batch.oldest_time()
        self.metrics.lag.set(
            (datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0
        )
        if full:
            self._drift = None  # this run reads Keycloak itself
        elif self._drift is not None and self._drift.done():
            known = self._drift_result()
            if known is not None:
                return self._run(batch, full=True, touched=None, known=known)
        if not (full or batch.changes or nudged):
            return None
        touched = None if full or not batch.changes else self._people_touched(batch)
        if touched is not None and not touched and not nudged:
            self.feed.applied(batch)  # only requests and audit records: nothing to project
            self.metrics.lag.set(0)
            return None
        return self._run(batch, full=full, touched=touched)

    def _run(
        self,
        batch: Batch,
        *,
        full: bool,
        touched: set[str] | None,
        known: ActualState | None = None,
    ) -> ReconcileResult:
        """Project, diff and apply: for ``touched`` people only when the worker can, else all.

        ``known`` is what Keycloak holds (a drift check's read); a full run without it reads
        Keycloak itself, an incremental one diffs against what the worker last left there.
        """
        kind = "full" if full else "incremental"
        started = time.perf_counter()
        if self.gateway is None:
            self.gateway = self.gateway_factory()
        if touched is not None and self._snapshot is not None and self._index is not None:
            # step() runs in full while what Keycloak holds or was last projected is unknown.
            assert self._desired is not None and self.cache is not None
            people = dict(self._snapshot.people)
            for username in touched:
                people[username] = self.directory.memberships_of(username)
            snapshot = dataclasses.replace(self._snapshot, people=people)
            self._snapshot = snapshot
            result = reconcile_people(
                self.gateway,
                snapshot,
                self.catalogue,
                previous=self._desired,
                index=self._index,
                actual=self.cache,
                touched=touched,
                memo=self._leaves,
                pending=self.pending_logouts,
            )
        else:
            snapshot = self.directory.snapshot()
            self._snapshot = snapshot
            if full:
                self._leaves.clear()  # bounded: affiliations that no longer exist are forgotten
            self._index = None  # an exception below leaves no index: the next run is in full
            result = reconcile(
                self.gateway,
                snapshot,
                self.catalogue,
                actual=known if full else self.cache,
                memo=self._leaves,
                pending=self.pending_logouts,
            )
            self._index = DesiredIndex.of(result.desired)
        self._desired = result.desired
        self.cache = None if result.report.problems else result.after
        if self._drift is not None:  # a drift check is reading: remember what changed meanwhile
            self._written.record(result.plan, result.report)
        self.feed.applied(batch)
        if full:
            self._next_full = time.monotonic() + self.settings.sync.reconcile_interval_seconds
        self._record(kind, batch, result, time.perf_counter() - started)
        return result

    # -- drift checks ------------------------------------------------------------------------

    def start_drift_check(self) -> bool:
        """Start reading Keycloak in full in the background (the periodic reconcile).

        The read of 20,000 groups takes about a minute; meanwhile incremental runs go on, and
        the paths they write are noted so that the reconcile that follows the read takes those
        from what the worker wrote rather than from the older read. False when there is nothing
        to compare against yet (the next run is a full one anyway) or a check is running.
        """
        if self._drift is not None or self.cache is None:
            return False
        self._written = Written()
        factory = self.gateway_factory
        self._drift = _in_background(lambda: read_actual(factory()))
        self._drift.add_done_callback(lambda _: self._wake.set())
        return True

    def _drift_result(self) -> ActualState | None:
        """Keycloak as the finished drift check read it, with the paths written since taken
        from the worker's own state; None (and a retry later) when the read failed.
        """
        future, self._drift = self._drift, None
        assert future is not None and self.cache is not None  # step() calls this when done
        try:
            read = future.result()
        except _retryable() as exc:
            self.metrics.errors.labels("keycloak").inc()
            retry = min(MAX_BACKOFF_SECONDS, self.settings.sync.reconcile_interval_seconds)
            self._next_full = time.monotonic() + retry
            log.warning(
                "drift check could not read Keycloak; retrying",
                extra={"error": f"{type(exc).__name__}: {exc}", "retry_in_seconds": retry},
            )
            return None
        return overlay(read, self.cache, self._written)

    def _people_touched(self, batch: Batch) -> set[str] | None:
        """People whose memberships the batch may have changed, read one by one on an
        incremental run; None when it touched more (an organization, a group, a surrogate
        group's associations): then the whole snapshot is read again.
        """
        tree = self.directory.tree
        ignored = tuple(f",{base}".lower() for base in (tree.requests, tree.audit))
        touched: set[str] = set()
        for change in batch.changes:
            if change.membership is not None or tree.username_of(change.dn) is not None:
                touched |= change.usernames
            elif not change.dn.lower().endswith(ignored):
                return None
        return touched

    def _record(self, kind: str, batch: Batch, result: ReconcileResult, seconds: float) -> None:
        m = self.metrics
        m.runs.labels(kind).inc()
        m.run_seconds.labels(kind).observe(seconds)
        m.changes_applied.inc(len(batch.changes))
        for write_kind, count in result.report.writes.items():
            m.admin_writes.labels(write_kind).inc(count)
        m.logouts.inc(len(result.plan.logouts))
        m.missing_users.set(len(result.report.missing_users))
        m.lag.set(0)
        oldest = batch.oldest_time()
        if oldest is not None:
            m.propagation.observe(max(0.0, (datetime.now(UTC) - oldest).total_seconds()))
        if kind == "full":
            m.last_full.set(time.time())
        self.last_error = None
        self.last_success = time.time()
        summary = result.summary()
        level = logging.INFO if summary["writes"] or kind == "full" else logging.DEBUG
        log.log(
            level,
            f"{kind} run done",
            extra={
                "run": kind,
                "changes": len(batch.changes),
                "cursor": self.feed.cursor,
                **summary,
                "missing_user_names": result.report.missing_users[:20],
                "problem_list": result.report.problems[:20],
            },
        )

    def run(self) -> None:
        """Loop until ``stop``: poll, run, back off on failure."""
        poll = self.settings.sync.poll_interval_seconds
        while not self._stop.is_set():
            try:
                if time.monotonic() >= self._next_full:
                    self.start_drift_check()
                self.step()
            except _retryable() as exc:
                self._failed(exc)
                continue
            self._failures = 0
            self._wake.wait(timeout=poll)
            self._wake.clear()

    def _failed(self, exc: BaseException) -> None:
        self._failures += 1
        self.cache = None  # what Keycloak holds is unknown now: the next run reads it in full
        self._index = None
        self._drift = None
        kind = "directory" if _is_directory_error(exc) else "keycloak"
        if kind == "keycloak":
            self.gateway = None  # a fresh token and session on the next try
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.metrics.errors.labels(kind).inc()
        delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** (self._failures - 1))
        log.warning(
            "run failed; retrying",
            extra={"error": self.last_error, "retry_in_seconds": delay, "failures": self._failures},
        )
        self._stop.wait(timeout=delay)


def pending_logouts_path(settings: Settings) -> Path:
    """The record of owed logouts: the setting, or beside the cursor file."""
    sync = settings.sync
    return sync.pending_logouts_file or sync.cursor_file.with_suffix(".logouts.json")


def _in_background(function: Callable[[], T]) -> Future[T]:
    """``function`` on a daemon thread: a stopping worker does not wait for a long read."""
    future: Future[T] = Future()

    def target() -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(function())
            except BaseException as exc:
                future.set_exception(exc)

    threading.Thread(target=target, name="drift-check", daemon=True).start()
    return future


def _is_directory_error(exc: BaseException) -> bool:
    return isinstance(exc, DirectoryError)
