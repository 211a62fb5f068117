"""Incremental runs: the desired state moved forward for the people a change touched.

A decision in the portal changes one person's memberships. Re-projecting and re-diffing the
whole directory for it cost a second per run at 10,000 people, all of it spent confirming that
nothing else changed. Instead the worker keeps the last desired state with two indexes
(``DesiredIndex``), projects only the touched people, and ``advance`` replaces their
memberships; it returns the *scope*: the group paths whose desired state may differ (the leaves
they hold or left, and the parents created or emptied with them). ``diff`` and
``state_after`` then look at the scope only, so a run costs what the change touched.

The result is the state a full projection would give: ``tests/sync/test_incremental.py``
checks ``advance`` against ``project`` on random changes. Only changes to people and their
memberships take this path; a change to an organization, a group or a surrogate group's
associations is projected in full (``SyncWorker._people_touched``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import MappingProxyType

from .model import TOP_PATH, DesiredGroup, DesiredState


def _ancestors(path: str) -> Iterable[str]:
    """The managed parents of a leaf below ``/iacs``, nearest first (``/iacs`` itself excluded)."""
    parent = path.rsplit("/", 1)[0]
    while parent != TOP_PATH and parent:
        yield parent
        parent = parent.rsplit("/", 1)[0]


@dataclass
class DesiredIndex:
    """Lookups over a desired state that ``advance`` keeps current (owned by one worker).

    ``members``: leaf path -> the usernames that hold it (``DesiredState.members_of``).
    ``leaves_under``: intermediate path -> how many desired leaves lie beneath it; a parent is
    desired exactly while that count is positive.
    """

    members: dict[str, set[str]]
    leaves_under: dict[str, int]

    @classmethod
    def of(cls, desired: DesiredState) -> DesiredIndex:
        members: dict[str, set[str]] = {}
        for username, paths in desired.memberships.items():
            for path in paths:
                members.setdefault(path, set()).add(username)
        leaves_under: dict[str, int] = {}
        for path in members:
            for parent in _ancestors(path):
                leaves_under[parent] = leaves_under.get(parent, 0) + 1
        return cls(members=members, leaves_under=leaves_under)


def advance(
    desired: DesiredState,
    index: DesiredIndex,
    partial: DesiredState,
    touched: Iterable[str],
) -> tuple[DesiredState, frozenset[str]]:
    """``desired`` with the ``touched`` people's memberships replaced by those in ``partial``.

    ``partial`` is the projection of the touched people alone (same catalogue, same snapshot
    of organizations and groups). ``index`` must describe ``desired``; it is updated in place
    to describe the result. Returns the new desired state and the scope of paths that changed.
    """
    groups: dict[str, DesiredGroup] = dict(desired.groups)
    memberships: dict[str, frozenset[str]] = dict(desired.memberships)
    scope: set[str] = set()

    def leaf_added(path: str) -> None:
        groups[path] = partial.groups[path]
        for parent in _ancestors(path):
            count = index.leaves_under.get(parent, 0)
            index.leaves_under[parent] = count + 1
            if count == 0:
                groups[parent] = partial.groups.get(parent) or DesiredGroup(path=parent)
                scope.add(parent)

    def leaf_removed(path: str) -> None:
        groups.pop(path, None)
        for parent in _ancestors(path):
            count = index.leaves_under[parent] - 1
            if count:
                index.leaves_under[parent] = count
            else:
                del index.leaves_under[parent]
                groups.pop(parent, None)
                scope.add(parent)

    people = {name.lower() for name in touched}  # the projection keeps usernames in lower case
    for username in sorted(people):
        old = desired.memberships.get(username, frozenset())
        new = partial.memberships.get(username, frozenset())
        for path in old - new:
            holders = index.members[path]
            holders.discard(username)
            if not holders:
                del index.members[path]
                leaf_removed(path)
            scope.add(path)
        for path in new:
            scope.add(path)  # also when unchanged: a user Keycloak lacked last time is retried
            known = index.members.get(path)
            if known is None:
                index.members[path] = {username}
                leaf_added(path)
                continue
            known.add(username)
            if groups.get(path) != partial.groups[path]:
                groups[path] = partial.groups[path]
        if new:
            memberships[username] = new
        else:
            memberships.pop(username, None)

    skipped = tuple(s for s in desired.skipped if s.username not in people) + partial.skipped
    state = DesiredState(
        groups=MappingProxyType(groups),
        memberships=MappingProxyType(memberships),
        clients=desired.clients,
        skipped=skipped,
    )
    return state, frozenset(scope)
