"""Shared fixtures: real servers started by the project's own stack (see tests/fixtures/).

Tests run in the development environment (the published development secrets are defaults
there); a test that needs production passes ``environment="production"`` explicitly.
"""

import os

os.environ.setdefault("IACS_ENVIRONMENT", "development")

pytest_plugins = [
    "tests.fixtures.slapd",
    "tests.fixtures.keycloak",
    "tests.fixtures.redis",
]
