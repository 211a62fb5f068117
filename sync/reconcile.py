"""One reconcile: project the snapshot, read Keycloak, diff, apply; with timings for the logs."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from iacs.catalogue import Catalogue
from iacs.directory import DirectorySnapshot

from .apply import ApplyReport, apply_plan
from .diff import diff
from .gateway import KeycloakGateway
from .incremental import DesiredIndex, advance
from .keycloak_state import read_actual
from .model import ActualGroup, ActualState, DesiredState, Plan
from .pending_logouts import PendingLogouts
from .project import project


class ReconcileProgress(Protocol):
    """Told how a long reconcile goes (``iacs sync once`` draws a bar from it)."""

    def stage(self, name: str, total: int | None = None) -> None:
        """A stage begins; ``total`` is how many requests it will make, when known."""

    def advance(self, count: int = 1) -> None:
        """``count`` more requests of the current stage are done."""


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


def state_after(
    desired: DesiredState,
    actual: ActualState,
    report: ApplyReport,
    *,
    scope: Collection[str] | None = None,
    members: Mapping[str, Collection[str]] | None = None,
) -> ActualState:
    """Keycloak's managed state once ``report``'s apply of the plan for ``desired`` succeeded.

    The worker diffs its incremental runs against this instead of reading Keycloak again; the
    periodic full reconcile re-reads Keycloak and corrects anything changed behind its back.
    With a ``scope`` (an incremental run), only those paths are rebuilt and the rest of
    ``actual`` is carried over as it is. Users the apply could not find are left out of the
    members, so the next full run tries them again.
    """
    missing = set(report.missing_users)
    wanted_members = members if members is not None else desired.members_of()
    if scope is None:
        groups: dict[str, ActualGroup] = {}
        held: dict[str, frozenset[str]] = {}
        paths: Collection[str] = desired.groups
    else:
        groups, held, paths = dict(actual.groups), dict(actual.members), scope
    for path in paths:
        group = desired.groups.get(path)
        if group is None:
            groups.pop(path, None)
            held.pop(path, None)
            continue
        group_id = report.created.get(path)
        groups[path] = ActualGroup(
            id=group_id if group_id is not None else actual.groups[path].id,
            path=path,
            attributes=group.attributes,
            client_roles=group.client_roles,
        )
        names = frozenset(wanted_members.get(path, ())) - missing
        if names:
            held[path] = names
        else:
            held.pop(path, None)
    return ActualState(groups=groups, members=held, user_ids={**actual.user_ids, **report.user_ids})


@dataclass
class Written:
    """What the worker wrote to Keycloak while a drift check was reading it (see ``overlay``)."""

    groups: set[str] = field(default_factory=set)
    """Groups created, or whose attributes or role mappings were written."""
    deleted: set[str] = field(default_factory=set)
    members: dict[str, dict[str, bool]] = field(default_factory=dict)
    """Per group path, each username added (True) or removed (False), the last write winning."""

    def record(self, plan: Plan, report: ApplyReport) -> None:
        missing = set(report.missing_users)
        self.groups.update(group.path for group in plan.create_groups)
        self.groups.update(update.path for update in plan.update_attributes)
        self.groups.update(change.path for change in plan.role_changes)
        self.deleted.update(plan.delete_groups)
        for change in plan.add_members:
            if change.username not in missing:
                self.members.setdefault(change.path, {})[change.username] = True
        for change in plan.remove_members:
            self.members.setdefault(change.path, {})[change.username] = False


def overlay(read: ActualState, known: ActualState, written: Written) -> ActualState:
    """Keycloak as a long read found it, with the worker's writes since the read began on top.

    Groups the worker created, changed or deleted meanwhile are taken from ``known`` (the state
    its writes left); memberships it wrote are replayed one by one over the read, so that drift
    in the same group (someone else's change, which the read saw) is still found. The worker's
    drift check diffs against the result: whatever differs from the directory is corrected.
    """
    gone = tuple(f"{path}/" for path in written.deleted)
    stale = written.groups | written.deleted

    def current(path: str) -> bool:
        return path not in stale and not path.startswith(gone)

    groups = {path: group for path, group in read.groups.items() if current(path)}
    for path in stale:
        if path in known.groups:
            groups[path] = known.groups[path]
    members: dict[str, frozenset[str]] = {}
    for path, group in groups.items():
        seen = read.groups.get(path)
        if seen is not None and seen.id == group.id:  # the same group the read saw
            names = read.members.get(path, frozenset())
        else:  # created since the read: only the worker has put anyone in it
            names = known.members.get(path, frozenset())
        changes = written.members.get(path)
        if changes:
            names = frozenset(
                {name for name in names if changes.get(name, True)}
                | {name for name, added in changes.items() if added}
            )
        if names:
            members[path] = names
    return ActualState(groups=groups, members=members, user_ids={**read.user_ids, **known.user_ids})


def reconcile(
    gateway: KeycloakGateway,
    snapshot: DirectorySnapshot,
    catalogue: Catalogue,
    actual: ActualState | None = None,
    memo: dict | None = None,
    pending: PendingLogouts | None = None,
    progress: ReconcileProgress | None = None,
) -> ReconcileResult:
    """Make Keycloak's managed subtree match the snapshot; a second call writes nothing.

    ``actual`` is the state Keycloak is known to be in (the worker's cache after its last
    apply); without it Keycloak is read in full. ``memo`` is passed to ``project``; ``pending``
    to ``apply_plan`` (the durable record of owed logouts); ``progress`` is told of each
    request to Keycloak.
    """
    started = time.perf_counter()
    desired = project(snapshot, catalogue, memo)
    projected = time.perf_counter()
    if progress is not None:
        gateway.on_request = progress.advance
    try:
        if actual is None:
            if progress is not None:
                progress.stage("read Keycloak")
            actual = read_actual(gateway)
        stages = {"project": projected - started, "read": time.perf_counter() - projected}
        return _diff_and_apply(
            gateway,
            desired,
            actual,
            desired.members_of(),
            None,
            started,
            stages,
            pending,
            progress,
        )
    finally:
        gateway.on_request = None


def reconcile_people(
    gateway: KeycloakGateway,
    snapshot: DirectorySnapshot,
    catalogue: Catalogue,
    *,
    previous: DesiredState,
    index: DesiredIndex,
    actual: ActualState,
    touched: Collection[str],
    memo: dict | None = None,
    pending: PendingLogouts | None = None,
) -> ReconcileResult:
    """An incremental run: only the ``touched`` people are projected, diffed and applied.

    ``previous`` and ``index`` describe what the last run made Keycloak hold (``actual``);
    ``index`` is moved forward in place (see ``sync.incremental``). ``snapshot`` must hold the
    touched people's current memberships and the current organizations and groups.
    """
    started = time.perf_counter()
    people = {name: snapshot.people.get(name, frozenset()) for name in touched}
    partial = project(dataclasses.replace(snapshot, people=people), catalogue, memo)
    desired, scope = advance(previous, index, partial, touched)
    stages = {"project": time.perf_counter() - started}
    return _diff_and_apply(gateway, desired, actual, index.members, scope, started, stages, pending)


def _diff_and_apply(
    gateway: KeycloakGateway,
    desired: DesiredState,
    actual: ActualState,
    members: Mapping[str, Collection[str]],
    scope: Collection[str] | None,
    started: float,
    stages: dict[str, float],
    pending: PendingLogouts | None = None,
    progress: ReconcileProgress | None = None,
) -> ReconcileResult:
    """The part of every run once the desired state is known: diff, apply, record."""
    before = time.perf_counter()
    plan = diff(desired, actual, scope=scope, members=members)
    planned = time.perf_counter()
    if progress is not None:  # about one request per change (lookups of new members aside)
        progress.stage("write Keycloak", total=sum(plan.summary().values()))
    report = apply_plan(gateway, plan, actual, pending) if not plan.is_empty else ApplyReport()
    applied = time.perf_counter()
    return ReconcileResult(
        desired=desired,
        plan=plan,
        report=report,
        after=state_after(desired, actual, report, scope=scope, members=members),
        timings={
            **stages,
            "diff": planned - before,
            "apply": applied - planned,
            "total": applied - started,
        },
    )
