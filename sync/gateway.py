"""The sync worker's one connection to Keycloak's admin API, through python-keycloak.

One ``KeycloakAdmin`` (one token, one pooled HTTP session) serves every read and write; a small
thread pool runs the many independent per-group reads and writes of a reconcile side by side.
Every admin-API write goes through ``write`` so that it is counted (a second run must write
nothing) and so that the answers "already there" (409) and "already gone" (404) count as done.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from keycloak import KeycloakAdmin
from keycloak.exceptions import KeycloakError

from iacs.settings import KeycloakSettings

T = TypeVar("T")
R = TypeVar("R")
PAGE = 5000
"""Page size of bulk reads (group members, users)."""


class KeycloakUnavailable(RuntimeError):
    """Keycloak did not answer or answered with an error the worker cannot handle now."""


def status_of(error: Exception) -> int | None:
    """The HTTP status carried by a python-keycloak error, if any."""
    return getattr(error, "response_code", None)


class KeycloakGateway:
    """The admin API of the managed realm, with a write counter and parallel helpers."""

    def __init__(self, admin: KeycloakAdmin, workers: int = 8) -> None:
        self.admin = admin
        self.realm = admin.connection.realm_name
        self.workers = workers
        self.writes: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._clients: dict[str, str] = {}
        self._roles: dict[str, dict[str, dict]] = {}
        self._federated: bool | None = None

    @classmethod
    def from_settings(cls, settings: KeycloakSettings, workers: int = 8) -> KeycloakGateway:
        """Connect as the sync worker's confidential client (client-credentials grant)."""
        admin = KeycloakAdmin(
            server_url=settings.url.rstrip("/") + "/",
            realm_name=settings.realm,
            user_realm_name=settings.realm,
            client_id=settings.sync_client_id,
            client_secret_key=settings.sync_client_secret.get_secret_value(),
            grant_type="client_credentials",
            timeout=30,
            pool_maxsize=workers,
        )
        return cls(admin, workers=workers)

    @property
    def total_writes(self) -> int:
        with self._lock:
            return sum(self.writes.values())

    # -- reads -------------------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> Any:
        """GET an admin path relative to the realm (``groups/...``) and decode its JSON."""
        url = f"admin/realms/{self.realm}/{path}"
        try:
            response = self.admin.connection.raw_get(url, **params)
        except KeycloakError as exc:
            raise KeycloakUnavailable(f"GET {path}: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise KeycloakUnavailable(f"GET {path}: HTTP {response.status_code} {response.text}")
        return response.json()

    def get_all(self, path: str, **params: Any) -> list:
        """Every item of a paged list endpoint, ``PAGE`` at a time."""
        items: list = []
        first = 0
        while True:
            page = self.get(path, first=first, max=PAGE, **params) or []
            items.extend(page)
            if len(page) < PAGE:
                return items
            first += PAGE

    def parallel(self, function: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``function`` over ``items`` on the pool (same order); the first error is raised."""
        items = list(items)
        if len(items) <= 1 or self.workers <= 1:
            return [function(item) for item in items]
        self.admin.connection._refresh_if_required()  # one refresh, not one per thread
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(function, items))

    def client_uuid(self, client_id: str) -> str:
        """Keycloak's internal id of an application client (cached)."""
        if client_id not in self._clients:
            found = self.get("clients", clientId=client_id) or []
            if not found:
                raise KeycloakUnavailable(f"client {client_id!r} does not exist in the realm")
            self._clients[client_id] = found[0]["id"]
        return self._clients[client_id]

    def client_roles(self, client_id: str) -> dict[str, dict]:
        """The client's roles by name (cached): the representations role mappings need."""
        if client_id not in self._roles:
            roles = self.get(f"clients/{self.client_uuid(client_id)}/roles") or []
            self._roles[client_id] = {role["name"]: role for role in roles}
        return self._roles[client_id]

    def has_user_federation(self) -> bool:
        """Whether the realm's users come from LDAP (asked once; it decides how to look up).

        Read from one user's ``federationLink``: the sync client may not read the realm's
        components, and needs no right beyond the users it already manages.
        """
        if self._federated is None:
            sample = self.get("users", first=0, max=1, briefRepresentation="false") or []
            self._federated = any(user.get("federationLink") for user in sample)
        return self._federated

    def find_user_id(self, username: str) -> str | None:
        """The user's id by exact username; the search imports a federated user not yet seen."""
        found = self.get("users", username=username, exact="true", briefRepresentation="true")
        for user in found or ():
            if user.get("username", "").lower() == username.lower():
                return user["id"]
        return None

    # -- writes ------------------------------------------------------------------------------

    def write(self, kind: str, call: Callable[[], T], tolerate: tuple[int, ...] = ()) -> T | None:
        """Run one admin-API write, count it, and treat the ``tolerate`` statuses as done."""
        with self._lock:
            self.writes[kind] += 1
        try:
            return call()
        except KeycloakError as exc:
            if status_of(exc) in tolerate:
                return None
            if status_of(exc) is None or status_of(exc) >= 500:
                raise KeycloakUnavailable(f"{kind}: {exc}") from exc
            raise
