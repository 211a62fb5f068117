"""Shared fixtures: real servers started by the project's own stack (see tests/fixtures/).

Tests run in the development environment (the published development secrets are defaults
there); a test that needs production passes ``environment="production"`` explicitly.

``slow``: the modules of ``SLOW_MODULES`` are marked here, by path, so that a developer can
run the rest alone (``pytest -m "not slow"``, see README): those that start and stop
servers of their own (beside the session's), drive a browser, or run the benchmark. They still
run in ``make test``.
"""

import os
from pathlib import Path

import pytest

os.environ.setdefault("IACS_ENVIRONMENT", "development")

pytest_plugins = [
    "tests.fixtures.slapd",
    "tests.fixtures.keycloak",
    "tests.fixtures.redis",
    "tests.fixtures.postgres",
    "tests.fixtures.cluster",
    "tests.fixtures.smtp",
]

SLOW_MODULES = {
    "bench/test_bench_servers.py": "the CI-size benchmark: its own slapd, Keycloak and realm",
    "browser/test_walkthrough.py": "headless Chromium through the whole product",
    "deploy/test_compose_stack.py": "builds and starts the compose stack (also marked compose)",
    "service/test_slapd_killed_during_approvals.py": "kills and restarts its own slapd",
    "stack/test_keycloak_launcher.py": "starts Keycloaks of its own",
    "sync/test_resilience.py": "stops and restarts its own slapd and Keycloak",
}
"""Test modules (relative to ``tests/``) marked ``slow``, and why."""

_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of ``SLOW_MODULES`` ``slow``."""
    for item in items:
        path = Path(str(item.fspath)).resolve()
        if path.is_relative_to(_TESTS) and path.relative_to(_TESTS).as_posix() in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
