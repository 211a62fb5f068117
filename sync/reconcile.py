"""One reconcile: project the snapshot, read Keycloak, diff, apply; with timings for the logs."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from .apply import ApplyReport, apply_plan
from .catalogue import Catalogue
from .diff import diff
from .gateway import KeycloakGateway
from .keycloak_state import read_actual
from .model import ActualGroup, ActualState, DesiredState, DirectorySnapshot, Plan
from .project import project


@dataclass
class ReconcileResult:
    """What one reconcile planned and did, and how long each stage took (seconds)."""

    desired: DesiredState
    plan: Plan
    report: ApplyReport
    after: ActualState
    """Keycloak's managed state after this reconcile: what the next incremental run diffs."""
    timings: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        return json.dumps(self.summary())

    def summary(self) -> dict[str, object]:
        return {
            "people": len(self.desired.memberships),
            "groups": len(self.desired.groups),
            "skipped_memberships": len(self.desired.skipped),
            "plan": self.plan.summary(),
            "writes": self.report.total_writes,
            "missing_users": len(self.report.missing_users),
            "problems": len(self.report.problems),
            "seconds": {stage: round(value, 3) for stage, value in self.timings.items()},
        }


def state_after(desired: DesiredState, actual: ActualState, report: ApplyReport) -> ActualState:
    """Keycloak's managed state once ``report``'s apply of the plan for ``desired`` succeeded.

    The worker diffs its incremental runs against this instead of reading Keycloak again; the
    periodic full reconcile re-reads Keycloak and corrects anything changed behind its back.
    """
    if not report.group_ids and not report.writes:  # nothing was applied: nothing changed
        report.group_ids = {path: group.id for path, group in actual.groups.items()}
        report.user_ids = {**actual.user_ids, **report.user_ids}
    missing = set(report.missing_users)
    members = {path: frozenset(names - missing) for path, names in desired.members_of().items()}
    return ActualState(
        groups={
            path: ActualGroup(
                id=report.group_ids[path],
                path=path,
                attributes=group.attributes,
                client_roles=group.client_roles,
            )
            for path, group in desired.groups.items()
        },
        members={path: names for path, names in members.items() if names},
        user_ids=dict(report.user_ids),
    )


def reconcile(
    gateway: KeycloakGateway,
    snapshot: DirectorySnapshot,
    catalogue: Catalogue,
    actual: ActualState | None = None,
    memo: dict | None = None,
) -> ReconcileResult:
    """Make Keycloak's managed subtree match the snapshot; a second call writes nothing.

    ``actual`` is the state Keycloak is known to be in (the worker's cache after its last
    apply); without it Keycloak is read in full. ``memo`` is passed to ``project``.
    """
    started = time.perf_counter()
    desired = project(snapshot, catalogue, memo)
    projected = time.perf_counter()
    if actual is None:
        actual = read_actual(gateway)
    read = time.perf_counter()
    plan = diff(desired, actual)
    planned = time.perf_counter()
    report = apply_plan(gateway, plan, actual) if not plan.is_empty else ApplyReport()
    applied = time.perf_counter()
    return ReconcileResult(
        desired=desired,
        plan=plan,
        report=report,
        after=state_after(desired, actual, report),
        timings={
            "project": projected - started,
            "read": read - projected,
            "diff": planned - read,
            "apply": applied - planned,
            "total": applied - started,
        },
    )
