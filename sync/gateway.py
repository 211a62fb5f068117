"""The sync worker's one connection to Keycloak's admin API, through python-keycloak.

One ``KeycloakAdmin`` (one token, one pooled HTTP session) serves every read and write; a small
thread pool runs the many independent per-group reads and writes of a reconcile side by side.
Every admin-API write goes through ``write`` so that it is counted (a second run must write
nothing) and so that the answers "already there" (409) and "already gone" (404) count as done.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

import certifi
import requests
import urllib3
from keycloak import KeycloakAdmin
from keycloak.exceptions import KeycloakError

from iacs.settings import KeycloakSettings

from .model import TOP_GROUP

T = TypeVar("T")
R = TypeVar("R")
PAGE = 5000
"""Page size of bulk reads (group members, users)."""
READ_WORKERS = 16
"""Concurrent requests of a full read: reads wait on Keycloak more than they use this process
(8 -> 16 took a full read of 21,000 groups from 59 s to 51 s)."""


class KeycloakUnavailable(RuntimeError):
    """Keycloak did not answer or answered with an error the worker cannot handle now."""


def status_of(error: Exception) -> int | None:
    """The HTTP status carried by a python-keycloak error, if any."""
    return getattr(error, "response_code", None)


def _read_environment_once(admin: KeycloakAdmin, url: str) -> None:
    """Resolve the environment's proxy and CA-bundle settings once, not on every write.

    requests re-reads the whole environment for them on each request (its ``trust_env``): with
    a large environment that cost 1.5 ms per request (measured). The proxies for Keycloak's URL
    (``NO_PROXY`` honoured) and the CA bundle requests would have used are set once instead.
    python-keycloak exposes its session only as ``connection._s``; without it, it is slower.
    """
    session = getattr(admin.connection, "_s", None)
    if isinstance(session, requests.Session):
        session.proxies.update(requests.utils.get_environ_proxies(url))
        bundle = _ca_bundle()
        if bundle and admin.connection.verify is True:
            admin.connection.verify = bundle
        session.trust_env = False


def _ca_bundle() -> str | None:
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")


def _http_pool(url: str, size: int) -> urllib3.PoolManager:
    """The connection pool of the gateway's reads, with the environment's proxy and CA bundle
    (what requests would have used), resolved once."""
    proxy = requests.utils.get_environ_proxies(url).get(urlsplit(url).scheme)
    options: dict[str, Any] = {
        "maxsize": size,
        "block": False,
        "timeout": urllib3.Timeout(total=30),
        "retries": urllib3.Retry(total=1, allowed_methods={"GET"}, redirect=0),
        "cert_reqs": "CERT_REQUIRED",
        "ca_certs": _ca_bundle() or certifi.where(),
    }
    return urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)


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
        self._base = str(admin.connection.base_url).rstrip("/") + "/"
        self._http = _http_pool(self._base, max(workers, READ_WORKERS))
        self.on_request: Callable[[], None] | None = None
        """Called after each admin-API request (``iacs sync once``'s progress bar counts them)."""
        self.fence: Callable[[], None] | None = None
        """Called before each admin-API write; it raises to refuse the write (the worker's
        lease: a worker that no longer holds it sends nothing, see ``sync.lease``)."""

    @classmethod
    def from_settings(cls, settings: KeycloakSettings, workers: int = 8) -> KeycloakGateway:
        """Connect as the sync worker's confidential client (client-credentials grant)."""
        server_url = settings.url.rstrip("/") + "/"
        admin = KeycloakAdmin(
            server_url=server_url,
            realm_name=settings.realm,
            user_realm_name=settings.realm,
            client_id=settings.sync_client_id,
            client_secret_key=settings.sync_client_secret.get_secret_value(),
            grant_type="client_credentials",
            timeout=30,
            pool_maxsize=workers,  # writes only: reads go through self._http
        )
        _read_environment_once(admin, server_url)
        return cls(admin, workers=workers)

    def check(self) -> None:
        """Sign in and read one user now, so a command fails at start on a wrong URL or secret.

        The error is the gateway's usual ``KeycloakUnavailable`` (caused by python-keycloak's
        error, with its HTTP status) for ``iacs.cli_errors`` to name.
        """
        self.get("users", first=0, max=1, briefRepresentation="true")

    @property
    def total_writes(self) -> int:
        with self._lock:
            return sum(self.writes.values())

    # -- reads -------------------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> Any:
        """GET an admin path relative to the realm (``groups/...``) and decode its JSON.

        Through urllib3 directly rather than python-keycloak and requests: a full read makes
        21,000 GETs, and requests' per-call work was most of the worker's CPU (1.4 ms -> 0.3 ms
        per GET, measured), CPU that Keycloak on the same cores needs. python-keycloak keeps the
        token; a 401 makes it fetch a new one, once.
        """
        connection = self.admin.connection
        url = f"{self._base}admin/realms/{self.realm}/{path}"
        fields = {name: str(value) for name, value in params.items()}
        try:
            connection._refresh_if_required()
            response = self._http.request("GET", url, fields=fields, headers=connection.headers)
            if response.status == 401:
                connection.refresh_token()
                response = self._http.request("GET", url, fields=fields, headers=connection.headers)
        except (KeycloakError, urllib3.exceptions.HTTPError) as exc:
            raise KeycloakUnavailable(f"GET {path}: {exc}") from exc
        if self.on_request is not None:
            self.on_request()
        if response.status == 404:
            return None
        if response.status >= 400:
            detail = response.data[:500].decode(errors="replace")
            raise KeycloakUnavailable(f"GET {path}: HTTP {response.status} {detail}")
        return json.loads(response.data) if response.data else None

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
        self.refresh_token()
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(function, items))

    def client_uuid(self, client_id: str) -> str:
        """Keycloak's internal id of an application client (cached)."""
        self._load_application_roles()
        if client_id not in self._clients:
            raise KeycloakUnavailable(
                f"client {client_id!r}: no role of it may be mapped by the sync client "
                "(does the client exist, with the catalogue's roles, and is the realm applied?)"
            )
        return self._clients[client_id]

    def client_roles(self, client_id: str) -> dict[str, dict]:
        """The client's roles by name (cached): the representations role mappings need."""
        self._load_application_roles()
        return self._roles.get(client_id, {})

    def _load_application_roles(self) -> None:
        """Learn the client roles the sync client may map, with their clients' ids, once.

        The sync client holds no right on clients themselves (reading a client would show its
        secret: Keycloak guards its roles list with the client's ``view``). It holds
        ``map-roles`` on the catalogue's clients only, and the one call that lists exactly the
        roles a delegated administrator may map, with each role's client id, is the admin
        console's ``ui-ext/available-roles/groups/{id}`` (Keycloak 26.5): asked for the top
        group, which never carries roles, it lists them all.
        """
        if self._roles:
            return
        top = self.get(f"group-by-path/{TOP_GROUP}")
        if not top:
            return
        roles: dict[str, dict[str, dict]] = {}
        for role in self.get_all(f"ui-ext/available-roles/groups/{top['id']}"):
            # this endpoint names the client's clientId "client" and its internal id "clientId"
            client_id, client_uuid = role["client"], role["clientId"]
            self._clients[client_id] = client_uuid
            roles.setdefault(client_id, {})[role["role"]] = {
                "id": role["id"],
                "name": role["role"],
                "clientRole": True,
                "containerId": client_uuid,
            }
        self._roles = roles

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

    def session_ids(self, user_id: str) -> list[str]:
        """The ids of the user's sessions now (before a logout: see ``sync.apply``)."""
        return [session["id"] for session in self.get(f"users/{user_id}/sessions") or ()]

    # -- writes ------------------------------------------------------------------------------

    def end_session(self, session_id: str) -> bool:
        """Delete one session by id; False when Keycloak says it does not exist (any more)."""
        path = f"admin/realms/{self.realm}/sessions/{session_id}"
        response = self.write("end_session", lambda: self.admin.connection.raw_delete(path))
        if response is None or response.status_code == 404:
            return False
        if response.status_code >= 400:
            raise KeycloakUnavailable(f"DELETE session: HTTP {response.status_code}")
        return True

    def log_out_user(self, user_id: str) -> None:
        """End every session of the user; one Keycloak no longer knows has none to end."""
        self.write("logout", lambda: self.admin.user_logout(user_id), tolerate=(404,))

    def set_user_enabled(self, user_id: str, enabled: bool) -> None:
        """Enable or disable the account (INACT-1); Keycloak refuses a disabled one at sign-in."""
        user = self.admin.get_user(user_id)
        user["enabled"] = enabled
        self.write("update_user", lambda: self.admin.update_user(user_id, user))

    def create_group(
        self, path: str, attributes: Mapping[str, Iterable[str]], parent_id: str | None
    ) -> str:
        """Create the group at ``path`` (under ``parent_id``) and return its id.

        When someone created it since our read (409), it is taken as it is: the next run
        reconciles its attributes.
        """
        payload = {
            "name": path.rsplit("/", 1)[-1],
            "attributes": {name: list(values) for name, values in attributes.items()},
        }
        created = self.write(
            "create_group",
            lambda: self.admin.create_group(payload, parent=parent_id, skip_exists=True),
        )
        if created:
            return str(created)
        return str(self.admin.get_group_by_path(path)["id"])

    def set_group_attributes(
        self, group_id: str, path: str, attributes: Mapping[str, Iterable[str]]
    ) -> None:
        """Replace the group's attributes (its name stays the last part of ``path``)."""
        body = {
            "name": path.rsplit("/", 1)[-1],
            "attributes": {name: list(values) for name, values in attributes.items()},
        }
        self.write("update_group", lambda: self.admin.update_group(group_id, body))

    def delete_group(self, group_id: str) -> None:
        """Delete the group (and what is under it); one already gone counts as done."""
        self.write("delete_group", lambda: self.admin.delete_group(group_id), tolerate=(404,))

    def add_member(self, user_id: str, group_id: str) -> None:
        """Put the user into the group."""
        self.write("add_member", lambda: self.admin.group_user_add(user_id, group_id))

    def remove_member(self, user_id: str, group_id: str) -> None:
        """Take the user out of the group; a membership already gone counts as done."""
        remove = self.admin.group_user_remove
        self.write("remove_member", lambda: remove(user_id, group_id), tolerate=(404,))

    def add_client_roles(self, group_id: str, client_id: str, roles: list[dict[str, Any]]) -> None:
        """Map the application's roles (as ``client_roles`` gives them) onto the group."""
        client_uuid = self.client_uuid(client_id)
        self.write(
            "add_role_mapping",
            lambda: self.admin.assign_group_client_roles(group_id, client_uuid, roles),
        )

    def remove_client_roles(
        self, group_id: str, client_id: str, roles: list[dict[str, Any]]
    ) -> None:
        """Unmap the application's roles from the group; mappings already gone count as done."""
        client_uuid = self.client_uuid(client_id)
        self.write(
            "remove_role_mapping",
            lambda: self.admin.delete_group_client_roles(group_id, client_uuid, roles),
            tolerate=(404,),
        )

    def refresh_token(self) -> None:
        """Renew the admin token now if it is about to expire: once before many threads start,
        not once per thread (python-keycloak keeps the token; this is its one private call)."""
        self.admin.connection._refresh_if_required()

    def write(self, kind: str, call: Callable[[], T], tolerate: tuple[int, ...] = ()) -> T | None:
        """Run one admin-API write, count it, and treat the ``tolerate`` statuses as done."""
        if self.fence is not None:
            self.fence()
        with self._lock:
            self.writes[kind] += 1
        try:
            return call()
        except KeycloakError as exc:
            status = status_of(exc)
            if status in tolerate:
                return None
            if status is None or status >= 500:
                raise KeycloakUnavailable(f"{kind}: {exc}") from exc
            raise
        finally:
            if self.on_request is not None:
                self.on_request()
