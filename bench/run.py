"""``iacs bench``: generate a community, start the real servers, measure, write the report.

Each measurement is one function of ``Bench``; each records a ``Measurement`` that is measured,
failed (with the error) or not measured yet (with the reason: a piece of the system it needs has
not landed, or an earlier step it depends on failed). Nothing is estimated or simulated.

Servers: slapd and Keycloak come from the project's launchers (``iacs.stack``), in a temporary
run directory; the realm is the project's realm as code (``keycloak_config``); the portal and the
sync worker run as their own processes (``iacs portal serve``, ``iacs sync run`` / ``sync once``)
so that their peak memory is theirs alone.

Bench-only realm changes, all in the benchmark's own realm: direct access grants are turned on
for the portal client and the PQRI application client, so the benchmark can sign people in with
the password grant instead of driving a browser through the login page.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from iacs.settings import load_settings
from iacs.stack.keycloak import KEYCLOAK_VERSION, start_keycloak
from iacs.stack.process import ManagedProcess, free_port, port_open, tail
from keycloak_config.apply import apply_from_settings

from .anchors import admin_api_user_creation, ldap_full_sync
from .directory import load_community
from .generate import SIZES, Community, generate
from .memory import PeakMemory
from .portal import (
    approve_and_revoke,
    candidates,
    concurrent_decisions,
    latency_measurement,
    refused_with,
)
from .profile import sampled
from .progress import Progress
from .report import MEASURED, Measurement, Results, machine_info, software_versions, write_results
from .stats import percentile
from .tokens import AdminApi, OidcClient

REPO = Path(__file__).resolve().parent.parent
APP_CLIENT = "pqri-feedback-reports"
BENCH_REALM = "iacs"


@dataclass(frozen=True)
class Plan:
    """How much of each measurement a size runs."""

    lifecycle_samples: int
    approvers: int
    decisions_per_approver: int
    admin_api_users: int | None  # None: as many as people


PLANS = {
    "ci": Plan(lifecycle_samples=12, approvers=20, decisions_per_approver=2, admin_api_users=None),
    "full": Plan(
        lifecycle_samples=200, approvers=20, decisions_per_approver=10, admin_api_users=None
    ),
}

TARGETS = {
    "propagation": "p95 ≤ 1 s",
    "revocation": "p95 ≤ 2 s",
    "cold_projection": "≤ 5 min at 10,000 people, faster than the LDAP full sync",
    "no_change": "≤ 15 s with 0 admin writes",
    "decisions": "p95 ≤ 100 ms at 20 concurrent approvers",
}
TITLES = {
    "propagation": "Propagation: approve → claim in a fresh token",
    "revocation": "Revocation: revoke → refresh token refused",
    "cold_projection": "Cold projection into an empty realm",
    "no_change": "No-change reconcile",
    "decisions": "Portal decisions (20 concurrent approvers)",
    "anchor_ldap_full_sync": "Anchor: Keycloak LDAP federation full sync",
    "anchor_admin_api": "Anchor: raw admin-API user creation",
}


def missing_piece(module: str, attribute: str | None = None) -> str | None:
    """Why a piece of the system cannot be used yet (None when it can)."""
    try:
        imported = __import__(module, fromlist=["_"])
    except ImportError as exc:
        return f"{module} has not landed ({exc})"
    if attribute and not hasattr(imported, attribute):
        return f"{module}.{attribute} has not landed"
    return None


class Bench:
    """One benchmark run: its servers, its settings, its results."""

    def __init__(self, size: str, run_dir: Path, progress: Progress, seed: int | None = None):
        self.size_name = size
        self.size = SIZES[size]
        self.plan = PLANS[size]
        self.run_dir = run_dir
        self.progress = progress
        self.seed = self.size.seed if seed is None else seed
        self.memory = PeakMemory()
        self.results = Results(size=size, command=f"iacs bench --size {size}")
        self.community: Community | None = None
        self.slapd: Any = None
        self.keycloak: Any = None
        self.redis: Any = None
        self.admin: Any = None
        self.env: dict[str, str] = {}
        self.realm_ready: str | None = "the realm was not applied"
        self.processes: list[Any] = []
        self.used_people: set[str] = set()
        self.portal_url = ""
        self.pids: dict[str, int] = {}
        self.profiles: dict[str, Any] = {}
        self.secrets = {
            "keycloak_admin": secrets.token_urlsafe(16),
            "sync_client": secrets.token_urlsafe(24),
            "portal_client": secrets.token_urlsafe(24),
            "app_client": secrets.token_urlsafe(24),
            "portal_key": secrets.token_urlsafe(32),
        }

    # -- measurements bookkeeping -------------------------------------------------------------

    def record(self, measurement: Measurement) -> Measurement:
        self.results.measurements.append(measurement)
        verdict = {True: "target met", False: "TARGET MISSED", None: ""}[measurement.met]
        shown = measurement.result if measurement.status == MEASURED else measurement.reason
        self.progress.note(f"[bench] {measurement.title}: {measurement.status}: {shown} {verdict}")
        return measurement

    def skip(self, key: str, reason: str) -> Measurement:
        return self.record(Measurement.not_measured(key, TITLES[key], TARGETS.get(key, ""), reason))

    def attempt(self, key: str, function: Callable[[], Measurement | list[Measurement]]) -> None:
        """Run one measurement; an exception becomes a failed measurement with its message."""
        try:
            produced = function()
        except Exception as exc:
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            (self.run_dir / f"{key}.error.txt").write_text(traceback.format_exc())
            failed = Measurement(key=key, title=TITLES[key], target=TARGETS.get(key, ""))
            self.record(failed.fail(detail))
            return
        for measurement in produced if isinstance(produced, list) else [produced]:
            self.record(measurement)

    # -- servers ------------------------------------------------------------------------------

    def load_directory(self) -> None:
        with self.progress.stage("generate and load the directory"):
            started = time.perf_counter()
            self.community = generate(self.size)
            generated = time.perf_counter() - started
            loaded = load_community(self.community, self.run_dir / "directory")
        self.slapd = loaded.slapd
        self.memory.watch("slapd", self.slapd.process.process.pid)
        self.results.community = {
            **self.community.counts(),
            "ldif_entries": loaded.entries,
            "seed": self.size.seed,
        }
        self.results.setup.update(
            {
                "generate_seconds": round(generated + loaded.generate_seconds, 2),
                "slapadd_seconds": round(loaded.slapadd_seconds, 2),
            }
        )

    def start_keycloak(self) -> None:
        with self.progress.stage("start Keycloak"):
            started = time.perf_counter()
            self.keycloak = start_keycloak(
                self.run_dir / "keycloak",
                admin_username="admin",
                admin_password=self.secrets["keycloak_admin"],
                truststore_paths=[self.slapd.ca_file],  # the directory is ldaps only
            )
        self.results.setup["keycloak_start_seconds"] = round(time.perf_counter() - started, 1)
        self.results.versions["keycloak"] = KEYCLOAK_VERSION
        if self.keycloak.pid:
            self.memory.watch("keycloak", self.keycloak.pid)
        self.admin = AdminApi(self.keycloak.url, "admin", self.secrets["keycloak_admin"])

    def settings_env(self, **extra: str) -> dict[str, str]:
        """The ``IACS_*`` environment of the portal and the sync worker of this run."""
        env = dict(self.slapd.settings_env())
        if self.redis is not None:
            env["IACS_PORTAL__SESSION_STORE_URL"] = self.redis.url
        env.update(
            {
                "IACS_ENVIRONMENT": "development",
                "IACS_KEYCLOAK__URL": self.keycloak.url,
                "IACS_KEYCLOAK__REALM": BENCH_REALM,
                "IACS_KEYCLOAK__ADMIN_USERNAME": "admin",
                "IACS_KEYCLOAK__ADMIN_PASSWORD": self.secrets["keycloak_admin"],
                "IACS_KEYCLOAK__SYNC_CLIENT_SECRET": self.secrets["sync_client"],
                "IACS_KEYCLOAK__PORTAL_CLIENT_SECRET": self.secrets["portal_client"],
                "IACS_PORTAL__SECRET_KEY": self.secrets["portal_key"],
                "IACS_PORTAL__SESSION_COOKIE_SECURE": "false",
                # The load generator signs officials in with the password grant (no TOTP).
                "IACS_PORTAL__SECOND_FACTOR_REQUIRED": "false",
                "IACS_SYNC__CURSOR_FILE": str(self.run_dir / "sync-cursor.json"),
            }
        )
        env.update(extra)
        return env

    def settings(self, **extra: str):
        """``iacs.settings.Settings`` for this run (the same values as ``settings_env``)."""
        saved = dict(os.environ)
        try:
            os.environ.update(self.settings_env(**extra))
            return load_settings()
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def apply_realm(self) -> None:
        reason = missing_piece("keycloak_config.apply", "apply_from_settings")
        if reason:
            self.realm_ready = reason
            return
        with self.progress.stage("apply the realm as code"):
            apply_from_settings(
                self.settings(),
                with_federation=True,
                applications={APP_CLIENT: {"secret": self.secrets["app_client"]}},
            )
            portal_client = self.settings().keycloak.portal_client_id
            for client_id in (portal_client, APP_CLIENT):
                self.admin.allow_password_grant(BENCH_REALM, client_id)
        self.realm_ready = None

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Any:
        """A Python child of ours (the portal, the sync worker), watched for memory."""
        process = ManagedProcess(
            name,
            [sys.executable, *argv],
            self.run_dir / f"{name.replace(' ', '-')}.log",
            env={**os.environ, "PYTHONPATH": str(REPO), **env},
            cwd=REPO,
        )
        process.start()
        self.processes.append(process)
        self.pids[name] = process.process.pid
        self.memory.watch(name, process.process.pid)
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            with contextlib.suppress(Exception):
                process.stop()
        for server in (self.keycloak, self.redis, self.slapd):
            if server is not None:
                with contextlib.suppress(Exception):
                    server.stop()
        self.memory.stop()

    # -- the measurements ---------------------------------------------------------------------

    def sync_once(self, label: str) -> dict[str, Any]:
        """One full reconcile in its own process (``bench.sync_once``); its JSON summary."""
        out = self.run_dir / f"sync-once-{label}.json"
        process = ManagedProcess(
            f"sync once ({label})",
            [sys.executable, "-m", "bench.sync_once", str(out)],
            self.run_dir / f"sync-once-{label}.log",
            env={**os.environ, "PYTHONPATH": str(REPO), **self.settings_env()},
            cwd=REPO,
        )
        started = time.perf_counter()
        process.start()
        self.memory.watch("sync worker", process.process.pid)
        with sampled(process.process.pid, self.run_dir / f"sync-once-{label}.pyspy") as profile:
            code = process.process.wait()
        wall = time.perf_counter() - started
        if profile:
            self.profiles[f"sync once ({label})"] = profile[0]
        if code != 0:
            raise RuntimeError(f"sync once exited with {code}:\n{tail(process.log_path, 15)}")
        summary = json.loads(out.read_text())
        summary["wall_seconds"] = wall
        return summary

    def cold_projection_and_no_change(self) -> None:
        reason = self.realm_ready or missing_piece("sync.main", "run_once")
        if reason:
            self.skip("cold_projection", reason)
            self.skip("no_change", reason)
            return
        assert self.community is not None
        people = len(self.community.people)
        cold: dict[str, Any] = {}

        def measure_cold() -> Measurement:
            with self.progress.stage("cold projection (sync once into the empty realm)"):
                cold.update(self.sync_once("cold"))
            seconds = cold["seconds"]
            anchor = self.results.get("anchor_ldap_full_sync")
            m = Measurement(
                key="cold_projection",
                title=TITLES["cold_projection"],
                target=TARGETS["cold_projection"],
                status=MEASURED,
                result=f"{seconds:.1f} s, {people / seconds:.0f} people/s, "
                f"{cold.get('writes')} admin writes",
                numbers={
                    "seconds": round(seconds, 2),
                    "process_wall_seconds": round(cold["wall_seconds"], 2),
                    "people_per_second": round(people / seconds, 1),
                    "admin_writes": cold.get("writes"),
                    **{f"stage_{k}_seconds": v for k, v in cold.get("stages", {}).items()},
                },
                notes=[
                    f"summary: {json.dumps(cold.get('summary'), default=str)[:600]}",
                    *self._profile_notes("sync once (cold)"),
                ],
            )
            limit_ok = self.size_name != "full" or seconds <= 300
            m.met = (
                limit_ok
                if anchor is None or anchor.status != MEASURED
                else (limit_ok and seconds < anchor.numbers["seconds"])
            )
            return m

        def measure_no_change() -> Measurement:
            if not cold:
                raise RuntimeError("the cold projection did not complete")
            since = self._admin_event_marker()
            with self.progress.stage("no-change reconcile"):
                again = self.sync_once("no-change")
            events = self._admin_events_since(since)
            seconds = again["seconds"]
            writes = again.get("writes")
            m = Measurement(
                key="no_change",
                title=TITLES["no_change"],
                target=TARGETS["no_change"],
                status=MEASURED,
                result=f"{seconds:.1f} s, {writes} admin writes "
                f"({events} admin events recorded by Keycloak)",
                numbers={
                    "seconds": round(seconds, 2),
                    "admin_writes_counted_by_worker": writes,
                    "admin_events_recorded_by_keycloak": events,
                    **{f"stage_{k}_seconds": v for k, v in again.get("stages", {}).items()},
                },
            )
            m.met = seconds <= 15 and writes == 0 and events in (0, None)
            return m

        self.attempt("cold_projection", measure_cold)
        self.attempt("no_change", measure_no_change)

    def _profile_notes(self, name: str) -> list[str]:
        profile = self.profiles.get(name)
        return profile.notes(name) if profile is not None else []

    def _admin_event_marker(self) -> int:
        """Now, in Keycloak's milliseconds; admin events after it belong to the next step."""
        time.sleep(0.01)
        return int(time.time() * 1000)

    def _admin_events_since(self, since_ms: int) -> int | None:
        """Admin events (every admin-API write) of the bench realm since ``since_ms``."""
        try:
            events = self.admin.get(f"{BENCH_REALM}/admin-events", first=0, max=100000) or []
        except Exception:
            return None
        return sum(1 for event in events if event.get("time", 0) >= since_ms)

    def anchors(self) -> None:
        assert self.community is not None
        community = self.community
        role_groups = (
            2 * len(community.organizations)
            + 2 * len(community.user_groups)
            + 2 * len(community.surrogate_groups)
            + len(community.practitioners)
            + 1
        )

        def federation() -> Measurement:
            with self.progress.stage("anchor: Keycloak LDAP full sync") as stage:
                m = ldap_full_sync(
                    self.admin,
                    ldap_url=self.slapd.url,
                    base_dn=self.slapd.base_dn,
                    bind_dn=self.slapd.service_dn("sync"),
                    bind_password=self.slapd.service_passwords["sync"],
                    people=len(community.people),
                    role_groups=role_groups,
                    memberships=community.membership_count,
                    tick=lambda what: stage.advance(0, what),
                )
            return m

        def admin_api() -> Measurement:
            count = self.plan.admin_api_users or len(community.people)
            with self.progress.stage("anchor: raw admin-API user creation", total=count) as stage:
                return admin_api_user_creation(self.admin, count, tick=stage.advance)

        self.attempt("anchor_ldap_full_sync", federation)
        self.attempt("anchor_admin_api", admin_api)

    def start_portal_and_worker(self) -> tuple[str | None, str | None]:
        """Start ``iacs portal serve`` and ``iacs sync run``: the reason each cannot run, if any.

        The portal nudges the worker after each decision (the worker's poll of the change feed
        is the safety net), as in a deployment.
        """
        portal_reason = (
            self.realm_ready
            or missing_piece("approval_portal", "create_app")
            or missing_piece("iacs.directory", "Directory")
        )
        worker_reason = self.realm_ready or missing_piece("sync.main", "run_forever")
        worker_port, portal_port = free_port(), free_port()
        worker_listen = f"127.0.0.1:{worker_port}"
        portal_url = f"http://127.0.0.1:{portal_port}"
        env = self.settings_env(IACS_SYNC__LISTEN=worker_listen, IACS_PORTAL__PUBLIC_URL=portal_url)
        if worker_reason is None:
            env["IACS_PORTAL__SYNC_NUDGE_URL"] = f"http://{worker_listen}/nudge"
        if portal_reason is None and self.redis is None:
            from iacs.stack.redis import start_redis

            self.redis = start_redis(self.run_dir / "redis")
            env["IACS_PORTAL__SESSION_STORE_URL"] = self.redis.url
        with self.progress.stage("start the portal and the sync worker"):
            if worker_reason is None:
                worker = self.spawn("sync worker", ["-m", "iacs.cli", "sync", "run"], env)
                worker.wait_ready(lambda: port_open("127.0.0.1", worker_port), timeout=60)
                # Its first run is a full reconcile: measure the steady state, not the start.
                worker.wait_ready(lambda: _first_run_done(worker_listen), timeout=900, interval=1)
            if portal_reason is None:
                argv = ["-m", "iacs.cli", "portal", "serve", "--port", str(portal_port)]
                portal = self.spawn("portal", argv, env)
                portal.wait_ready(lambda: port_open("127.0.0.1", portal_port), timeout=60)
                self.portal_url = portal_url
        return portal_reason, worker_reason

    def lifecycle_and_decisions(self) -> None:
        portal_reason, worker_reason = self.start_portal_and_worker()
        lifecycle_reason = portal_reason or worker_reason
        if portal_reason:
            self.skip("decisions", portal_reason)
        if lifecycle_reason:
            self.skip("propagation", lifecycle_reason)
            self.skip("revocation", lifecycle_reason)
        if portal_reason:
            return
        assert self.community is not None
        settings = self.settings()
        portal_client = OidcClient(
            self.keycloak.url,
            BENCH_REALM,
            settings.keycloak.portal_client_id,
            self.secrets["portal_client"],
        )
        app_client = OidcClient(
            self.keycloak.url, BENCH_REALM, APP_CLIENT, self.secrets["app_client"]
        )
        chosen = candidates(
            self.community, self.plan.lifecycle_samples, self.seed + 11, self.used_people
        )
        self.used_people.update(c.person for c in chosen)
        lifecycle: dict[str, Any] = {}

        def propagation() -> Measurement:
            total = len(chosen)
            with (
                self.progress.stage("propagation and revocation", total=total) as stage,
                sampled(self.pids.get("sync worker"), self.run_dir / "worker.pyspy") as profile,
            ):
                lifecycle["run"] = approve_and_revoke(
                    self.portal_url,
                    lambda: portal_client,
                    app_client,
                    chosen,
                    tick=lambda detail: stage.advance(1, detail),
                )
            run = lifecycle["run"]
            m = latency_measurement(
                "propagation",
                TITLES["propagation"],
                TARGETS["propagation"],
                run.propagation,
                "p95",
                1.0,
            )
            m.numbers.update({"timeouts": run.propagation_timeouts, "errors": len(run.errors)})
            _count_timeouts(m, run.propagation_timeouts)
            m.notes += run.errors[:5]
            if profile:
                m.notes += profile[0].notes("sync worker during propagation and revocation")
            return m

        def revocation() -> Measurement:
            run = lifecycle.get("run")
            if run is None:
                raise RuntimeError("the propagation run did not complete")
            m = latency_measurement(
                "revocation",
                TITLES["revocation"],
                TARGETS["revocation"],
                run.revocation,
                "p95",
                2.0,
            )
            m.numbers["timeouts"] = run.revocation_timeouts
            m.notes.append(f"refresh refused with: {dict(refused_with)}")
            _count_timeouts(m, run.revocation_timeouts)
            return m

        def decisions() -> Measurement:
            plan = self.plan
            total = plan.approvers * plan.decisions_per_approver
            with (
                self.progress.stage("portal decisions", total=2 * total) as stage,
                sampled(self.pids.get("portal"), self.run_dir / "portal.pyspy") as profile,
            ):
                run = concurrent_decisions(
                    self.portal_url,
                    lambda: portal_client,
                    self.community,
                    plan.approvers,
                    plan.decisions_per_approver,
                    self.seed + 23,
                    self.used_people,
                    tick=lambda detail: stage.advance(1, detail),
                )
            m = latency_measurement(
                "decisions",
                TITLES["decisions"],
                TARGETS["decisions"],
                run.latencies,
                "p95",
                0.100,
            )
            if m.status == MEASURED:
                approvals = sorted(run.approvals)
                rejections = sorted(run.rejections)
                m.numbers.update(
                    {
                        "approve_p50_ms": round(percentile(approvals, 50) * 1000, 1),
                        "approve_p95_ms": round(percentile(approvals, 95) * 1000, 1),
                        "reject_p50_ms": round(percentile(rejections, 50) * 1000, 1),
                        "reject_p95_ms": round(percentile(rejections, 95) * 1000, 1),
                        "decisions_per_second": round(len(run.latencies) / run.wall_seconds, 1),
                        "submit_p50_ms": round(percentile(run.submit_latencies, 50) * 1000, 1),
                        "errors": len(run.errors),
                    }
                )
                m.notes += run.errors[:5]
                if profile:
                    m.notes += profile[0].notes("portal during decisions (filing included)")
            return m

        if lifecycle_reason is None:
            self.attempt("propagation", propagation)
            self.attempt("revocation", revocation)
        self.attempt("decisions", decisions)


def run_benchmarks(
    size: str = "ci",
    out_dir: Path | str = Path("bench/results"),
    *,
    docs_path: Path | str | None = None,
    keep_run_dir: bool = False,
    progress: Progress | None = None,
) -> Results:
    """Run every measurement at ``size`` (``ci`` or ``full``) and write the results.

    The JSON goes to ``out_dir``; the Markdown page and plots to ``docs_path`` (default:
    ``docs/benchmarks.md`` for the full size, ``<out_dir>/benchmarks.md`` for CI, so a CI run
    never overwrites the committed full-size page).
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    out_dir = Path(out_dir)
    if docs_path is None:
        docs_path = REPO / "docs" / "benchmarks.md" if size == "full" else out_dir / "benchmarks.md"
    progress = progress or Progress()
    run_dir = Path(tempfile.mkdtemp(prefix=f"iacs-bench-{size}-"))
    bench = Bench(size, run_dir, progress)
    bench.results.machine = machine_info()
    bench.results.versions = software_versions()
    progress.note(f"[bench] size {size}; servers and logs in {run_dir}")
    try:
        bench.load_directory()
        bench.start_keycloak()
        bench.apply_realm()
        bench.anchors()
        bench.cold_projection_and_no_change()
        bench.lifecycle_and_decisions()
    finally:
        bench.stop()
        bench.results.memory = bench.memory.peaks()
        bench.results.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
        bench.results.machine["load_average_end"] = machine_info()["load_average"]
        _order(bench.results)
        written = write_results(bench.results, out_dir, Path(docs_path))
        progress.note(f"[bench] results: {written['json']}  page: {written['markdown']}")
        if not keep_run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)
    return bench.results


def _count_timeouts(measurement: Measurement, timeouts: int) -> None:
    """A sample that never completed is a miss, and the headline says how many there were."""
    if timeouts and measurement.status == MEASURED:
        measurement.result += f"; {timeouts} never completed within 30 s"
        measurement.met = False


def _first_run_done(listen: str) -> bool:
    """The worker's ``/healthz`` reports a successful run (its start-up full reconcile)."""
    response = requests.get(f"http://{listen}/healthz", timeout=5)
    return response.status_code == 200 and bool(response.json().get("last_success"))


def _order(results: Results) -> None:
    """The table in the issue's order, whatever order the steps ran in."""
    order = list(TITLES)
    results.measurements.sort(key=lambda m: order.index(m.key) if m.key in order else len(order))
