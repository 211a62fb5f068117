"""Apply a plan to Keycloak: the only code of the worker that writes to the admin API.

Every write is idempotent ("already exists" and "already gone" are success), so a plan that was
interrupted can simply be planned again from a fresh read. Writes of one kind run side by side
on the gateway's pool; kinds run in the plan's order (parents before children, memberships
removed before groups deleted, logouts last so a new login cannot pick up the old authority).
A user who is not in Keycloak even after an exact-username search (which imports a federated
user) is skipped and reported, never fatal.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import groupby

from .model import ActualState, DesiredGroup, MemberChange, Plan, RoleMappingChange
from .pending_logouts import PendingLogouts
from .ports import KeycloakWrites

log = logging.getLogger("sync.apply")
BULK_USER_LOOKUP = 50
USER_PAGE = 200
"""Users listed per request. On a realm federated from LDAP, listing users imports the ones
Keycloak has not seen yet, inside the request and its transaction: a page of thousands outlives
the client's timeout while holding the user table's lock, and every later request fails behind it.
Small pages keep each import short."""
"""Above this many unknown usernames, list the realm's users once instead of one search each."""


@dataclass
class ApplyReport:
    """What an apply did: writes by kind, and what it had to skip."""

    writes: Counter[str] = field(default_factory=Counter)
    missing_users: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    created: dict[str, str] = field(default_factory=dict)
    """Path -> id of each group this apply created (for the worker's cached state)."""
    user_ids: dict[str, str] = field(default_factory=dict)
    """Username -> id of every user the apply knew or found."""

    @property
    def total_writes(self) -> int:
        return sum(self.writes.values())


def apply_plan(
    gateway: KeycloakWrites,
    plan: Plan,
    actual: ActualState,
    pending: PendingLogouts | None = None,
) -> ApplyReport:
    """Write ``plan`` (computed against ``actual``) to Keycloak.

    With ``pending``, the plan's logouts are recorded there before the first write, and each
    leaves it once done (see ``sync.pending_logouts``).
    """
    before = Counter(gateway.writes)
    report = ApplyReport()
    if pending is not None:
        pending.add(plan.logouts)
    group_ids = _GroupIds(actual, report.created)

    for _, same_depth in groupby(plan.create_groups, key=lambda group: group.path.count("/")):
        level = list(same_depth)
        for group, group_id in zip(
            level,
            gateway.parallel(lambda g: _create_group(gateway, g, group_ids), level),
            strict=True,
        ):
            group_ids[group.path] = group_id

    gateway.parallel(
        lambda update: gateway.write(
            "update_group",
            lambda: gateway.admin.update_group(
                group_ids[update.path],
                {
                    "name": update.path.rsplit("/", 1)[1],
                    "attributes": {k: list(v) for k, v in update.attributes.items()},
                },
            ),
        ),
        plan.update_attributes,
    )

    for problem in gateway.parallel(
        lambda change: _change_roles(gateway, change, group_ids[change.path]), plan.role_changes
    ):
        if problem:
            report.problems.append(problem)

    user_ids = dict(actual.user_ids)
    _resolve_users(gateway, {change.username for change in plan.add_members}, user_ids)
    report.missing_users = sorted({change.username for change in plan.add_members} - set(user_ids))
    for username in report.missing_users:
        log.warning("user not in Keycloak: membership skipped", extra={"username": username})

    def add(change: MemberChange) -> None:
        if change.username in user_ids:
            gateway.write(
                "add_member",
                lambda: gateway.admin.group_user_add(
                    user_ids[change.username], group_ids[change.path]
                ),
            )

    def remove(change: MemberChange) -> None:
        gateway.write(
            "remove_member",
            lambda: gateway.admin.group_user_remove(
                user_ids[change.username], group_ids[change.path]
            ),
            tolerate=(404,),
        )

    gateway.parallel(add, plan.add_members)
    gateway.parallel(remove, plan.remove_members)
    gateway.parallel(
        lambda path: gateway.write(
            "delete_group", lambda: gateway.admin.delete_group(group_ids[path]), tolerate=(404,)
        ),
        plan.delete_groups,
    )
    report.problems += log_out(gateway, plan.logouts, user_ids, pending)

    report.writes = Counter(gateway.writes)
    report.writes.subtract(before)
    report.writes = +report.writes
    report.user_ids = user_ids
    return report


@dataclass
class FaultInjection:
    """Test-only hooks at the points where a failure costs the most; all None in production.

    ``before_logout`` is called with the usernames about to be logged out, after their
    memberships were removed and before the logout: a test makes it raise (Keycloak failing
    there) or block until the worker process is killed.
    """

    before_logout: Callable[[Sequence[str]], None] | None = None


FAULT_INJECTION = FaultInjection()


def log_out(
    gateway: KeycloakWrites,
    usernames: Iterable[str],
    user_ids: dict[str, str],
    pending: PendingLogouts | None = None,
) -> list[str]:
    """End every session of ``usernames`` (logout, then the sweep); returns the problems.

    Users unknown to ``user_ids`` are looked up by exact username; one Keycloak does not know
    has no session to end. A name leaves ``pending`` once its logout and sweep succeeded; one
    whose session outlived the sweep stays, to be tried again by the next run.
    """
    names = sorted(set(usernames))
    if not names:
        return []
    unknown = [name for name in names if name not in user_ids]
    for name, user_id in zip(unknown, gateway.parallel(gateway.find_user_id, unknown), strict=True):
        if user_id:
            user_ids[name] = user_id
    leaving = [name for name in names if name in user_ids]
    if FAULT_INJECTION.before_logout is not None:
        FAULT_INJECTION.before_logout(leaving)
    sessions = gateway.parallel(lambda name: gateway.session_ids(user_ids[name]), leaving)
    gateway.parallel(
        lambda username: gateway.write(
            "logout", lambda: gateway.admin.user_logout(user_ids[username]), tolerate=(404,)
        ),
        leaving,
    )
    owner = {
        session: name for name, found in zip(leaving, sessions, strict=True) for session in found
    }
    survivors = _end_sessions_that_outlived_logout(gateway, list(owner))
    if pending is not None:
        pending.discard(set(names) - {owner[session] for session in survivors})
    return [f"session {session} outlived the logout" for session in survivors]


class _GroupIds:
    """Group ids by path: the ones this apply created, then the ones known before it."""

    def __init__(self, actual: ActualState, created: dict[str, str]) -> None:
        self._actual = actual.groups
        self._created = created

    def __getitem__(self, path: str) -> str:
        found = self._created.get(path)
        return found if found is not None else self._actual[path].id

    def __setitem__(self, path: str, group_id: str) -> None:
        self._created[path] = group_id

    def get(self, path: str) -> str | None:
        found = self._created.get(path)
        if found is not None:
            return found
        group = self._actual.get(path)
        return group.id if group is not None else None


SWEEP_DELAY_SECONDS = 0.25
SWEEP_ROUNDS = 5


def _end_sessions_that_outlived_logout(gateway: KeycloakWrites, sessions: list[str]) -> list[str]:
    """Delete, by id, the sessions a user had before the logout; the ones still there remain.

    Keycloak 26 loses a race (measured: 5 logouts in 40 with a refresh in flight): a refresh
    that began before the logout writes its session back after it, invisible to the user's
    session list, and its refresh token keeps working. The session keeps its id, so a short
    while after the logout (the in-flight refresh done) each id known beforehand is deleted
    again, until Keycloak answers that it is gone. Returns the ids that never went (reported
    as problems: the next full run reads Keycloak again, and an operator is told).
    """
    for _ in range(SWEEP_ROUNDS):
        if not sessions:
            return []
        time.sleep(SWEEP_DELAY_SECONDS)
        existed = gateway.parallel(gateway.end_session, sessions)
        sessions = [session for session, alive in zip(sessions, existed, strict=True) if alive]
    for session in sessions:
        log.error("a session outlived its logout", extra={"session": session})
    return sessions


def _create_group(gateway: KeycloakWrites, group: DesiredGroup, group_ids: _GroupIds) -> str:
    payload = {
        "name": group.name,
        "attributes": {name: list(values) for name, values in group.attributes.items()},
    }
    parent = group_ids.get(group.parent_path) if group.parent_path else None
    created = gateway.write(
        "create_group",
        lambda: gateway.admin.create_group(payload, parent=parent, skip_exists=True),
    )
    if created:
        return created
    # 409: someone created it since our read; take it as it is (the next run reconciles it).
    existing = gateway.admin.get_group_by_path(group.path)
    return existing["id"]


def _change_roles(gateway: KeycloakWrites, change: RoleMappingChange, group_id: str) -> str:
    roles = gateway.client_roles(change.client_id)
    undefined = sorted((change.add | change.remove) - set(roles))
    if undefined:
        message = f"client {change.client_id!r} has no roles {undefined} (realm out of date?)"
        log.error(message, extra={"group": change.path})
    client_uuid = gateway.client_uuid(change.client_id)
    add = [roles[name] for name in sorted(change.add) if name in roles]
    remove = [roles[name] for name in sorted(change.remove) if name in roles]
    if add:
        gateway.write(
            "add_role_mapping",
            lambda: gateway.admin.assign_group_client_roles(group_id, client_uuid, add),
        )
    if remove:
        gateway.write(
            "remove_role_mapping",
            lambda: gateway.admin.delete_group_client_roles(group_id, client_uuid, remove),
            tolerate=(404,),
        )
    return message if undefined else ""


def _resolve_users(gateway: KeycloakWrites, usernames: set[str], user_ids: dict[str, str]) -> None:
    """Fill ``user_ids`` for ``usernames``: one listing when many are unknown, then searches.

    The listing is only for a realm that holds its users itself: on a federated realm every
    page imports from LDAP and re-reads it up to ``first + max``, so pages get slower and slower;
    there, exact-username searches (each importing one person) run in parallel instead.
    """
    unknown = sorted(usernames - set(user_ids))
    if len(unknown) > BULK_USER_LOOKUP and not gateway.has_user_federation():
        wanted = set(unknown)
        first = 0
        while True:
            page = (
                gateway.get("users", first=first, max=USER_PAGE, briefRepresentation="true") or []
            )
            user_ids.update(
                {user["username"]: user["id"] for user in page if user["username"] in wanted}
            )
            if len(page) < USER_PAGE:
                break
            first += USER_PAGE
        unknown = sorted(usernames - set(user_ids))
    for username, user_id in zip(
        unknown, gateway.parallel(gateway.find_user_id, unknown), strict=True
    ):
        if user_id:
            user_ids[username] = user_id
