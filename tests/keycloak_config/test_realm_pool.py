"""The test realm pool hands a realm on only as it was made (``tests/fixtures/realm_pool.py``).

Against the session's real Keycloak, with a pool and a kind of realm of this module's own, so
that no other test's realm is involved.
"""

from __future__ import annotations

import uuid

import pytest

from tests.fixtures.keycloak import KeycloakLike, _admin, unique_realm_name
from tests.fixtures.realm_pool import RealmPool

pytestmark = pytest.mark.servers


def test_a_realm_is_reused_cleaned_and_a_changed_realm_never(keycloak: KeycloakLike) -> None:
    pool = RealmPool(lambda: _admin(keycloak))
    kind = ("pool-test", uuid.uuid4().hex)

    def make(name: str) -> str:
        _admin(keycloak).create_realm({"realm": name, "enabled": True})
        return name

    try:
        with pool.lease(kind, make, unique_realm_name) as first:
            admin = _admin(keycloak, first)
            admin.create_user({"username": "left-behind", "enabled": True})
            admin.create_group({"name": "left-behind"})
        with pool.lease(kind, make, unique_realm_name) as second:
            assert second == first  # reused ...
            admin = _admin(keycloak, second)
            assert admin.get_users({"username": "left-behind"}) == []  # ... without what the
            assert admin.get_groups() == []  # previous test made
            admin.update_realm(second, {"displayName": "changed by a test"})
        with pool.lease(kind, make, unique_realm_name) as third:
            assert third != second  # a changed realm is deleted, never handed on
            assert "displayName" not in _admin(keycloak, third).get_realm(third)
            assert second not in {realm["realm"] for realm in _admin(keycloak).get_realms()}
        assert (pool.made, pool.reused, pool.discarded) == (2, 1, 1)
    finally:
        pool.close()
    assert third not in {realm["realm"] for realm in _admin(keycloak).get_realms()}
