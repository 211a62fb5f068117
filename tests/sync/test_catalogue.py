"""The application catalogue: validation with clear errors, and matching with excluded-wins."""

from __future__ import annotations

import copy

import pytest
import yaml

from iacs.catalogue import DEFAULT_CATALOGUE, CatalogueError, load_catalogue, parse_catalogue
from iacs.domain import Role, ScopeKind

RAW = yaml.safe_load(DEFAULT_CATALOGUE.read_text())


def test_app_1_the_shipped_catalogue_loads() -> None:
    """APP-1: the catalogue maps each application to its client id and client roles."""
    catalogue = load_catalogue()
    assert catalogue.client_ids == ("pqri-feedback-reports", "psr")
    psr = catalogue.applications["psr"]
    assert set(psr.roles) == {"report-viewer", "report-requester"}


@pytest.mark.parametrize(
    ("role", "scope", "pqri", "psr"),
    [
        (
            Role.END_USER,
            ScopeKind.USER_GROUP,
            {"report-viewer"},
            {"report-viewer", "report-requester"},
        ),
        (Role.USER_GROUP_ADMINISTRATOR, ScopeKind.USER_GROUP, {"report-viewer"}, {"report-viewer"}),
        (Role.END_USER, ScopeKind.SURROGATE_GROUP, {"report-viewer"}, set()),
        (Role.USER_GROUP_ADMINISTRATOR, ScopeKind.SURROGATE_GROUP, {"report-viewer"}, set()),
        (Role.INDIVIDUAL_PRACTITIONER, ScopeKind.PRACTITIONER, {"report-viewer"}, set()),
        (Role.SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, set(), set()),
        (Role.BACKUP_SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, set(), set()),
        (Role.HELP_DESK, ScopeKind.SYSTEM, set(), set()),
    ],
)
def test_app_1_catalogue_maps_roles_to_application_roles(
    role: Role, scope: ScopeKind, pqri: set[str], psr: set[str]
) -> None:
    catalogue = load_catalogue()
    assert catalogue.applications["pqri-feedback-reports"].roles_for(role, scope) == pqri
    assert catalogue.applications["psr"].roles_for(role, scope) == psr


def test_sug_6_excluded_wins_over_a_matching_grant() -> None:
    """SUG-6: even a grant that names surrogates explicitly is beaten by the exclusion."""
    raw = copy.deepcopy(RAW)
    raw["applications"]["psr"]["grants"].append(
        {"match": {"role": "end_user", "surrogate": True}, "roles": ["report-requester"]}
    )
    psr = parse_catalogue(raw).applications["psr"]
    assert psr.roles_for(Role.END_USER, ScopeKind.SURROGATE_GROUP) == frozenset()


def _broken(path: list, value) -> dict:
    raw = copy.deepcopy(RAW)
    node = raw
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return raw


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["version"], 2, "version: must be 1"),
        (["applications"], {}, "applications: must be a non-empty mapping"),
        (["extra"], 1, "unknown keys ['extra']"),
        (["applications", "psr", "grants", 0, "roles"], ["superuser"], "unknown role 'superuser'"),
        (["applications", "psr", "grants", 0, "match", "role"], "admin", "'admin' is not a role"),
        (["applications", "psr", "grants", 0, "match", "colour"], "red", "unknown keys ['colour']"),
        (["applications", "psr", "excluded", 0, "match", "surrogate"], "yes", "true or false"),
        (["applications", "psr", "roles"], {}, "applications.psr.roles: must be a non-empty"),
        (["applications", "psr", "name"], _DELETE, "applications.psr.name: is required"),
        (["applications", "Bad_Client"], {"name": "x"}, "client id must be lower-case"),
    ],
)
def test_app_1_invalid_catalogue_is_refused_with_a_clear_error(path, value, message) -> None:
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(_broken(path, value), source="catalogue.yaml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("catalogue.yaml: ")


def test_unreadable_or_invalid_yaml_names_the_file(tmp_path) -> None:
    with pytest.raises(CatalogueError, match="cannot read"):
        load_catalogue(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("applications: [unclosed")
    with pytest.raises(CatalogueError, match=r"bad\.yaml: not valid YAML"):
        load_catalogue(bad)
