"""One reconcile: project the snapshot, read Keycloak, diff, apply; with timings for the logs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .apply import ApplyReport, apply_plan
from .catalogue import Catalogue
from .diff import diff
from .gateway import KeycloakGateway
from .keycloak_state import read_actual
from .model import DesiredState, DirectorySnapshot, Plan
from .project import project


@dataclass
class ReconcileResult:
    """What one reconcile planned and did, and how long each stage took (seconds)."""

    desired: DesiredState
    plan: Plan
    report: ApplyReport
    timings: dict[str, float] = field(default_factory=dict)

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


def reconcile(
    gateway: KeycloakGateway, snapshot: DirectorySnapshot, catalogue: Catalogue
) -> ReconcileResult:
    """Make Keycloak's managed subtree match the snapshot; a second call writes nothing."""
    started = time.perf_counter()
    desired = project(snapshot, catalogue)
    projected = time.perf_counter()
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
        timings={
            "project": projected - started,
            "read": read - projected,
            "diff": planned - read,
            "apply": applied - planned,
            "total": applied - started,
        },
    )
