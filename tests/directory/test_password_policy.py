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
INSUFFICIENT_ACCESS = 50


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


def test_sec_no_keycloak_admin_call_can_set_a_help_desk_password(
    directory, ldap_settings, ldap_connect, make_person
):
    """A compromised sync host holds Keycloak's user `manage` right (logout needs it, and with it
    comes reset-password): whatever it asks Keycloak, Keycloak's account cannot write a help-desk
    password, so the help desk cannot be taken over by a reset. Others' passwords it still sets."""
    make_person("desk-person", password="the-operators-password")
    make_person("plain-person", password="the-first-password")
    desk = directory.tree.person("desk-person")
    root = ldap_connect()
    root.modify(directory.tree.help_desk, {"member": [(ldap3.MODIFY_ADD, [desk])]})
    assert root.result["result"] == 0, root.result
    keycloak = bind_as(ldap_connect, ldap_settings, "keycloak")
    keycloak.extend.standard.modify_password(desk, new_password="an-attackers-passphrase")
    assert keycloak.result["result"] == INSUFFICIENT_ACCESS, keycloak.result
    keycloak.modify(desk, {"userPassword": [(ldap3.MODIFY_REPLACE, ["an-attackers-passphrase"])]})
    assert keycloak.result["result"] == INSUFFICIENT_ACCESS, keycloak.result
    assert ldap_connect(desk, "the-operators-password").bound
    assert not ldap_connect(desk, "an-attackers-passphrase").bound
    plain = directory.tree.person("plain-person")
    keycloak.extend.standard.modify_password(plain, new_password="a-good-new-passphrase")
    assert keycloak.result["result"] == 0, keycloak.result
