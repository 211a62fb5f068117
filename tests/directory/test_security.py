"""Attacks on the directory by its own service accounts, performed against the real slapd.

Each ``test_sec_*`` test plays a compromised portal, sync or Keycloak host that holds the
account's password and speaks LDAP itself, and shows the attack refused (issue 13).
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable

import ldap3
import pytest
from ldap3.utils.conv import escape_filter_chars

from iacs.stack import slapd as launcher
from iacs.stack.slapd import SlapdInstance

from .factories import an_audit_record, an_organization, so_of

pytestmark = pytest.mark.servers

ACCOUNTS = ("portal", "sync", "keycloak")
INSUFFICIENT_ACCESS = 50
CONSTRAINT_VIOLATION = 19


def bind_as(ldap_connect, settings, account: str) -> ldap3.Connection:
    password = getattr(settings, f"{account}_bind_password").get_secret_value()
    connection = ldap_connect(getattr(settings, f"{account}_bind_dn"), password)
    assert connection.bound, connection.result
    return connection


def change_log_ldif(slapd: SlapdInstance) -> str:
    """The whole change log as slapd stores it (slapcat reads the database; no ACL applies)."""
    return subprocess.run(
        [launcher._find_program("slapcat"), "-f", str(slapd.config_path), "-b", "cn=accesslog"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


def unfolded(ldif: str) -> list[str]:
    """LDIF lines with continuation lines joined."""
    lines: list[str] = []
    for line in ldif.splitlines():
        if line.startswith(" ") and lines:
            lines[-1] += line[1:]
        else:
            lines.append(line)
    return lines


def logged_password_values(slapd: SlapdInstance, dn: str) -> list[str]:
    """The ``reqMod: userPassword...`` values the log holds for writes to ``dn``."""
    values, current = [], None
    for line in unfolded(change_log_ldif(slapd)):
        if line.lower().startswith("reqdn: "):
            current = line[7:].lower()
        elif line.startswith("reqMod:: "):  # base64: Argon2 values end in NUL padding
            line = "reqMod: " + base64.b64decode(line[9:]).decode().rstrip("\0")
        if line.startswith("reqMod: userPassword") and current == dn.lower():
            values.append(line[len("reqMod: ") :])
    return values


def stored_password(root: ldap3.Connection, dn: str) -> str:
    root.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["userPassword"])
    value = root.entries[0].userPassword.value
    return value.decode() if isinstance(value, bytes) else str(value)


def test_sec_hash_oracle_on_change_log_is_closed(
    slapd, directory, keycloak_directory, ldap_settings, ldap_connect, make_person
):
    """The issue's attack: match ``reqMod`` against a guessed hash prefix, one character at a
    time. The log does hold the hash (slapo-accesslog 2.5 cannot leave it out), so every
    guess that would be true is tried; no account gets an answer, a compare, or a value."""
    victim = directory.tree.person("oracle-victim")
    make_person("oracle-victim", password=None)
    keycloak = bind_as(ldap_connect, ldap_settings, "keycloak")
    keycloak.extend.standard.modify_password(victim, new_password="victim-password-123")
    assert keycloak.result["result"] == 0
    # An old-style {SSHA} value written by the operator, as the issue found it.
    legacy = directory.tree.person("oracle-legacy")
    make_person("oracle-legacy", password=None)
    root = ldap_connect()
    root.modify(legacy, {"userPassword": [(ldap3.MODIFY_REPLACE, ["{SSHA}abcdefghijklmnop"])]})
    assert root.result["result"] == 0

    logged = logged_password_values(slapd, victim) + logged_password_values(slapd, legacy)
    argon2 = next(value for value in logged if "{ARGON2}" in value)
    assert argon2.startswith("userPassword:= {ARGON2}$argon2")
    true_guesses = [argon2[: len("userPassword:= {ARGON2}") + n] for n in (0, 1, 5, 20)]
    true_guesses += ["userPassword:= {SSHA}a"]
    for account in ACCOUNTS:
        connection = bind_as(ldap_connect, ldap_settings, account)
        for target in (victim, legacy):
            for guess in true_guesses:
                oracle = f"(&(reqDN={escape_filter_chars(target)})(reqMod={guess}*))"
                connection.search(ldap_settings.accesslog_dn, oracle, attributes=["1.1"])
                assert connection.entries == [], (account, oracle)
            for exact in (argon2, "userPassword:= {SSHA}abcdefghijklmnop"):
                for oracle in (
                    f"(reqMod={escape_filter_chars(exact)})",
                    f"(reqMod=*{escape_filter_chars(exact[-6:])})",
                    "(reqMod=userPassword*)",
                    "(reqMod=*)",
                ):
                    connection.search(ldap_settings.accesslog_dn, oracle, attributes=["1.1"])
                    assert connection.entries == [], (account, oracle)
        # Compare is no way round: it needs the compare privilege on reqMod, which no one has.
        connection.search(
            ldap_settings.accesslog_dn,
            f"(reqDN={escape_filter_chars(victim)})",
            ldap3.LEVEL,
            attributes=["reqMod"],
        )
        for entry in connection.response:
            values = entry.get("raw_attributes", {}).get("reqMod", [])
            assert not [v for v in values if v.lower().startswith(b"userpassword")], account
            assert connection.compare(entry["dn"], "reqMod", argon2) is False
            assert connection.result["result"] == INSUFFICIENT_ACCESS, (account, connection.result)


def test_sec_change_log_still_feeds_membership_changes_to_sync(
    directory, ldap_settings, ldap_connect, make_person
):
    """What the worker needs survives the closed oracle: reqMod values other than passwords
    are readable by the sync account (no filter on them; it filters on reqStart)."""
    make_person("feed-member")
    org = an_organization()
    directory.create_organization(org)
    directory.add_member(so_of(org), "feed-member")
    sync = bind_as(ldap_connect, ldap_settings, "sync")
    group = directory.tree.role_group(so_of(org))
    sync.search(
        ldap_settings.accesslog_dn,
        f"(&(reqType=modify)(reqDN={escape_filter_chars(group)}))",
        attributes=["reqMod"],
    )
    mods = [value for entry in sync.entries for value in entry.reqMod.values]
    assert f"member:+ {directory.tree.person('feed-member')}" in mods


def test_sec_hash_oracle_on_people_and_service_accounts_is_closed(
    directory, ldap_settings, ldap_connect, make_person
):
    """No account learns anything about a stored hash: not by reading it, not by a presence,
    prefix, substring or equality filter on it, not by comparing a guess against it."""
    make_person("hash-holder", password="hash-holder-password")
    holder = directory.tree.person("hash-holder")
    root = ldap_connect()
    targets = {holder: stored_password(root, holder)}
    for account in ACCOUNTS:
        dn = getattr(ldap_settings, f"{account}_bind_dn")
        targets[dn] = stored_password(root, dn)
    assert all(value.startswith("{ARGON2}") for value in targets.values())
    for account in ACCOUNTS:
        connection = bind_as(ldap_connect, ldap_settings, account)
        for dn, stored in targets.items():
            for oracle in (
                "(userPassword=*)",
                "(userPassword={ARGON2}*)",
                f"(userPassword={escape_filter_chars(stored[:20])}*)",
                f"(userPassword=*{escape_filter_chars(stored[-8:])})",
                f"(userPassword={escape_filter_chars(stored)})",
                "(!(userPassword={SSHA}a*))",
            ):
                connection.search(dn, oracle, ldap3.BASE, attributes=["1.1"])
                assert connection.entries == [], (account, dn, oracle)
                connection.search(directory.tree.base, oracle, attributes=["1.1"])
                assert connection.entries == [], (account, oracle)
            connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["userPassword"])
            for entry in connection.response:
                assert not entry.get("raw_attributes", {}).get("userPassword"), (account, dn)
            assert connection.compare(dn, "userPassword", stored) is False
            # 50, or 32 where the entry itself is invisible (service accounts): never 5/6.
            assert connection.result["result"] in (INSUFFICIENT_ACCESS, 32), (account, dn)


def _attempts(directory, settings, slapd) -> dict[str, Callable[[ldap3.Connection], None]]:
    """Every write a service account must not make, as ``name -> attempt(connection)``."""
    tree = directory.tree
    person = tree.person("write-target")
    audit = tree.audit_record("sec-audit")
    policy = f"cn=password-policy,{tree.system}"

    def modify(dn: str, attribute: str, values: list[str], op: str = ldap3.MODIFY_REPLACE):
        return lambda c: c.modify(dn, {attribute: [(op, values)]})

    def add(dn: str, attributes: dict[str, list[str]]):
        return lambda c: c.add(dn, attributes=attributes)

    def password(dn: str):
        return lambda c: c.extend.standard.modify_password(dn, new_password="taken-over-secret-1")

    log_entry = _a_log_entry(slapd)
    attempts = {
        "help desk: add a member": modify(tree.help_desk, "member", [person], ldap3.MODIFY_ADD),
        "help desk: replace the members": modify(tree.help_desk, "member", [person]),
        "help desk: rename its role": modify(tree.help_desk, "iacsRole", ["end_user"]),
        "help desk: delete": lambda c: c.delete(tree.help_desk),
        "system: add a role group": add(
            f"cn=owned,{tree.system}",
            {"objectClass": ["iacsRoleGroup"], "cn": ["owned"], "iacsRole": ["help_desk"]},
        ),
        "password policy: weaken": modify(policy, "pwdMinLength", ["1"]),
        "password policy: delete": lambda c: c.delete(policy),
        "services: add an account": add(
            f"cn=owned,{tree.services}",
            {
                "objectClass": ["applicationProcess", "simpleSecurityObject"],
                "cn": ["owned"],
                "userPassword": ["owned-service-secret"],
            },
        ),
        "top level: add an area": add(
            f"ou=owned,{tree.base}", {"objectClass": ["organizationalUnit"], "ou": ["owned"]}
        ),
        "top level: modify the base entry": modify(tree.base, "description", ["owned"]),
        "audit: modify a record": modify(audit, "iacsOutcome", ["denied"]),
        "audit: delete a record": lambda c: c.delete(audit),
        "audit: rename a record": lambda c: c.modify_dn(audit, "iacsAuditId=renamed"),
        "change log: add an entry": add(
            "ou=owned,cn=accesslog", {"objectClass": ["organizationalUnit"], "ou": ["owned"]}
        ),
        "change log: modify an entry": modify(log_entry, "reqResult", ["1"]),
        "change log: delete an entry": lambda c: c.delete(log_entry),
        "change log: modify its root": modify("cn=accesslog", "cn", ["owned"]),
        "other person: set the password by modify": modify(
            person, "userPassword", ["taken-over-secret-1"]
        ),
        "person: point at another password policy": modify(
            person, "pwdPolicySubentry", [tree.help_desk]
        ),
        "person: flag a password reset": modify(person, "pwdReset", ["TRUE"]),
    }
    for name in ACCOUNTS:
        dn = getattr(settings, f"{name}_bind_dn")
        attempts[f"service account {name}: password modify"] = password(dn)
        attempts[f"service account {name}: replace userPassword"] = modify(
            dn, "userPassword", ["taken-over-secret-1"]
        )
        attempts[f"service account {name}: modify"] = modify(dn, "description", ["owned"])
    return attempts


def _a_log_entry(slapd: SlapdInstance) -> str:
    for line in unfolded(change_log_ldif(slapd)):
        if line.startswith("dn: reqStart="):
            return line[4:]
    raise AssertionError("the change log is empty")


KEYCLOAK_JOB = {"other person: set the password by modify"}
"""Attempts that are Keycloak's job (people's passwords, under the policy) and refused to the
portal and sync only."""


def test_sec_service_accounts_cannot_write_outside_their_job(
    slapd, directory, root_directory, ldap_settings, ldap_connect, make_person
):
    """Every write a compromised portal, sync or Keycloak host could try outside its code's
    needs is refused with insufficientAccessRights (50), and nothing changes."""
    make_person("write-target", password="write-target-password")
    root_directory.append_audit(an_audit_record(id="sec-audit"))
    refused: dict[str, list[str]] = {}
    attempts = _attempts(directory, ldap_settings, slapd)
    for account in ACCOUNTS:
        connection = bind_as(ldap_connect, ldap_settings, account)
        for name, attempt in attempts.items():
            if account == "keycloak" and name in KEYCLOAK_JOB:
                continue
            attempt(connection)
            code = connection.result["result"]
            assert code == INSUFFICIENT_ACCESS, (account, name, connection.result)
            refused.setdefault(account, []).append(name)
    # The portal's and sync's extra refusals: people are Keycloak's to write.
    person = directory.tree.person("write-target")
    for account in ("portal", "sync"):
        connection = bind_as(ldap_connect, ldap_settings, account)
        connection.extend.standard.modify_password(person, new_password="taken-over-secret-1")
        assert connection.result["result"] == INSUFFICIENT_ACCESS, account
        connection.modify(person, {"mail": [(ldap3.MODIFY_REPLACE, ["owned@example.test"])]})
        assert connection.result["result"] == INSUFFICIENT_ACCESS, account
    # Keycloak writes no authority: organizations and requests are the portal's.
    keycloak = bind_as(ldap_connect, ldap_settings, "keycloak")
    keycloak.add(
        f"ou=org-987654321,{directory.tree.organizations}",
        attributes={"objectClass": ["organizationalUnit"], "ou": ["org-987654321"]},
    )
    assert keycloak.result["result"] == INSUFFICIENT_ACCESS
    assert len(refused["portal"]) >= 25 and len(refused["keycloak"]) >= 25
    # Nothing changed.
    root = ldap_connect()
    root.search(directory.tree.help_desk, "(objectClass=*)", ldap3.BASE, attributes=["member"])
    assert not root.entries[0].member.values
    root.search(f"cn=password-policy,{directory.tree.system}", "(pwdMinLength=12)", ldap3.BASE)
    assert len(root.entries) == 1
    assert ldap_connect(person, "write-target-password").bound
    for account in ACCOUNTS:
        assert bind_as(ldap_connect, ldap_settings, account).bound
