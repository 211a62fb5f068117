"""The change feed: successful writes recorded by slapo-accesslog under ``cn=accesslog``.

Each write is one entry whose ``reqStart`` (GeneralizedTime with microseconds, unique and
increasing) is the cursor. A consumer keeps the last cursor it applied and asks for what came
after it; a cursor older than the oldest entry means the log was purged past it (a gap), and
the consumer must reconcile fully.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import ldap3

from iacs.directory import filters
from iacs.directory.connection import ConnectionPool
from iacs.directory.dn import Tree
from iacs.domain import Membership

_KIND = {"add": "add", "delete": "delete", "modify": "modify", "modrdn": "modrdn"}


@dataclass(frozen=True, slots=True)
class Change:
    """One successful write to the IACS tree."""

    cursor: str
    """The ``reqStart`` of the write: pass it to ``changes_since`` to continue after it."""
    kind: str
    """add, delete, modify or modrdn."""
    dn: str
    """The entry written."""
    usernames: frozenset[str]
    """People whose profile or memberships this write touched (from the DN and member values)."""
    membership: Membership | None
    """The role group written, when the entry is one."""
    entry_id: str = ""
    """The entryUUID of the log entry itself: made by each provider for its own log, so it
    tells two providers' entries with the same reqStart apart."""


def _usernames(tree: Tree, dn: str, mods: Sequence[str]) -> frozenset[str]:
    names: set[str] = set()
    person = tree.username_of(dn)
    if person is not None:
        names.add(person)
    for mod in mods:
        attribute, _, rest = mod.partition(":")
        if attribute.lower() != "member" or len(rest) < 2:
            continue
        username = tree.username_of(rest[2:])  # "+ <dn>", "- <dn>", "= <dn>"
        if username is not None:
            names.add(username)
    return frozenset(names)


def _change(tree: Tree, attributes: Mapping[str, list[str]]) -> Change:
    dn = (attributes.get("reqdn") or [""])[0]
    return Change(
        cursor=(attributes.get("reqstart") or [""])[0],
        kind=_KIND.get((attributes.get("reqtype") or [""])[0].lower(), "other"),
        dn=dn,
        usernames=_usernames(tree, dn, attributes.get("reqmod", ())),
        membership=tree.membership_of(dn),
        entry_id=(attributes.get("entryuuid") or [""])[0],
    )


def changes_since(
    pool: ConnectionPool, tree: Tree, log_base: str, cursor: str | None, *, limit: int = 1000
) -> list[Change]:
    """Writes after ``cursor`` (all retained writes when None), oldest first, at most ``limit``."""
    after = ""
    if cursor:
        after = filters.all_of(
            f"(reqStart>={filters.value(cursor)})", filters.negate(filters.eq("reqStart", cursor))
        )
    # The sync workers' lease is renewed every few seconds and is nothing to project: left out
    # by slapd, so an idle feed does not re-read every renewal since its cursor.
    not_the_lease = filters.negate(filters.eq("reqDN", tree.sync_lease))
    found = pool.search(
        log_base,
        filters.all_of("(objectClass=auditWriteObject)", "(reqResult=0)", not_the_lease, after),
        scope=ldap3.LEVEL,
        attributes=("reqStart", "reqType", "reqDN", "reqMod", "entryUUID"),
        size_limit=limit,
    )
    changes = sorted((_change(tree, attributes) for _, attributes in found), key=lambda c: c.cursor)
    return [change for change in changes if tree.contains(change.dn)]


def has_entry(
    pool: ConnectionPool, log_base: str, cursor: str, entry_id: str | None = None
) -> bool:
    """Whether this log holds the write whose ``reqStart`` is ``cursor`` (and, when given,
    whose log entry's entryUUID is ``entry_id``)."""
    found = pool.search(
        log_base,
        filters.all_of("(objectClass=auditWriteObject)", filters.eq("reqStart", cursor)),
        scope=ldap3.LEVEL,
        attributes=("entryUUID",),
        size_limit=1,
    )
    if not found:
        return False
    return entry_id is None or entry_id in found[0][1].get("entryuuid", [])


def oldest_cursor(pool: ConnectionPool, log_base: str) -> str | None:
    """The ``reqStart`` of the oldest retained write, or None when the log is empty."""
    found = pool.search(
        log_base,
        "(objectClass=auditWriteObject)",
        scope=ldap3.LEVEL,
        attributes=("reqStart",),
        size_limit=1,
    )
    return min((attributes["reqstart"][0] for _, attributes in found), default=None)
