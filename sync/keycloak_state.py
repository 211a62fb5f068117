"""Read the managed subtree ``/iacs`` of the realm as it is now, in bulk.

Groups: one flat, paged group search that matches every name (``search=%``, no hierarchy, full
representations with attributes and client-role mappings), pages fetched in parallel. Then a
completeness check: every group's ``subGroupCount`` must equal the children received; a group
that came back incomplete (a page shifted under concurrent writes, or a server whose search
does not treat ``%`` as a wildcard) has its children read directly, level by level. So the read
is correct whatever the search returns, and fast when it returns everything. (A search with
``populateHierarchy`` or a partial export would be one request, but both take minutes on a few
thousand groups on Keycloak 26.5; the flat pages take seconds.)

Members are read for leaf groups only, in parallel: the worker never puts anyone in an
intermediate group, and an intermediate group carries no roles or attributes (the diff keeps
them empty), so a member added there by hand gains nothing.
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


GROUP_PAGE = 500
"""Page size of the flat group search (larger pages cost more than proportionally)."""


def _search_all_groups(gateway: KeycloakGateway) -> list[dict]:
    counted = gateway.get("groups/count", search="%") or {}
    total = int(counted.get("count", 0))

    def page(first: int) -> list[dict]:
        return (
            gateway.get(
                "groups",
                search="%",
                exact="false",
                populateHierarchy="false",
                briefRepresentation="false",
                first=first,
                max=GROUP_PAGE,
            )
            or []
        )

    pages = gateway.parallel(page, range(0, total + 1, GROUP_PAGE))
    return [node for nodes in pages for node in nodes]


def read_groups(gateway: KeycloakGateway) -> dict[str, ActualGroup]:
    """Every group under (and including) ``/iacs``, by path."""
    nodes = {
        node["path"]: node
        for node in _search_all_groups(gateway)
        if node.get("path") == TOP_PATH or node.get("path", "").startswith(TOP_PATH + "/")
    }
    if TOP_PATH not in nodes:
        top = gateway.get(f"group-by-path/{TOP_GROUP}")
        if not top or top.get("path") != TOP_PATH:
            return {}
        nodes[TOP_PATH] = top

    def children(node: dict) -> list[dict]:
        return gateway.get_all(f"groups/{node['id']}/children", briefRepresentation="false")

    check = list(nodes.values())
    while check:
        received: dict[str, int] = {}
        for path in nodes:
            if path != TOP_PATH:
                parent = path.rsplit("/", 1)[0]
                received[parent] = received.get(parent, 0) + 1
        incomplete = [
            node
            for node in check
            if received.get(node["path"], 0) < (node.get("subGroupCount") or 0)
        ]
        fetched = [child for found in gateway.parallel(children, incomplete) for child in found]
        check = [child for child in fetched if child["path"] not in nodes]
        nodes.update((child["path"], child) for child in check)
    return {path: _group(node) for path, node in nodes.items()}


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
    parents = {path.rsplit("/", 1)[0] for path in groups}
    leaves = [group for path, group in groups.items() if path not in parents or group.attributes]
    members, user_ids = read_members(gateway, leaves)
    return ActualState(groups=groups, members=members, user_ids=user_ids)
