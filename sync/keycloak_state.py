"""Read the managed subtree ``/iacs`` of the realm as it is now, in bulk.

Groups: one flat, paged group search that matches every name (``search=%``, no hierarchy, full
representations with attributes and client-role mappings), pages fetched in parallel. Then a
completeness check: every group's ``subGroupCount`` must equal the children received; a group
that came back incomplete (a page shifted under concurrent writes, or a server whose search
does not treat ``%`` as a wildcard) has its children read directly, level by level. So the read
is correct whatever the search returns, and fast when it returns everything. (A search with
``populateHierarchy`` or a partial export would be one request, but both take minutes on a few
thousand groups on Keycloak 26.5; the flat pages take seconds.)

Members are read for leaf groups only, in parallel, starting as soon as a page names a leaf
(so the member reads overlap the group pages): the worker never puts anyone in an
intermediate group, and an intermediate group carries no roles or attributes (the diff keeps
them empty), so a member added there by hand gains nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed
from types import MappingProxyType

from .gateway import KeycloakGateway
from .model import TOP_GROUP, TOP_PATH, ActualGroup, ActualState
from .project import LEAF_NAMES


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


def _search_all_groups(
    gateway: KeycloakGateway, pool: Executor, on_node: Callable[[dict], None]
) -> list[dict]:
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

    nodes: list[dict] = []
    for done in as_completed(
        [pool.submit(page, first) for first in range(0, total + 1, GROUP_PAGE)]
    ):
        for node in done.result():
            nodes.append(node)
            on_node(node)
    return nodes


def _managed(path: str) -> bool:
    return path == TOP_PATH or path.startswith(TOP_PATH + "/")


def read_groups(
    gateway: KeycloakGateway,
    pool: Executor | None = None,
    on_node: Callable[[dict], None] = lambda node: None,
) -> dict[str, ActualGroup]:
    """Every group under (and including) ``/iacs``, by path.

    ``on_node`` sees each managed group as its page arrives (``read_actual`` starts reading the
    members of leaves while the other pages are still coming).
    """
    if pool is None:
        with ThreadPoolExecutor(max_workers=gateway.workers) as own:
            return read_groups(gateway, own, on_node)
    nodes: dict[str, dict] = {}

    def keep(node: dict) -> None:
        if _managed(node.get("path", "")):
            nodes[node["path"]] = node
            on_node(node)

    _search_all_groups(gateway, pool, keep)
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
        fetched = [child for found in pool.map(children, incomplete) for child in found]
        check = [child for child in fetched if child["path"] not in nodes]
        for child in check:
            nodes[child["path"]] = child
            on_node(child)
    return {path: _group(node) for path, node in nodes.items()}


def read_actual(gateway: KeycloakGateway) -> ActualState:
    """The managed subtree as Keycloak has it now (members of leaves read as pages arrive)."""
    leaf_names = frozenset(LEAF_NAMES.values())

    def fetch(group_id: str) -> list[dict]:
        return gateway.get_all(f"groups/{group_id}/members", briefRepresentation="true")

    gateway.admin.connection._refresh_if_required()  # one refresh, not one per thread
    with ThreadPoolExecutor(max_workers=gateway.workers) as pool:
        pending: dict[str, Future] = {}

        def start_members(node: dict) -> None:
            if node.get("name") in leaf_names and not node.get("subGroupCount"):
                pending[node["path"]] = pool.submit(fetch, node["id"])

        groups = read_groups(gateway, pool, start_members)
        parents = {path.rsplit("/", 1)[0] for path in groups}
        leaves = {
            path: group for path, group in groups.items() if path not in parents or group.attributes
        }
        for path, group in leaves.items():
            if path not in pending:
                pending[path] = pool.submit(fetch, group.id)
        members: dict[str, frozenset[str]] = {}
        user_ids: dict[str, str] = {}
        for path in leaves:
            users = pending[path].result()
            if users:
                members[path] = frozenset(user["username"] for user in users)
                user_ids.update({user["username"]: user["id"] for user in users})
    return ActualState(groups=groups, members=members, user_ids=user_ids)
