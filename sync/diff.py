"""The difference between the desired and the actual managed state, as a plan of writes (pure).

Only groups under ``/iacs`` are ever in either state, so nothing else in the realm is planned.
Groups that no longer have members are deleted rather than emptied: they are derived data, a
later membership recreates them, and a smaller tree keeps Keycloak's group APIs fast. Only the
topmost group of an unwanted subtree is deleted (Keycloak deletes the children with it).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping

from .model import (
    AFFILIATION_ATTRIBUTE_PREFIX,
    ActualState,
    AttributeUpdate,
    DesiredState,
    MemberChange,
    Plan,
    RoleMappingChange,
)


def _depth(path: str) -> int:
    return path.count("/")


def _normalized(attributes: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    return {name: tuple(values) for name, values in attributes.items()}


def _claim(values: tuple[str, ...]) -> dict | None:
    try:
        value = json.loads(values[0]) if len(values) == 1 else None
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _is_reduction(
    before: Mapping[str, tuple[str, ...]], after: Mapping[str, tuple[str, ...]]
) -> bool:
    """True when an affiliation attribute lost an application role or an organization.

    Such a change takes authority away from the group's members, so they are logged out (LC-1),
    as when they lose the membership itself. A change that only adds is not a reduction.
    """
    for name, old_values in before.items():
        if not name.startswith(AFFILIATION_ATTRIBUTE_PREFIX):
            continue
        new_values = after.get(name)
        if new_values == old_values:
            continue
        old, new = _claim(old_values), _claim(new_values or ())
        if old is None or new is None:
            return True
        for key in ("app_roles", "organizations"):
            if not set(old.get(key) or ()) <= set(new.get(key) or ()):
                return True
        for key in ("role", "organization", "group", "surrogate", "npi"):
            if old.get(key) != new.get(key):
                return True
    return False


def diff(
    desired: DesiredState,
    actual: ActualState,
    *,
    scope: Collection[str] | None = None,
    members: Mapping[str, Collection[str]] | None = None,
) -> Plan:
    """The writes that turn ``actual`` into ``desired``; an empty plan when they agree.

    ``scope`` limits the comparison to those group paths (an incremental run passes the paths
    its change can have affected, see ``sync.incremental``), so that a run costs what the change
    touched rather than the size of the realm; without it every path of both states is compared.
    ``members`` is ``desired.members_of()`` when the caller already has it.
    """
    wanted_members = members if members is not None else desired.members_of()
    if scope is None:
        paths = set(desired.groups) | set(actual.groups) | set(actual.members)
    else:
        paths = set(scope)
    wanted = sorted(path for path in paths if path in desired.groups)
    creates = tuple(
        desired.groups[path]
        for path in sorted(
            (path for path in wanted if path not in actual.groups), key=lambda p: (_depth(p), p)
        )
    )

    updates: list[AttributeUpdate] = []
    role_changes: list[RoleMappingChange] = []
    reduced_groups: set[str] = set()
    for path in wanted:
        group = desired.groups[path]
        current = actual.groups.get(path)
        if current is not None:
            want = _normalized(group.attributes)
            have = _normalized(current.attributes)
            if want != have:
                updates.append(AttributeUpdate(path=path, attributes=group.attributes))
                if _is_reduction(have, want):
                    reduced_groups.add(path)
        for client_id in desired.clients:
            want_roles = group.client_roles.get(client_id, frozenset())
            have_roles = (
                current.client_roles.get(client_id, frozenset()) if current else frozenset()
            )
            if want_roles != have_roles:
                change = RoleMappingChange(
                    path=path,
                    client_id=client_id,
                    add=frozenset(want_roles - have_roles),
                    remove=frozenset(have_roles - want_roles),
                )
                role_changes.append(change)
                if change.remove:
                    reduced_groups.add(path)

    deletes = tuple(
        path
        for path in sorted(paths)
        if path in actual.groups
        and path not in desired.groups
        and path.rsplit("/", 1)[0] in desired.groups
    )

    adds: list[MemberChange] = []
    removes: list[MemberChange] = []
    logouts: set[str] = set()
    for path in sorted(paths):
        want_names = frozenset(wanted_members.get(path, ()))
        have_names = actual.members.get(path, frozenset())
        adds.extend(MemberChange(name, path) for name in sorted(want_names - have_names))
        lost = have_names - want_names
        if not lost:
            continue
        logouts |= lost
        if path in desired.groups:  # members of deleted groups leave with the group
            removes.extend(MemberChange(name, path) for name in sorted(lost))
    for path in reduced_groups:
        logouts |= actual.members.get(path, frozenset()) & frozenset(wanted_members.get(path, ()))

    return Plan(
        create_groups=creates,
        update_attributes=tuple(updates),
        role_changes=tuple(role_changes),
        add_members=tuple(adds),
        remove_members=tuple(removes),
        delete_groups=deletes,
        logouts=tuple(sorted(logouts)),
    )
