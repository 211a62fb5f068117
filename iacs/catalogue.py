"""The application catalogue (APP-1): which approved affiliations give which application roles.

Loaded from ``keycloak_config/catalogue.yaml`` and validated at start; an invalid catalogue stops
the worker with a message naming the offending entry. Matching is pure: an affiliation matched
by any ``excluded`` rule of an application gets none of its roles, whatever the grants say
(excluded wins, SUG-6); otherwise it gets the union of the roles of every matching grant.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from iacs.domain import Role, ScopeKind

# From the installed package, not from a checkout: the image has none.
DEFAULT_CATALOGUE = Path(str(resources.files("keycloak_config").joinpath("catalogue.yaml")))
_CLIENT_ID = re.compile(r"[a-z][a-z0-9-]{0,62}")
_ROLE_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")
_MATCH_KEYS = {"role", "surrogate", "scope"}


class CatalogueError(ValueError):
    """The catalogue is not valid; the message names the file and the offending entry."""


_Fail = Callable[[str, str], CatalogueError]
"""Builds the error for an entry (where, what is wrong), naming the file."""


@dataclass(frozen=True, slots=True)
class Match:
    """A condition on an affiliation; a field left ``None`` matches anything."""

    roles: frozenset[Role] | None = None
    surrogate: bool | None = None
    scope: ScopeKind | None = None

    def matches(self, role: Role, scope: ScopeKind) -> bool:
        surrogate = scope is ScopeKind.SURROGATE_GROUP
        return (
            (self.roles is None or role in self.roles)
            and (self.surrogate is None or self.surrogate == surrogate)
            and (self.scope is None or self.scope == scope)
        )


@dataclass(frozen=True, slots=True)
class Grant:
    """Affiliations matching ``match`` get ``roles`` of the application."""

    match: Match
    roles: frozenset[str]


@dataclass(frozen=True, slots=True)
class Exclusion:
    """Affiliations matching ``match`` get nothing from the application, whatever the grants."""

    match: Match
    reason: str


@dataclass(frozen=True, slots=True)
class Application:
    """One integrated application: its OIDC client id, its client roles and its rules."""

    client_id: str
    name: str
    roles: Mapping[str, str]
    grants: tuple[Grant, ...] = ()
    excluded: tuple[Exclusion, ...] = ()

    def roles_for(self, role: Role, scope: ScopeKind) -> frozenset[str]:
        """The application roles one affiliation (role in a kind of scope) gives; excluded wins."""
        if any(rule.match.matches(role, scope) for rule in self.excluded):
            return frozenset()
        granted: set[str] = set()
        for grant in self.grants:
            if grant.match.matches(role, scope):
                granted |= grant.roles
        return frozenset(granted)


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Every integrated application, by client id."""

    version: int
    applications: Mapping[str, Application]

    @property
    def client_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self.applications))


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Read and validate the catalogue file (default: the one in ``keycloak_config``)."""
    source = Path(path) if path is not None else DEFAULT_CATALOGUE
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogueError(f"{source}: cannot read the catalogue: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{source}: not valid YAML: {exc}") from None
    return parse_catalogue(data, source=str(source))


def parse_catalogue(data: object, source: str = "catalogue") -> Catalogue:
    """Validate the parsed YAML and build the catalogue, or raise ``CatalogueError``."""

    def fail(where: str, message: str) -> CatalogueError:
        return CatalogueError(f"{source}: {where}: {message}")

    if not isinstance(data, dict):
        raise fail("top level", "must be a mapping with 'version' and 'applications'")
    unknown = set(data) - {"version", "applications"}
    if unknown:
        raise fail("top level", f"unknown keys {sorted(unknown)}")
    if data.get("version") != 1:
        raise fail("version", f"must be 1, not {data.get('version')!r}")
    applications = data.get("applications")
    if not isinstance(applications, dict) or not applications:
        raise fail("applications", "must be a non-empty mapping of client id to application")
    parsed = {}
    for client_id, body in applications.items():
        parsed[client_id] = _parse_application(client_id, body, fail)
    return Catalogue(version=1, applications=MappingProxyType(parsed))


def _parse_application(client_id: object, body: object, fail: _Fail) -> Application:
    where = f"applications.{client_id}"
    if not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id):
        raise fail(where, "the client id must be lower-case letters, digits and dashes")
    if not isinstance(body, dict):
        raise fail(where, "must be a mapping")
    unknown = set(body) - {"name", "roles", "grants", "excluded"}
    if unknown:
        raise fail(where, f"unknown keys {sorted(unknown)}")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise fail(f"{where}.name", "is required")
    roles = body.get("roles")
    if not isinstance(roles, dict) or not roles:
        raise fail(f"{where}.roles", "must be a non-empty mapping of role name to description")
    for role_name, description in roles.items():
        if not isinstance(role_name, str) or not _ROLE_NAME.fullmatch(role_name):
            raise fail(f"{where}.roles.{role_name}", "role names are lower-case, digits, dashes")
        if not isinstance(description, str):
            raise fail(f"{where}.roles.{role_name}", "the description must be text")

    grants = []
    for index, grant in enumerate(_list(body.get("grants"), f"{where}.grants", fail)):
        at = f"{where}.grants[{index}]"
        if not isinstance(grant, dict) or set(grant) != {"match", "roles"}:
            raise fail(at, "must have exactly 'match' and 'roles'")
        granted = grant["roles"]
        if not isinstance(granted, list) or not granted:
            raise fail(f"{at}.roles", "must be a non-empty list of role names")
        for role_name in granted:
            if role_name not in roles:
                raise fail(
                    f"{at}.roles",
                    f"unknown role {role_name!r} (the application declares {sorted(roles)})",
                )
        grants.append(Grant(_parse_match(grant["match"], f"{at}.match", fail), frozenset(granted)))

    excluded = []
    for index, rule in enumerate(_list(body.get("excluded"), f"{where}.excluded", fail)):
        at = f"{where}.excluded[{index}]"
        if (
            not isinstance(rule, dict)
            or not set(rule) <= {"match", "reason"}
            or "match" not in rule
        ):
            raise fail(at, "must have 'match' and an optional 'reason'")
        reason = rule.get("reason", "")
        if not isinstance(reason, str):
            raise fail(f"{at}.reason", "must be text")
        excluded.append(Exclusion(_parse_match(rule["match"], f"{at}.match", fail), reason))

    return Application(
        client_id=client_id,
        name=name,
        roles=MappingProxyType(dict(roles)),
        grants=tuple(grants),
        excluded=tuple(excluded),
    )


def _list(value: object, where: str, fail: _Fail) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise fail(where, "must be a list")
    return value


def _parse_match(value: object, where: str, fail: _Fail) -> Match:
    if not isinstance(value, dict) or not value:
        raise fail(where, f"must be a non-empty mapping with keys among {sorted(_MATCH_KEYS)}")
    unknown = set(value) - _MATCH_KEYS
    if unknown:
        raise fail(where, f"unknown keys {sorted(unknown)} (allowed: {sorted(_MATCH_KEYS)})")
    roles = None
    if "role" in value:
        raw = value["role"]
        names = raw if isinstance(raw, list) else [raw]
        try:
            roles = frozenset(Role(name) for name in names)
        except ValueError:
            raise fail(
                f"{where}.role", f"{raw!r} is not a role (one of {[r.value for r in Role]})"
            ) from None
    surrogate = value.get("surrogate")
    if surrogate is not None and not isinstance(surrogate, bool):
        raise fail(f"{where}.surrogate", "must be true or false")
    scope = None
    if "scope" in value:
        try:
            scope = ScopeKind(value["scope"])
        except ValueError:
            raise fail(
                f"{where}.scope",
                f"{value['scope']!r} is not a scope (one of {[s.value for s in ScopeKind]})",
            ) from None
    return Match(roles=roles, surrogate=surrogate, scope=scope)
