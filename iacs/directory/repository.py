"""``Directory``: the IACS tree as domain objects, bound as one service account.

The portal, the sync worker and the tests each construct one ``Directory`` from
``LdapSettings`` and the account they act as; it is safe to share between threads (see
``connection.ConnectionPool``). Every method either succeeds, returns domain objects, or raises
one of ``iacs.directory.errors``.
"""

from __future__ import annotations

import contextlib
from types import TracebackType
from typing import Literal

import ldap3

from iacs.directory import changes as change_feed
from iacs.directory import filters
from iacs.directory.connection import (
    ATTRIBUTE_OR_VALUE_EXISTS,
    CONSTRAINT_VIOLATION,
    NO_SUCH_ATTRIBUTE,
    NO_SUCH_OBJECT,
    ConnectionPool,
)
from iacs.directory.dn import Tree
from iacs.directory.errors import AlreadyExists, DirectoryError, NotFound, PersonExists
from iacs.directory.mapping import PERSON_ATTRIBUTES, person_entry, person_from
from iacs.directory.organizations import OrganizationStore
from iacs.directory.outbox import OutboxStore
from iacs.directory.records import RecordStore
from iacs.directory.snapshot import DirectorySnapshot, take_snapshot
from iacs.domain import Membership, Person
from iacs.settings import LdapSettings

Account = Literal["portal", "sync", "keycloak"]


class Directory(OrganizationStore, RecordStore, OutboxStore):
    """The only gateway to LDAP: people, memberships, organizations, groups, requests, audit.

    ``account`` picks the bind DN and password from ``settings`` (``portal``, ``sync`` or
    ``keycloak``); ``bind_dn``/``password`` override them (the tests' root DN). What the account
    may do is decided by slapd's ACLs, not here: a refused write raises ``AccessDenied``.
    """

    def __init__(
        self,
        settings: LdapSettings,
        account: Account = "portal",
        *,
        bind_dn: str | None = None,
        password: str | None = None,
        pool_size: int = 8,
    ) -> None:
        if bind_dn is None:
            if account not in ("portal", "sync", "keycloak"):
                raise ValueError(f"unknown account {account!r}")
            bind_dn = getattr(settings, f"{account}_bind_dn")
            password = getattr(settings, f"{account}_bind_password").get_secret_value()
        self.settings = settings
        self.bind_dn = bind_dn
        self.tree = Tree(settings.base_dn)
        self._pool = ConnectionPool(
            settings.url,
            bind_dn,
            password or "",
            timeout=settings.timeout_seconds,
            size=pool_size,
            label=bind_dn,
            ca_file=settings.ca_file,
            write_url=settings.write_url,
        )

    def close(self) -> None:
        """Unbind the pooled connections."""
        self._pool.close()

    def __enter__(self) -> Directory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def check(self) -> None:
        """Bind and ask Who-am-I now; raise ``BindFailed`` or ``DirectoryUnavailable`` if not.

        For a command's start: a wrong URL or password is reported before any work begins,
        not from inside the first request or the first pass.
        """
        self._pool.who_am_i()

    def ping(self) -> bool:
        """True when slapd answers a Who-am-I as this account (for health checks)."""
        try:
            self._pool.who_am_i()
        except DirectoryError:
            return False
        return True

    # -- people ----------------------------------------------------------------------------------

    def get_person(self, username: str) -> Person | None:
        """The person with this username, or None."""
        dn = self.tree.person(username)
        found = self._pool.search(
            dn, "(objectClass=inetOrgPerson)", scope=ldap3.BASE, attributes=PERSON_ATTRIBUTES
        )
        return person_from(found[0][1]) if found else None

    def add_person(self, person: Person, password: str | None = None) -> None:
        """Add a person (seed data, tests), then set the password through slapd so it is hashed.

        Needs an account that may write ``ou=people``: Keycloak's, or the root DN.
        """
        dn = self.tree.person(person.username)
        try:
            self._pool.add(dn, person_entry(person))
        except AlreadyExists as exc:
            raise PersonExists(f"person {person.username!r} already exists", dn=dn) from exc
        if password:
            try:
                self._pool.set_password(dn, password)
            except BaseException:
                with contextlib.suppress(DirectoryError):
                    self._pool.delete(dn, allow=(NO_SUCH_OBJECT,))
                raise

    def delete_person(self, username: str) -> None:
        """Remove a person; refint drops their ``member`` values from every role group."""
        self._pool.delete(self.tree.person(username))

    def find_people(self, text: str = "", limit: int = 50) -> list[Person]:
        """People whose username, name or e-mail contains ``text``, by username."""
        search = ""
        if text:
            search = filters.any_of(
                filters.contains(attribute, text)
                for attribute in ("uid", "cn", "sn", "displayName", "mail")
            )
        found = self._pool.search(
            self.tree.people,
            filters.all_of(filters.eq("objectClass", "inetOrgPerson"), search),
            scope=ldap3.LEVEL,
            attributes=PERSON_ATTRIBUTES,
            size_limit=limit,
        )
        return sorted(
            (person_from(attributes) for _, attributes in found), key=lambda p: p.username
        )

    # -- memberships -------------------------------------------------------------------------------

    def memberships_of(self, username: str) -> frozenset[Membership]:
        """Every role the person holds, from ``memberOf`` in one read (empty if no such person)."""
        found = self._pool.search(
            self.tree.person(username),
            "(objectClass=inetOrgPerson)",
            scope=ldap3.BASE,
            attributes=("memberOf",),
        )
        if not found:
            return frozenset()
        parsed = (self.tree.membership_of(dn) for dn in found[0][1].get("memberof", ()))
        return frozenset(membership for membership in parsed if membership is not None)

    def members_of(self, membership: Membership) -> frozenset[str]:
        """Usernames holding this role in this scope (``NotFound`` if the scope does not exist)."""
        dn = self.tree.role_group(membership)
        found = self._pool.search(
            dn, "(objectClass=iacsRoleGroup)", scope=ldap3.BASE, attributes=("member",)
        )
        if not found:
            raise NotFound(f"no role group {dn}", result_code=32, dn=dn)
        names = (self.tree.username_of(value) for value in found[0][1].get("member", ()))
        return frozenset(name for name in names if name is not None)

    def add_member(self, membership: Membership, username: str) -> None:
        """Write one role membership (DEC-4: as the effect of an approved request). Idempotent.

        ``NotFound`` when the person or the scope's role group does not exist.
        """
        group = self.tree.role_group(membership)
        code = self._pool.modify(
            group,
            {"member": [(ldap3.MODIFY_ADD, [self.tree.person(username)])]},
            allow=(ATTRIBUTE_OR_VALUE_EXISTS, CONSTRAINT_VIOLATION, NO_SUCH_OBJECT),
        )
        if code == CONSTRAINT_VIOLATION:  # memberof-dangling error: no such person
            raise NotFound(
                f"no person {username!r}", result_code=code, dn=self.tree.person(username)
            )
        if code == NO_SUCH_OBJECT:
            raise NotFound(f"no role group {group}", result_code=code, dn=group)

    def remove_member(self, membership: Membership, username: str) -> None:
        """Remove one role membership (revocation, resignation, lapse). Idempotent."""
        self._pool.modify(
            self.tree.role_group(membership),
            {"member": [(ldap3.MODIFY_DELETE, [self.tree.person(username)])]},
            allow=(NO_SUCH_ATTRIBUTE, NO_SUCH_OBJECT),
        )

    # -- for the sync worker ---------------------------------------------------------------

    def snapshot(self, *, page_size: int = 1000) -> DirectorySnapshot:
        """Every person with their memberships, and every organization and group (two searches)."""
        return take_snapshot(self._pool, self.tree, page_size=page_size)

    def changes_since(self, cursor: str | None, *, limit: int = 1000) -> list[change_feed.Change]:
        """Writes to the IACS tree after ``cursor`` (a ``reqStart``), oldest first."""
        return change_feed.changes_since(
            self._pool, self.tree, self.settings.accesslog_dn, cursor, limit=limit
        )

    def has_change(self, cursor: str, entry_id: str | None = None) -> bool:
        """Whether the log read here holds the write ``cursor`` names, with the log entry
        ``entry_id`` when given (``sync.feed``: another provider's log holds the same reqStart
        values under other entries; a purged cursor is not there at all)."""
        return change_feed.has_entry(self._pool, self.settings.accesslog_dn, cursor, entry_id)

    # -- the sync workers' lease -----------------------------------------------------------

    def read_lease(self) -> str | None:
        """The lease's value (``"<holder> <expiry>"``) on the designated provider; None: free."""
        found = self._pool.primary.read(self.tree.sync_lease, ("iacsLease",))
        if found is None:
            raise NotFound(f"the lease entry {self.tree.sync_lease} is missing")
        values = found.get("iacslease") or []
        return values[0] if values else None

    def swap_lease(self, expected: str | None, new: str | None) -> bool:
        """Replace the lease's value ``expected`` by ``new`` in ONE modify, or do nothing.

        The compare-and-swap of DEC-3: the modify deletes the exact old value and adds the new
        one, so slapd refuses it (noSuchAttribute) when another worker changed the value in
        between; taking a free lease adds to a SINGLE-VALUE attribute, which slapd refuses
        (constraintViolation) once someone else added one. True when this swap won.
        """
        ops: list[tuple[str, list[str]]] = []
        if expected is not None:
            ops.append((ldap3.MODIFY_DELETE, [expected]))
        if new is not None:
            ops.append((ldap3.MODIFY_ADD, [new]))
        if not ops:
            return True
        code = self._pool.primary.modify(
            self.tree.sync_lease,
            {"iacsLease": ops},
            allow=(NO_SUCH_ATTRIBUTE, CONSTRAINT_VIOLATION, ATTRIBUTE_OR_VALUE_EXISTS),
            idempotent=False,
        )
        return code == 0

    def oldest_change_cursor(self) -> str | None:
        """The oldest retained ``reqStart``: a cursor older than this has missed writes."""
        return change_feed.oldest_cursor(self._pool, self.settings.accesslog_dn)
