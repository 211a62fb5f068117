"""The claims contract: docs/claims.md examples and every projected affiliation fit the schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from iacs.catalogue import load_catalogue
from sync.model import affiliation_attribute
from sync.project import project

from .factories import ORG_A, ORG_B, surrogate_end_user, world
from .test_project import CASES

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "keycloak_config" / "claims.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
CATALOGUE = load_catalogue()


def test_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


EXAMPLES = [
    json.loads(block)
    for block in re.findall(r"```json\n(.*?)```", (ROOT / "docs" / "claims.md").read_text(), re.S)
]


@pytest.mark.parametrize("token", EXAMPLES, ids=[f"example-{i}" for i in range(len(EXAMPLES))])
def test_app_2_documented_example_tokens_fit_the_schema(token: dict) -> None:
    VALIDATOR.validate(token)
    union = {role for a in token["affiliations"] for role in a["app_roles"]}
    assert set(token.get("app_roles", [])) == union


def test_documentation_has_an_example_per_application() -> None:
    assert len(EXAMPLES) >= len(CATALOGUE.applications)


@pytest.mark.parametrize("client_id", sorted(CATALOGUE.applications))
def test_app_2_every_projected_affiliation_fits_the_schema(client_id: str) -> None:
    people = {f"p{i}": [case[0]] for i, case in enumerate(CASES)}
    people["sue"] = [surrogate_end_user("acme")]
    state = project(world(people), CATALOGUE)
    affiliations = [
        json.loads(group.attributes[affiliation_attribute(client_id)][0])
        for group in state.groups.values()
        if group.attributes
    ]
    assert len(affiliations) == len(CASES)
    token = {
        "iacs_claims_version": 1,
        "affiliations": affiliations,
        "app_roles": sorted({r for a in affiliations for r in a["app_roles"]}),
    }
    VALIDATOR.validate(token)
    assert {ORG_A, ORG_B} <= {o for a in affiliations for o in a["organizations"]}


def test_schema_refuses_a_surrogate_with_an_organization_and_an_so_with_app_roles() -> None:
    base = EXAMPLES[0]["affiliations"][0]
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(
            {"iacs_claims_version": 1, "affiliations": [{**base, "organization": ORG_A}]}
        )
    so = EXAMPLES[2]["affiliations"][0]
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(
            {"iacs_claims_version": 1, "affiliations": [{**so, "app_roles": ["report-viewer"]}]}
        )
