"""slapd enforces the project schema: entries that violate it are refused."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.servers

REQUEST = {
    "objectClass": ["iacsRequest"],
    "iacsRequestId": ["r-1"],
    "iacsRequestKind": ["end_user"],
    "iacsRequester": ["alice"],
    "iacsRequestStatus": ["pending"],
    "iacsCreatedAt": ["20250101120000Z"],
    "iacsExpiresAt": ["20250131120000Z"],
}


def add(connection, dn, attributes):
    connection.add(dn, attributes=attributes)
    return connection.result["result"]


def test_a_valid_request_entry_is_accepted(root_directory, ldap_connect):
    connection = ldap_connect()
    assert add(connection, root_directory.tree.request("r-1"), REQUEST) == 0
    assert root_directory.get_request("r-1").requester == "alice"


def test_a_request_must_be_named_by_its_own_id(root_directory, ldap_connect):
    connection = ldap_connect()
    # Named by an attribute iacsRequest does not allow: objectClassViolation.
    assert add(connection, f"cn=r-1,{root_directory.tree.requests}", REQUEST) == 65
    # An id that contradicts the RDN: iacsRequestId is single-valued, so two values are refused.
    contradicting = {**REQUEST, "iacsRequestId": ["r-2"]}
    assert add(connection, root_directory.tree.request("r-1"), contradicting) in (19, 64)
    # Left out, slapd takes the naming value from the DN (and only that value).
    missing = {key: value for key, value in REQUEST.items() if key != "iacsRequestId"}
    assert add(connection, root_directory.tree.request("r-1"), missing) == 0
    assert root_directory.get_request("r-1").id == "r-1"


def test_an_undefined_attribute_is_refused(root_directory, ldap_connect):
    attributes = {**REQUEST, "iacsFavouriteColour": ["green"]}
    assert add(ldap_connect(), root_directory.tree.request("r-1"), attributes) == 17


def test_a_missing_required_attribute_is_refused(root_directory, ldap_connect):
    attributes = {key: value for key, value in REQUEST.items() if key != "iacsRequester"}
    assert add(ldap_connect(), root_directory.tree.request("r-1"), attributes) == 65


def test_single_valued_and_syntax_rules_are_enforced(root_directory, ldap_connect):
    connection = ldap_connect()
    twice = {**REQUEST, "iacsRequestStatus": ["pending", "approved"]}
    assert add(connection, root_directory.tree.request("r-1"), twice) == 19
    bad_time = {**REQUEST, "iacsCreatedAt": ["yesterday"]}
    assert add(connection, root_directory.tree.request("r-1"), bad_time) == 21
    bad_dn = {
        "objectClass": ["iacsSurrogateGroup"],
        "cn": ["acme"],
        "iacsStatus": ["pending"],
        "iacsAssociatedOrganization": ["not a dn"],
    }
    assert add(connection, root_directory.tree.surrogate_group("acme"), bad_dn) == 21


def test_role_groups_may_be_empty_and_organizations_are_auxiliary(root_directory, ldap_connect):
    connection = ldap_connect()
    assert (
        add(
            connection,
            root_directory.tree.practitioner("1"),
            {"objectClass": ["iacsRoleGroup"], "cn": ["npi-1"]},
        )
        == 0
    )
    lonely = {
        "objectClass": ["iacsOrganization"],
        "ou": ["org-1"],
        "iacsIdentifier": ["1"],
        "iacsStatus": ["pending"],
    }
    # An auxiliary class alone has no structural class: refused.
    assert add(connection, root_directory.tree.organization("org-1"), lonely) == 65
