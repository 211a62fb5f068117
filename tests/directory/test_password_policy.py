"""Passwords set through LDAP: hashed with Argon2 and held to the policy (issue 13 items 1, 9).

The policy is slapo-ppolicy's (``directory_schema/bootstrap.ldif``): at least 12 characters,
and a value must arrive in clear text so it can be checked. It binds every account that sets
a password (Keycloak's, a person changing their own); only the root DN (the operator) is a
password administrator.
"""

from __future__ import annotations

import ldap3
import pytest

from .test_security import bind_as, change_log_ldif, stored_password

pytestmark = pytest.mark.servers

CONSTRAINT_VIOLATION = 19


def test_sec_weak_password_set_through_ldap_is_refused(
    directory, ldap_settings, ldap_connect, make_person
):
    make_person("weak-target", password="the-first-password")
    target = directory.tree.person("weak-target")
    keycloak = bind_as(ldap_connect, ldap_settings, "keycloak")
    for weak in ("b", "a", "12345678901", "short-pw"):
        keycloak.extend.standard.modify_password(target, new_password=weak)
        assert keycloak.result["result"] == CONSTRAINT_VIOLATION, (weak, keycloak.result)
        keycloak.modify(target, {"userPassword": [(ldap3.MODIFY_REPLACE, [weak])]})
        assert keycloak.result["result"] == CONSTRAINT_VIOLATION, (weak, keycloak.result)
    # A pre-hashed value cannot be checked, so it is refused (no way round the length check).
    keycloak.modify(target, {"userPassword": [(ldap3.MODIFY_REPLACE, ["{SSHA}YWJjZGVmZ2g="])]})
    assert keycloak.result["result"] == CONSTRAINT_VIOLATION, keycloak.result
    # A person changing their own password is held to it too.
    person = ldap_connect(target, "the-first-password")
    person.extend.standard.modify_password(target, new_password="b")
    assert person.result["result"] == CONSTRAINT_VIOLATION
    # Nothing changed: the first password still binds, the weak ones do not.
    assert ldap_connect(target, "the-first-password").bound
    assert not ldap_connect(target, "b").bound


def test_a_password_of_twelve_characters_or_more_is_accepted_and_hashed_with_argon2(
    slapd, directory, ldap_settings, ldap_connect, make_person
):
    make_person("strong-target", password=None)
    target = directory.tree.person("strong-target")
    keycloak = bind_as(ldap_connect, ldap_settings, "keycloak")
    keycloak.extend.standard.modify_password(target, new_password="exactly12chr")
    assert keycloak.result["result"] == 0, keycloak.result
    assert ldap_connect(target, "exactly12chr").bound
    root = ldap_connect()
    assert stored_password(root, target).startswith("{ARGON2}$argon2")
    # A clear-text modify (Keycloak without the password modify operation) is hashed too,
    # and the clear text reaches neither the entry nor the change log.
    keycloak.modify(
        target, {"userPassword": [(ldap3.MODIFY_REPLACE, ["clear-text-written-by-modify"])]}
    )
    assert keycloak.result["result"] == 0, keycloak.result
    assert stored_password(root, target).startswith("{ARGON2}$argon2")
    assert ldap_connect(target, "clear-text-written-by-modify").bound
    assert "clear-text-written-by-modify" not in change_log_ldif(slapd)
