"""Shared fixtures: real servers started by the project's own stack (see tests/fixtures/)."""

pytest_plugins = [
    "tests.fixtures.slapd",
    "tests.fixtures.keycloak",
]
