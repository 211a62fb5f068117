"""Apply the realm as code (``realm.json``) to a Keycloak server, idempotently.

``realm.json`` is a realm representation (the shape of Keycloak's import/export) with ``${NAME}``
placeholders. ``load_realm_definition`` fills them from the settings and from keyword arguments;
``apply_realm`` then brings the server to the definition through the admin API and returns the
list of changes it made (or, with ``dry_run``, would make). A second run returns no changes.

What is managed, and how:

- the realm's top-level settings: only the keys the definition names; others are left alone;
- clients: the fields, attributes and secret the definition names; their protocol mappers
  exactly (a mapper not in the definition is removed from a managed client);
- client roles of the clients listed under ``roles.client``: exactly those roles;
- service-account users (``users`` entries with ``serviceAccountClientId``): exactly the client
  roles named in ``clientRoles`` (realm roles too when ``realmRoles`` is given);
- ``clientScopeMappings``: exactly those roles in the named client's dedicated scope;
- user storage components (LDAP federation) by name, with exactly the mappers the definition
  lists. Leaving ``components`` out (``with_federation=False``) leaves any existing ones alone.

Secrets are compared, never printed. The LDAP bind credential is the exception that cannot be
compared: Keycloak answers it masked, so a changed bind password is written only together with
another change to that component (or after deleting the component).

- ``adminPermissions``: fine-grained admin permissions (v2, ``adminPermissionsEnabled``) in the
  realm's ``admin-permissions`` client, each granted to one client (a client policy for its
  tokens and a user policy for its service account: Keycloak 26.5 evaluates single objects
  against the first and filters lists by the second), or a veto (``vetoOutside``) on the groups
  outside a subtree; permissions not named are left alone;
- ``flows``: top-level authentication flows, rebuilt whole when they differ, and bound
  (``bindAs: browserFlow``).

The sync worker's client (``iacs-sync``) holds three read-only ``realm-management`` roles,
``query-groups``, ``query-users`` and ``view-users`` (read users, groups and members), and for
every write the permissions of ``realm.json``:

- Groups (all, less those outside ``/iacs`` when the realm is applied): ``manage``,
  ``manage-membership``;
- Users (all): ``manage`` (to log out), ``manage-group-membership``;
- Clients pqri-feedback-reports and psr (the catalogue's): ``map-roles`` only.

Reads go through the legacy ``view-users`` on purpose: Keycloak 26.5 filters every list through
the permissions' partial evaluation, which cost about a second per list request here
(``GET groups/{id}/members`` 920 ms, ``GET users?username=`` 1,090 ms, against 8 ms with
``view-users``; measured on the 2-core machine under load), which would take a full read of
21,000 groups from a minute to hours. A legacy role only short-cuts the checks it names
(``canView``); ``manage`` and the rest are still decided by the permissions. Without any
``realm-management`` role Keycloak answers 403 to every admin call (measured).

It cannot read any client (so no client secret; it finds the catalogue roles through the admin
console's ``ui-ext/available-roles`` endpoint, see ``sync.gateway``), map a role of any other
client (realm-management, account), change realm, clients or roles, or impersonate. Measured
against Keycloak 26.5.6, and checked by ``tests/keycloak_config/test_sync_client_rights.py``.

What Keycloak 26.5 cannot narrow, with the evidence (bytecode of keycloak-services 26.5.6 and
calls against a running server):

- Ending a user's sessions needs the user ``manage`` scope: ``UserResource.logout()`` calls
  ``requireManage(user)``, the same check as ``deleteUser()`` and ``updateUser()``;
  ``DELETE /sessions/{id}`` calls ``requireManage()`` over all users, the check of
  ``createUser()``. So the sync client can also create, edit and delete users.
- ``reset-password`` (a Users scope in 26.5) falls back to ``manage`` when no permission
  decides it. A permission on ``reset-password`` that does not grant it would stop that, but the
  ``admin-permissions`` resource server decides UNANIMOUS (``PUT`` of AFFIRMATIVE answers 400),
  so such a permission vetoes every scope of every user: with it, ``GET users/{id}/sessions``
  and ``POST users/{id}/logout`` answered 403. So while the sync worker can log people out, it
  can also reset their passwords and remove their credentials.
- Group permissions do not inherit: a permission on ``/iacs`` alone left ``GET
  groups/{iacs}/children`` answering ``200 []`` (and ``/iacs/a`` 403) while ``/iacs/a`` existed,
  and the worker creates groups as it goes. So the permission covers all groups, and a veto
  names each group outside ``/iacs`` that exists when the realm is applied: one an operator
  adds later is open to the sync client until the next apply (a group carrying admin roles is
  an escalation: ``PUT users/{id}/groups/{admins}`` answered 204 before the veto).

Closing these needs the logout to leave the sync host (a small logout service holding the one
right, beside Keycloak) or a narrower Keycloak scope (issue 13, item 3).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from iacs.catalogue import load_catalogue

if TYPE_CHECKING:
    from keycloak import KeycloakAdmin

    from iacs.settings import Settings

REALM_FILE = Path(__file__).resolve().with_name("realm.json")
CATALOGUE_FILE = Path(__file__).resolve().with_name("catalogue.yaml")

USER_STORAGE = "org.keycloak.storage.UserStorageProvider"
LDAP_MAPPER = "org.keycloak.storage.ldap.mappers.LDAPStorageMapper"
MASKED = "**********"
ADMIN_PERMISSIONS_CLIENT = "admin-permissions"
"""The client Keycloak creates to hold a realm's fine-grained admin permissions (v2)."""

NESTED_REALM_KEYS = frozenset(
    {
        "clients",
        "roles",
        "users",
        "groups",
        "components",
        "clientScopeMappings",
        "scopeMappings",
        "clientScopes",
        "identityProviders",
        "identityProviderMappers",
        "authenticationFlows",
        "authenticatorConfig",
        "requiredActions",
        "federatedUsers",
        "defaultRoles",
        "defaultRole",
        "adminPermissions",
        "flows",
    }
)
"""Realm keys that are not plain settings: each is handled by its own step (or not at all)."""

PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
PLACEHOLDER_NAME = re.compile(r"[A-Z][A-Z0-9_]*")

# Local stand-ins of the integrated applications (PQRI, PS&R) for development and the demo.
# A deployment names the real ones in IACS_KEYCLOAK__APPLICATION_REDIRECT_URIS and
# IACS_KEYCLOAK__APPLICATION_CLIENT_SECRETS (JSON objects keyed by client id); without a
# secret, Keycloak generates one at creation and apply leaves it alone.
DEV_APPLICATION_REDIRECT_URIS = {
    "pqri-feedback-reports": "http://127.0.0.1:5101/oidc/callback",
    "psr": "http://127.0.0.1:5102/oidc/callback",
}


class RealmDefinitionError(ValueError):
    """The realm definition cannot be loaded: a placeholder or the catalogue does not match."""


@dataclass(frozen=True)
class Change:
    """One change apply made (or would make) on the server."""

    kind: str
    """``create``, ``update`` or ``delete``."""
    target: str
    """What changed, e.g. ``client psr`` or ``mapper psr/affiliations``."""
    detail: str = ""
    """What about it changed, for a human; never a secret."""

    def __str__(self) -> str:
        return f"{self.kind} {self.target}" + (f": {self.detail}" if self.detail else "")


# --------------------------------------------------------------------------------------------
# Loading the definition


def placeholder_name(client_id: str) -> str:
    """``pqri-feedback-reports`` → ``PQRI_FEEDBACK_REPORTS`` (prefix of the app's placeholders)."""
    return re.sub(r"[^A-Z0-9]", "_", client_id.upper())


def placeholders_from_settings(
    settings: Settings,
    *,
    ldap_url: str | None = None,
    applications: Mapping[str, Mapping[str, str | None]] | None = None,
) -> dict[str, str | None]:
    """The placeholder values the settings give.

    ``applications`` maps an application client id to ``{"redirect_uri": ..., "secret": ...}``
    and wins over ``settings.keycloak.application_redirect_uris`` / ``..._client_secrets``;
    then come the local development addresses; a secret of None is left to Keycloak.
    """
    keycloak, ldap = settings.keycloak, settings.ldap
    values: dict[str, str | None] = {
        "REALM": keycloak.realm,
        "PORTAL_URL": settings.portal.public_url.rstrip("/"),
        "PORTAL_CLIENT_ID": keycloak.portal_client_id,
        "PORTAL_CLIENT_SECRET": keycloak.portal_client_secret.get_secret_value(),
        "SYNC_CLIENT_ID": keycloak.sync_client_id,
        "SYNC_CLIENT_SECRET": keycloak.sync_client_secret.get_secret_value(),
        "LDAP_URL": ldap_url or ldap.url,
        "LDAP_BIND_DN": ldap.keycloak_bind_dn,
        "LDAP_BIND_PASSWORD": ldap.keycloak_bind_password.get_secret_value(),
        "BASE_DN": ldap.base_dn,
    }
    for client_id in catalogue_applications():
        name = placeholder_name(client_id)
        given = dict((applications or {}).get(client_id, {}))
        configured_secret = keycloak.application_client_secrets.get(client_id)
        values[f"{name}_REDIRECT_URI"] = (
            given.get("redirect_uri")
            or keycloak.application_redirect_uris.get(client_id)
            or DEV_APPLICATION_REDIRECT_URIS.get(client_id)
        )
        values[f"{name}_CLIENT_SECRET"] = given.get("secret") or (
            configured_secret.get_secret_value() if configured_secret else None
        )
    return values


def load_realm_definition(
    settings: Settings | None = None,
    *,
    with_federation: bool = True,
    path: Path = REALM_FILE,
    **placeholders: str | None,
) -> dict:
    """Read ``realm.json`` and fill its placeholders; keyword arguments win over the settings.

    A placeholder the file uses without a value, or a keyword that names no placeholder of the
    file, is an error naming each. A value of None removes the key or list item that is exactly
    that placeholder (a client secret left to Keycloak). Without federation the user storage
    components are left out. The application clients and their roles must be exactly the
    catalogue's.
    """
    raw = json.loads(Path(path).read_text())
    values: dict[str, str | None] = {}
    if settings is not None:
        values.update(placeholders_from_settings(settings))
    bad_names = sorted(name for name in placeholders if not PLACEHOLDER_NAME.fullmatch(name))
    if bad_names:
        raise RealmDefinitionError(
            f"placeholder names are upper case (A-Z, 0-9, _): {', '.join(bad_names)}"
        )
    values.update(placeholders)

    used = _placeholders_in(raw)
    malformed = sorted(name for name in used if not PLACEHOLDER_NAME.fullmatch(name))
    if malformed:
        raise RealmDefinitionError(
            f"{path}: malformed placeholder(s) {', '.join('${' + m + '}' for m in malformed)}"
        )
    unknown = sorted(set(placeholders) - used)
    if unknown:
        raise RealmDefinitionError(
            f"unknown placeholder(s) {', '.join(unknown)}: {path.name} uses only "
            f"{', '.join(sorted(used))}"
        )
    missing = sorted(name for name in used if name not in values)
    if missing:
        raise RealmDefinitionError(
            f"no value for placeholder(s) {', '.join(missing)} used in {path.name}; pass them "
            "as keyword arguments or through the settings"
        )
    definition = _substitute(raw, values, path)
    if not with_federation:
        definition.pop("components", None)
    check_against_catalogue(definition)
    return definition


def _placeholders_in(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(*(_placeholders_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_placeholders_in(v) for v in value)) if value else set()
    return set()


_DROP = object()


def _substitute(value: Any, values: Mapping[str, str | None], path: Path) -> Any:
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole and values[whole.group(1)] is None:
            return _DROP

        def replace(match: re.Match[str]) -> str:
            found = values[match.group(1)]
            if found is None:
                raise RealmDefinitionError(
                    f"{path.name}: placeholder ${{{match.group(1)}}} has no value but is part "
                    f"of a longer string ({value!r})"
                )
            return found

        return PLACEHOLDER.sub(replace, value)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            new = _substitute(item, values, path)
            if new is not _DROP:
                out[key] = new
        return out
    if isinstance(value, list):
        return [new for item in value if (new := _substitute(item, values, path)) is not _DROP]
    return value


def catalogue_applications(path: Path = CATALOGUE_FILE) -> dict[str, dict[str, str]]:
    """Application client id → {role name: description}, from ``catalogue.yaml``.

    Read by the one parser of the catalogue (``iacs.catalogue``), so the realm and the sync
    worker never disagree about what the file says.
    """
    return {
        client_id: dict(app.roles) for client_id, app in load_catalogue(path).applications.items()
    }


def check_against_catalogue(definition: Mapping[str, Any], path: Path = CATALOGUE_FILE) -> None:
    """The application clients and their roles in the definition are exactly the catalogue's."""
    catalogue = catalogue_applications(path)
    client_ids = {client["clientId"] for client in definition.get("clients", [])}
    client_roles = (definition.get("roles") or {}).get("client") or {}
    problems = []
    for client_id, roles in catalogue.items():
        if client_id not in client_ids:
            problems.append(f"application {client_id} has no client")
        defined = {role["name"] for role in client_roles.get(client_id, [])}
        if defined != set(roles):
            problems.append(
                f"client {client_id} roles {sorted(defined)} differ from the catalogue's "
                f"{sorted(roles)}"
            )
    for client_id in set(client_roles) - set(catalogue):
        problems.append(f"client {client_id} has roles but is not in the catalogue")
    for permission in definition.get("adminPermissions") or []:
        if permission.get("resourceType") == "Clients" and set(
            permission.get("clients") or ()
        ) != set(catalogue):
            problems.append(
                f"admin permission {permission['name']} names clients "
                f"{sorted(permission.get('clients') or ())}, not the catalogue's "
                f"{sorted(catalogue)}"
            )
    if problems:
        raise RealmDefinitionError("realm definition and catalogue differ: " + "; ".join(problems))


# --------------------------------------------------------------------------------------------
# Applying it


@dataclass(frozen=True)
class AdminConnection:
    """Where the master realm's administrator signs in (an alternative to a KeycloakAdmin)."""

    url: str
    username: str
    password: str

    def admin(self) -> KeycloakAdmin:
        from keycloak import KeycloakAdmin

        return KeycloakAdmin(
            server_url=self.url.rstrip("/") + "/",
            username=self.username,
            password=self.password,
            realm_name="master",
            user_realm_name="master",
        )


def apply_realm(
    admin: KeycloakAdmin | AdminConnection,
    realm_definition: Mapping[str, Any],
    *,
    dry_run: bool = False,
) -> list[Change]:
    """Bring the server's realm to ``realm_definition``; return what changed (empty if nothing).

    ``admin`` signs in to the master realm (a ``KeycloakAdmin`` whose current realm is switched
    for the duration and restored, or an ``AdminConnection``). With ``dry_run`` nothing is
    written and the changes that would be made are returned.
    """
    if isinstance(admin, AdminConnection):
        admin = admin.admin()
    definition = copy.deepcopy(dict(realm_definition))
    previous_realm = admin.connection.realm_name
    applier = _Applier(admin, definition, dry_run)
    try:
        applier.run()
    finally:
        admin.change_current_realm(previous_realm)
    return applier.changes


def apply_from_settings(
    settings: Settings,
    *,
    with_federation: bool,
    keycloak_url: str | None = None,
    ldap_url: str | None = None,
    dry_run: bool = False,
    applications: Mapping[str, Mapping[str, str | None]] | None = None,
) -> list[Change]:
    """Load ``realm.json`` with the settings' values and apply it as the settings' admin.

    ``keycloak_url`` overrides where Keycloak is (``settings.keycloak.url``); ``ldap_url`` the
    LDAP URL Keycloak's federation connects to (``settings.ldap.url``).
    """
    values = placeholders_from_settings(settings, ldap_url=ldap_url, applications=applications)
    definition = load_realm_definition(None, with_federation=with_federation, **values)
    connection = AdminConnection(
        url=keycloak_url or settings.keycloak.url,
        username=settings.keycloak.admin_username,
        password=settings.keycloak.admin_password.get_secret_value(),
    )
    return apply_realm(connection, definition, dry_run=dry_run)


def _show(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _normalized(value: Any) -> Any:
    """Compare lists of strings as sets (Keycloak does not keep their order)."""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return sorted(set(value))
    return value


def _differences(
    current: Mapping[str, Any] | None,
    desired: Mapping[str, Any],
    *,
    secret_keys: Iterable[str] = (),
    prefix: str = "",
) -> list[str]:
    """Human-readable differences of the keys ``desired`` names (nested dicts as subsets)."""
    current = current or {}
    secret_keys = set(secret_keys)
    out = []
    for key, want in desired.items():
        have = current.get(key)
        label = f"{prefix}{key}"
        if isinstance(want, dict) and isinstance(have, dict | type(None)):
            out.extend(_differences(have, want, secret_keys=secret_keys, prefix=f"{label}."))
            continue
        if _normalized(have) == _normalized(want):
            continue
        if key in secret_keys:
            if have in (MASKED, [MASKED]):
                continue  # Keycloak never shows it; see the module docstring
            out.append(f"{label} changed")
        else:
            out.append(f"{label} {_show(have)} → {_show(want)}")
    return out


class _Applier:
    def __init__(self, admin: KeycloakAdmin, definition: dict, dry_run: bool) -> None:
        self.admin = admin
        self.definition = definition
        self.dry_run = dry_run
        self.realm = definition["realm"]
        self.changes: list[Change] = []
        self.realm_exists = True
        self._client_uuids: dict[str, str | None] = {}

    # -- plumbing

    def change(
        self, kind: str, target: str, detail: str = "", write: Callable[[], Any] | None = None
    ) -> Any:
        self.changes.append(Change(kind, target, detail))
        if not self.dry_run and write is not None:
            return write()
        return None

    def client_uuid(self, client_id: str) -> str | None:
        if client_id not in self._client_uuids:
            found = self.admin.get_client_id(client_id) if self.realm_exists else None
            self._client_uuids[client_id] = found
        return self._client_uuids[client_id]

    # -- steps

    def run(self) -> None:
        self.apply_settings()
        for client in self.definition.get("clients", []):
            self.apply_client(client)
        for client_id, roles in ((self.definition.get("roles") or {}).get("client") or {}).items():
            self.apply_client_roles(client_id, roles)
        for client in self.definition.get("clients", []):
            if "protocolMappers" in client:
                self.apply_mappers(client["clientId"], client["protocolMappers"])
        for user in self.definition.get("users", []):
            if "serviceAccountClientId" not in user:
                raise RealmDefinitionError(
                    f"user {user.get('username')}: only service-account users are managed"
                )
            self.apply_service_account(user)
        for owner, entries in (self.definition.get("clientScopeMappings") or {}).items():
            for entry in entries:
                self.apply_scope_mapping(owner, entry["client"], entry.get("roles", []))
        for component in (self.definition.get("components") or {}).get(USER_STORAGE, []):
            self.apply_user_storage(component)
        if "adminPermissions" in self.definition:
            self.apply_admin_permissions(self.definition["adminPermissions"])
        for flow in self.definition.get("flows") or []:
            self.apply_flow(flow)

    def apply_settings(self) -> None:
        settings = {k: v for k, v in self.definition.items() if k not in NESTED_REALM_KEYS}
        existing = {realm["realm"] for realm in self.admin.get_realms()}
        if self.realm not in existing:
            self.realm_exists = False
            self.change(
                "create",
                f"realm {self.realm}",
                write=lambda: self.admin.create_realm(settings),
            )
            if self.dry_run:
                return
            self.realm_exists = True
            self.admin.change_current_realm(self.realm)
            current = self.admin.get_realm(self.realm)
            leftover = _differences(current, settings)
            if leftover:  # a setting Keycloak ignored at creation: write it once more
                self.admin.update_realm(self.realm, settings)
            return
        self.admin.change_current_realm(self.realm)
        current = self.admin.get_realm(self.realm)
        differences = _differences(current, settings)
        if differences:
            changed = {
                key: value
                for key, value in settings.items()
                if _differences({key: current.get(key)}, {key: value})
            }
            self.change(
                "update",
                f"realm {self.realm}",
                ", ".join(differences),
                write=lambda: self.admin.update_realm(self.realm, changed),
            )

    def apply_client(self, client: Mapping[str, Any]) -> None:
        client_id = client["clientId"]
        desired = {k: v for k, v in client.items() if k != "protocolMappers"}
        uuid = self.client_uuid(client_id)
        if uuid is None:

            def create() -> None:
                self.admin.create_client(desired)
                self._client_uuids[client_id] = self.admin.get_client_id(client_id)

            self.change("create", f"client {client_id}", write=create)
            return
        current = self.admin.get_client(uuid)
        secret = desired.pop("secret", None)
        differences = _differences(current, desired)
        if secret is not None and self.admin.get_client_secrets(uuid).get("value") != secret:
            differences.append("secret changed")
        if differences:
            payload = {k: v for k, v in current.items() if k != "protocolMappers"}
            payload.update(desired)
            payload["attributes"] = {
                **(current.get("attributes") or {}),
                **(desired.get("attributes") or {}),
            }
            if secret is not None:
                payload["secret"] = secret
            self.change(
                "update",
                f"client {client_id}",
                ", ".join(differences),
                write=lambda: self.admin.update_client(uuid, payload),
            )

    def apply_client_roles(self, client_id: str, roles: list[Mapping[str, Any]]) -> None:
        uuid = self.client_uuid(client_id)
        current = (
            {role["name"]: role for role in self.admin.get_client_roles(uuid, False)}
            if uuid
            else {}
        )
        for role in roles:
            name = role["name"]
            target = f"role {client_id}/{name}"
            if name not in current:
                self.change(
                    "create",
                    target,
                    write=lambda role=role: self.admin.create_client_role(
                        self.client_uuid(client_id), dict(role), skip_exists=True
                    ),
                )
                continue
            differences = _differences(current[name], role)
            if differences:
                payload = {**current[name], **role}
                self.change(
                    "update",
                    target,
                    ", ".join(differences),
                    write=lambda name=name, payload=payload: self.admin.update_client_role(
                        uuid, name, payload
                    ),
                )
        for name in sorted(set(current) - {role["name"] for role in roles}):
            self.change(
                "delete",
                f"role {client_id}/{name}",
                "not in the definition",
                write=lambda name=name: self.admin.delete_client_role(uuid, name),
            )

    def apply_mappers(self, client_id: str, mappers: list[Mapping[str, Any]]) -> None:
        uuid = self.client_uuid(client_id)
        current = {m["name"]: m for m in self.admin.get_mappers_from_client(uuid)} if uuid else {}
        for mapper in mappers:
            name = mapper["name"]
            target = f"mapper {client_id}/{name}"
            have = current.get(name)
            if have is None:
                self.change(
                    "create",
                    target,
                    write=lambda mapper=mapper: self.admin.add_mapper_to_client(
                        self.client_uuid(client_id), dict(mapper)
                    ),
                )
                continue
            differences = _differences(have, mapper)
            if differences:
                payload = {
                    **have,
                    **mapper,
                    "config": {**have.get("config", {}), **mapper["config"]},
                }
                self.change(
                    "update",
                    target,
                    ", ".join(differences),
                    write=lambda have=have, payload=payload: self.admin.update_client_mapper(
                        uuid, have["id"], payload
                    ),
                )
        for name in sorted(set(current) - {m["name"] for m in mappers}):
            self.change(
                "delete",
                f"mapper {client_id}/{name}",
                "not in the definition",
                write=lambda name=name: self.admin.remove_client_mapper(uuid, current[name]["id"]),
            )

    def _role_reps(self, owner: str, names: Iterable[str]) -> list[dict]:
        owner_uuid = self.client_uuid(owner)
        return [self.admin.get_client_role(owner_uuid, name) for name in names]

    def reconcile_set(
        self,
        target: str,
        have: set[str],
        want: set[str],
        add: Callable[[list[str]], Any],
        drop: Callable[[list[str]], Any],
    ) -> None:
        """Make a set of names (role mappings) exactly ``want``: add the missing, drop extras."""
        missing, extra = sorted(want - have), sorted(have - want)
        if missing:
            self.change("create", target, ", ".join(missing), write=lambda: add(missing))
        if extra:
            self.change("delete", target, ", ".join(extra), write=lambda: drop(extra))

    def apply_service_account(self, user: Mapping[str, Any]) -> None:
        client_id = user["serviceAccountClientId"]
        uuid = self.client_uuid(client_id)
        account = self.admin.get_client_service_account_user(uuid) if uuid else None

        def account_id() -> str:
            found = account or self.admin.get_client_service_account_user(
                self.client_uuid(client_id)
            )
            return found["id"]

        for owner, names in (user.get("clientRoles") or {}).items():
            owner_uuid = self.client_uuid(owner)
            if owner_uuid is None and self.realm_exists:
                raise RealmDefinitionError(f"service account {client_id}: no client {owner}")
            have = (
                {r["name"] for r in self.admin.get_client_roles_of_user(account["id"], owner_uuid)}
                if account
                else set()
            )
            self.reconcile_set(
                f"service-account roles {client_id} ({owner})",
                have,
                set(names),
                add=lambda names, owner=owner: self.admin.assign_client_role(
                    account_id(), self.client_uuid(owner), self._role_reps(owner, names)
                ),
                drop=lambda names, owner=owner: self.admin.delete_client_roles_of_user(
                    account_id(), self.client_uuid(owner), self._role_reps(owner, names)
                ),
            )
        if "realmRoles" in user:
            have = (
                {r["name"] for r in self.admin.get_realm_roles_of_user(account["id"])}
                if account
                else set()
            )

            def realm_reps(names: Iterable[str]) -> list[dict]:
                return [self.admin.get_realm_role(name) for name in names]

            self.reconcile_set(
                f"service-account realm roles {client_id}",
                have,
                set(user["realmRoles"]),
                add=lambda names: self.admin.assign_realm_roles(account_id(), realm_reps(names)),
                drop=lambda names: self.admin.delete_realm_roles_of_user(
                    account_id(), realm_reps(names)
                ),
            )

    def apply_scope_mapping(self, owner: str, client_id: str, names: list[str]) -> None:
        uuid = self.client_uuid(client_id)
        owner_uuid = self.client_uuid(owner)
        have = (
            {r["name"] for r in self.admin.get_client_roles_of_client_scope(uuid, owner_uuid)}
            if uuid and owner_uuid
            else set()
        )
        self.reconcile_set(
            f"scope of {client_id} ({owner} roles)",
            have,
            set(names),
            add=lambda names: self.admin.assign_client_roles_to_client_scope(
                self.client_uuid(client_id), self.client_uuid(owner), self._role_reps(owner, names)
            ),
            drop=lambda names: self.admin.delete_client_roles_of_client_scope(
                self.client_uuid(client_id), self.client_uuid(owner), self._role_reps(owner, names)
            ),
        )

    def apply_user_storage(self, component: Mapping[str, Any]) -> None:
        name = component["name"]
        target = f"user federation {name}"
        realm_id = self.admin.get_realm(self.realm)["id"] if self.realm_exists else None
        current = None
        if realm_id:
            found = [
                c
                for c in self.admin.get_components({"parent": realm_id, "type": USER_STORAGE})
                if c["name"] == name
            ]
            current = found[0] if found else None
        desired = {
            "name": name,
            "providerId": component["providerId"],
            "providerType": USER_STORAGE,
            "config": component.get("config", {}),
        }
        mappers = (component.get("subComponents") or {}).get(LDAP_MAPPER)
        if current is None:

            def create() -> str:
                rid = self.admin.get_realm(self.realm)["id"]
                return self.admin.create_component({**desired, "parentId": rid})

            component_id = self.change("create", target, write=create)
        else:
            component_id = current["id"]
            differences = _differences(
                current, desired, secret_keys={"bindCredential", "credential"}
            )
            if differences:
                payload = {
                    **current,
                    **desired,
                    "config": {**current.get("config", {}), **desired["config"]},
                }
                self.change(
                    "update",
                    target,
                    ", ".join(differences),
                    write=lambda: self.admin.update_component(component_id, payload),
                )
        if mappers is not None:
            self.apply_ldap_mappers(name, component_id, mappers)

    def apply_ldap_mappers(
        self, provider_name: str, component_id: str | None, mappers: list[Mapping[str, Any]]
    ) -> None:
        current = (
            {
                m["name"]: m
                for m in self.admin.get_components({"parent": component_id, "type": LDAP_MAPPER})
            }
            if component_id
            else {}
        )
        for mapper in mappers:
            name = mapper["name"]
            target = f"ldap mapper {provider_name}/{name}"
            desired = {
                "name": name,
                "providerId": mapper["providerId"],
                "providerType": LDAP_MAPPER,
                "config": mapper.get("config", {}),
            }
            have = current.get(name)
            if have is None:
                self.change(
                    "create",
                    target,
                    write=lambda desired=desired: self.admin.create_component(
                        {**desired, "parentId": component_id}
                    ),
                )
            elif have.get("providerId") != desired["providerId"]:

                def replace(have=have, desired=desired) -> None:
                    self.admin.delete_component(have["id"])
                    self.admin.create_component({**desired, "parentId": component_id})

                self.change(
                    "update",
                    target,
                    f"providerId {have.get('providerId')} → {desired['providerId']} (replaced)",
                    write=replace,
                )
            else:
                differences = _differences(have, desired)
                if differences:
                    payload = {
                        **have,
                        **desired,
                        "config": {**have.get("config", {}), **desired["config"]},
                    }
                    self.change(
                        "update",
                        target,
                        ", ".join(differences),
                        write=lambda have=have, payload=payload: self.admin.update_component(
                            have["id"], payload
                        ),
                    )
        for name in sorted(set(current) - {m["name"] for m in mappers}):
            self.change(
                "delete",
                f"ldap mapper {provider_name}/{name}",
                "not in the definition",
                write=lambda name=name: self.admin.delete_component(current[name]["id"]),
            )

    # -- fine-grained admin permissions (v2)

    def _authz(self, path: str = "") -> str:
        admin_client = self.client_uuid(ADMIN_PERMISSIONS_CLIENT)
        return f"admin/realms/{self.realm}/clients/{admin_client}/authz/resource-server" + (
            f"/{path}" if path else ""
        )

    def _authz_get(self, path: str, **params: Any) -> Any:
        response = self.admin.connection.raw_get(self._authz(path), **params)
        if response.status_code >= 400:
            raise RealmDefinitionError(f"GET {path}: HTTP {response.status_code} {response.text}")
        return response.json()

    def _authz_write(self, method: str, path: str, body: Mapping[str, Any]) -> Any:
        call = getattr(self.admin.connection, f"raw_{method}")
        response = call(self._authz(path), data=json.dumps(body))
        if response.status_code >= 400:
            raise RealmDefinitionError(
                f"{method.upper()} {path}: HTTP {response.status_code} {response.text}"
            )
        return response.json() if response.text else None

    def _grantee_policies(self, client_id: str, existing: dict[str, dict]) -> list[str]:
        """The two policies that name one client: its tokens, and its service-account user.

        Keycloak 26.5 evaluates a single object (``GET users/{id}``) against the token's
        client, but filters lists (``GET users?username=``, a group's children) by the user:
        a client policy alone answers lists with ``[]``, a user policy alone refuses single
        objects (measured). The permissions take either (``AFFIRMATIVE``).
        """
        uuid = self.client_uuid(client_id)
        account = self.admin.get_client_service_account_user(uuid) if uuid else None
        wanted = {
            f"{client_id} (client)": ("client", {"clients": [uuid]}),
            f"{client_id} (service account)": (
                "user",
                {"users": [account["id"]] if account else []},
            ),
        }
        ids = []
        for name, (kind, members) in wanted.items():
            have = existing.get(name)
            body = {"name": name, "type": kind, "logic": "POSITIVE", **members}
            if have is None:
                created = self.change(
                    "create",
                    f"admin policy {name}",
                    write=lambda kind=kind, body=body: self._authz_write(
                        "post", f"policy/{kind}", body
                    ),
                )
                if created:
                    existing[name] = created
                ids.append(created["id"] if created else "")
                continue
            current = self._authz_get(f"policy/{kind}/{have['id']}")
            key = next(iter(members))
            if sorted(current.get(key) or []) != sorted(members[key]):
                self.change(
                    "update",
                    f"admin policy {name}",
                    key,
                    write=lambda kind=kind, have=have, body=body: self._authz_write(
                        "put", f"policy/{kind}/{have['id']}", {**body, "id": have["id"]}
                    ),
                )
            ids.append(have["id"])
        return ids

    def _nobody_policy(self, existing: dict[str, dict]) -> str:
        """A policy that grants no caller: it names the admin-permissions client itself.

        A permission with it is a veto: the resource server decides UNANIMOUS, so on its
        resources no other permission grants anything (a NEGATIVE policy would grant everyone
        else instead).
        """
        name = "nobody (veto)"
        if name not in existing:
            body = {
                "name": name,
                "type": "client",
                "logic": "POSITIVE",
                "clients": [self.client_uuid(ADMIN_PERMISSIONS_CLIENT)],
            }
            created = self.change(
                "create",
                f"admin policy {name}",
                write=lambda: self._authz_write("post", "policy/client", body),
            )
            existing[name] = created or {"id": ""}
        return existing[name]["id"]

    def _groups_outside(self, path: str) -> list[str]:
        """Ids of every group, at any depth, that is not ``path`` or below it."""
        if not self.realm_exists:
            return []
        found: list[str] = []

        def walk(groups: list[dict]) -> None:
            for group in groups:
                if group["path"] == path or group["path"].startswith(path + "/"):
                    continue  # the managed subtree (thousands of groups): never walked
                found.append(group["id"])
                if group.get("subGroupCount"):
                    walk(self._raw("get", f"groups/{group['id']}/children", first=0, max=10000))

        walk(self._raw("get", "groups", first=0, max=10000, briefRepresentation="true"))
        return sorted(found)

    def apply_admin_permissions(self, permissions: list[Mapping[str, Any]]) -> None:
        """Make each named permission of the ``admin-permissions`` client exactly as defined.

        Permissions not named in the definition are left alone (an operator's own).
        """
        if not self.realm_exists or self.client_uuid(ADMIN_PERMISSIONS_CLIENT) is None:
            if self.dry_run:
                for permission in permissions:
                    self.change("create", f"admin permission {permission['name']}")
                return
            self._client_uuids.pop(ADMIN_PERMISSIONS_CLIENT, None)
            if self.client_uuid(ADMIN_PERMISSIONS_CLIENT) is None:
                raise RealmDefinitionError(
                    "the realm has no admin-permissions client: adminPermissionsEnabled must be "
                    "true (Keycloak 26.2+, feature admin-fine-grained-authz:v2)"
                )
        policies = {p["name"]: p for p in self._authz_get("policy", first=0, max=1000)}
        current = {p["name"]: p for p in self._authz_get("permission", first=0, max=1000)}
        for permission in permissions:
            name = permission["name"]
            resource_type = permission["resourceType"]
            if "vetoOutside" in permission:
                policy_ids = [self._nobody_policy(policies)]
                resources = self._groups_outside(permission["vetoOutside"])
                if not resources:  # no resource would mean all groups: veto nothing instead
                    if name in current:
                        pid = current[name]["id"]
                        self.change(
                            "delete",
                            f"admin permission {name}",
                            "no group outside",
                            write=lambda pid=pid: self._raw(
                                "delete",
                                f"clients/{self.client_uuid(ADMIN_PERMISSIONS_CLIENT)}"
                                f"/authz/resource-server/permission/{pid}",
                            ),
                        )
                    continue
            else:
                policy_ids = self._grantee_policies(permission["grantedTo"], policies)
                clients = permission.get("clients")
                resources = [self.client_uuid(c) for c in clients] if clients else []
                if None in resources:
                    raise RealmDefinitionError(f"admin permission {name}: a client does not exist")
            body = {
                "name": name,
                "description": permission.get("description", ""),
                "type": "scope",
                "resourceType": resource_type,
                "scopes": sorted(permission["scopes"]),
                "resources": resources,
                "policies": policy_ids,
                "decisionStrategy": "AFFIRMATIVE",
                "logic": "POSITIVE",
            }
            have = current.get(name)
            if have is None:
                self.change(
                    "create",
                    f"admin permission {name}",
                    write=lambda body=body: self._authz_write("post", "permission/scope", body),
                )
                continue
            pid = have["id"]
            differences = []
            scopes = {s["name"] for s in self._authz_get(f"policy/{pid}/scopes")}
            if scopes != set(body["scopes"]):
                differences.append(f"scopes {sorted(scopes)} → {body['scopes']}")
            names = {r["name"] for r in self._authz_get(f"policy/{pid}/resources")}
            if names != (set(resources) or {resource_type}):
                differences.append("resources changed")
            associated = {p["id"] for p in self._authz_get(f"policy/{pid}/associatedPolicies")}
            if associated != set(policy_ids):
                differences.append("policies changed")
            if have.get("decisionStrategy") != "AFFIRMATIVE":
                differences.append("decisionStrategy")
            if differences:
                self.change(
                    "update",
                    f"admin permission {name}",
                    ", ".join(differences),
                    write=lambda pid=pid, body=body: self._authz_write(
                        "put", f"permission/scope/{pid}", {**body, "id": pid}
                    ),
                )

    # -- authentication flows

    def _raw(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        url = f"admin/realms/{self.realm}/{path}"
        connection = self.admin.connection
        if method == "get":
            response = connection.raw_get(url, **params)
        elif method == "delete":
            response = connection.raw_delete(url)
        else:
            response = getattr(connection, f"raw_{method}")(url, data=json.dumps(body))
        if response.status_code >= 400:
            raise RealmDefinitionError(
                f"{method.upper()} {path}: HTTP {response.status_code} {response.text[:300]}"
            )
        return response.json() if response.text else None

    @staticmethod
    def _desired_steps(executions: list[Mapping[str, Any]], level: int = 0) -> list[tuple]:
        """A flow's executions as (level, name, requirement, config) rows, depth first."""
        rows: list[tuple] = []
        for execution in executions:
            config = (execution.get("config") or {}).get("config")
            name = execution.get("flow") or execution["authenticator"]
            rows.append((level, name, execution["requirement"], _canonical(config)))
            if "flow" in execution:
                rows += _Applier._desired_steps(execution.get("executions", []), level + 1)
        return rows

    def _current_steps(self, alias: str) -> list[tuple]:
        rows = []
        for execution in self._raw("get", f"authentication/flows/{quote(alias)}/executions"):
            name = (
                execution["displayName"]
                if execution.get("authenticationFlow")
                else execution.get("providerId")
            )
            config = None
            if execution.get("authenticationConfig"):
                found = self._raw(
                    "get", f"authentication/config/{execution['authenticationConfig']}"
                )
                config = _canonical(found.get("config"))
            rows.append((execution["level"], name, execution["requirement"], config))
        return rows

    def _add_executions(self, parent: str, executions: list[Mapping[str, Any]]) -> None:
        base = f"authentication/flows/{quote(parent)}/executions"
        for execution in executions:
            if "flow" in execution:
                self._raw(
                    "post",
                    f"{base}/flow",
                    {"alias": execution["flow"], "type": "basic-flow", "description": ""},
                )
            else:
                self._raw("post", f"{base}/execution", {"provider": execution["authenticator"]})
            added = [e for e in self._raw("get", base) if e["level"] == 0][-1]
            self._raw("put", base, {**added, "requirement": execution["requirement"]})
            if execution.get("config"):
                self._raw(
                    "post", f"authentication/executions/{added['id']}/config", execution["config"]
                )
            if "flow" in execution:
                self._add_executions(execution["flow"], execution.get("executions", []))

    def apply_flow(self, flow: Mapping[str, Any]) -> None:
        """Make a top-level flow exactly as defined (rebuilt whole when it differs), and bind it.

        A flow is compared as a list of its steps (nesting, authenticator or sub-flow,
        requirement, configuration); a difference rebuilds it, which is simpler and safer than
        editing executions in place, and rare.
        """
        alias, binding = flow["alias"], flow.get("bindAs")
        target = f"authentication flow {alias}"
        existing = (
            {f["alias"]: f for f in self._raw("get", "authentication/flows")}
            if self.realm_exists
            else {}
        )
        current = existing.get(alias)
        desired = self._desired_steps(flow["executions"])
        realm = self.admin.get_realm(self.realm) if self.realm_exists else {}

        def build() -> None:
            if current is not None:
                if binding and realm.get(binding) == alias:
                    self.admin.update_realm(self.realm, {binding: "browser"})
                self._raw("delete", f"authentication/flows/{current['id']}")
            self._raw(
                "post",
                "authentication/flows",
                {
                    "alias": alias,
                    "description": flow.get("description", ""),
                    "providerId": "basic-flow",
                    "topLevel": True,
                    "builtIn": False,
                },
            )
            self._add_executions(alias, flow["executions"])

        if current is None:
            self.change("create", target, write=build)
        elif self._current_steps(alias) != desired:
            self.change("update", target, "executions differ (rebuilt)", write=build)
        if binding:
            bound = (
                self.admin.get_realm(self.realm)
                if self.realm_exists and not self.dry_run
                else realm
            ).get(binding)
            if bound != alias:
                self.change(
                    "update",
                    f"realm {self.realm}",
                    f"{binding} {bound!r} → {alias!r}",
                    write=lambda: self.admin.update_realm(self.realm, {binding: alias}),
                )


def _canonical(config: Mapping[str, Any] | None) -> str | None:
    return json.dumps(dict(config), sort_keys=True) if config else None
