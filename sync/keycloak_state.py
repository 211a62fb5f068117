"""Read the managed subtree ``/iacs`` of the realm as it is now, in bulk.

The whole group tree comes in one request (a group search that matches every name, with the
hierarchy and full representations: attributes and client-role mappings included). Each node's
``subGroupCount`` is checked against the children received, and any node that came back
incomplete has its children fetched page by page, so the read stays correct whatever the server
does with the search. Members are then read per managed group, paged, in parallel.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

from .gateway import KeycloakGateway
from .model import TOP_GROUP, TOP_PATH, ActualGroup, ActualState


def _group(node: dict) -> ActualGroup:
    return ActualGroup(
        id=node["id"],
        path=node["path"],
        attributes=MappingProxyType(
            {name: tuple(values) for name, values in (node.get("attributes") or {}).items()}
        ),
        client_roles=MappingProxyType(
            {
                client: frozenset(roles)
                for client, roles in (node.get("clientRoles") or {}).items()
                if roles
            }
        ),
    )


def read_groups(gateway: KeycloakGateway) -> dict[str, ActualGroup]:
    """Every group under (and including) ``/iacs``, by path."""
    tops = gateway.get(
        "groups",
        search="%",
        exact="false",
        briefRepresentation="false",
        populateHierarchy="true",
        first=0,
        max=1_000_000,
    )
    top = next((node for node in tops or () if node.get("path") == TOP_PATH), None)
    if top is None:  # not found by the search: ask for it by name
        found = gateway.get("groups", search=TOP_GROUP, exact="true", briefRepresentation="false")
        top = next((node for node in found or () if node.get("path") == TOP_PATH), None)
    if top is None:
        return {}

    def children(group_id: str) -> list[dict]:
        return gateway.get_all(f"groups/{group_id}/children", briefRepresentation="false")

    groups: dict[str, ActualGroup] = {}
    stack, incomplete = [top], []
    while stack:
        while stack:
            node = stack.pop()
            groups[node["path"]] = _group(node)
            received = node.get("subGroups") or []
            if len(received) < (node.get("subGroupCount") or 0):
                incomplete.append(node["id"])
            else:
                stack.extend(received)
        for fetched in gateway.parallel(children, incomplete):
            stack.extend(fetched)
        incomplete = []
    return groups


def read_members(
    gateway: KeycloakGateway, groups: Iterable[ActualGroup]
) -> tuple[dict[str, frozenset[str]], dict[str, str]]:
    """Members of each group (path -> usernames) and the ids of the users seen."""
    groups = list(groups)

    def fetch(group: ActualGroup) -> list[dict]:
        return gateway.get_all(f"groups/{group.id}/members", briefRepresentation="true")

    members: dict[str, frozenset[str]] = {}
    user_ids: dict[str, str] = {}
    for group, users in zip(groups, gateway.parallel(fetch, groups), strict=True):
        if users:
            members[group.path] = frozenset(user["username"] for user in users)
            user_ids.update({user["username"]: user["id"] for user in users})
    return members, user_ids


def read_actual(gateway: KeycloakGateway) -> ActualState:
    """The managed subtree as Keycloak has it now."""
    groups = read_groups(gateway)
    members, user_ids = read_members(gateway, groups.values())
    return ActualState(groups=groups, members=members, user_ids=user_ids)
