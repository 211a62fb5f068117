"""Organizations, user groups, surrogate groups and practitioner groups in the directory.

Creation is keyed by DN (ORG-2: the organization's DN is derived from its normalized
identifier), so a second add of the same key fails with entryAlreadyExists (68) under any
concurrency, without locks. An entity and its role groups are several entries: they are added
parent first, and if a child cannot be added the ones already added are removed again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import ldap3

from iacs.directory import filters
from iacs.directory.connection import (
    ATTRIBUTE_OR_VALUE_EXISTS,
    NO_SUCH_ATTRIBUTE,
    NO_SUCH_OBJECT,
    ConnectionPool,
)
from iacs.directory.dn import (
    BACKUP_SECURITY_OFFICIALS_RDN,
    END_USERS_RDN,
    GROUP_ADMINISTRATORS_RDN,
    PRACTITIONER_PREFIX,
    SECURITY_OFFICIAL_RDN,
    Tree,
    split_dn,
)
from iacs.directory.errors import (
    AlreadyExists,
    DirectoryError,
    GroupExists,
    InvalidEntry,
    NotFound,
    OrganizationExists,
    UnexpectedStatus,
)
from iacs.directory.mapping import (
    ORGANIZATION_ATTRIBUTES,
    SURROGATE_GROUP_ATTRIBUTES,
    USER_GROUP_ATTRIBUTES,
    checked,
    encode_postal_address,
    enum_value,
    organization_entry,
    organization_from,
    role_group_entry,
    surrogate_group_entry,
    surrogate_group_from,
    user_group_entry,
    user_group_from,
)
from iacs.domain import (
    EntityStatus,
    Organization,
    ProviderType,
    Role,
    SurrogateGroup,
    UserGroup,
    organization_id,
)

Changes = dict[str, list[tuple[str, list[str]]]]


class OrganizationStore:
    """The part of ``Directory`` that manages organizations and groups (see ``Directory``)."""

    _pool: ConnectionPool
    tree: Tree

    # -- shared helpers ------------------------------------------------------------------------

    def _add_with_children(
        self,
        dn: str,
        entry: dict[str, list[str]],
        children: Sequence[tuple[str, dict[str, list[str]]]],
        exists: type[AlreadyExists],
        what: str,
    ) -> None:
        try:
            self._pool.add(dn, entry)
        except AlreadyExists as exc:
            raise exists(f"{what} already exists", result_code=68, dn=dn) from exc
        except NotFound as exc:
            raise NotFound(f"the parent of {what} does not exist", result_code=32, dn=dn) from exc
        added = [dn]
        try:
            for child_dn, child in children:
                self._pool.add(child_dn, child)
                added.append(child_dn)
        except BaseException:
            for undo in reversed(added):
                with contextlib.suppress(DirectoryError):
                    self._pool.delete(undo, allow=(NO_SUCH_OBJECT,))
            raise

    def _delete_subtree(self, dn: str) -> None:
        found = self._pool.search(dn, "(objectClass=*)", attributes=("1.1",))
        if not found:
            raise NotFound(f"{dn} does not exist", result_code=32, dn=dn)
        # A child's DN is its parent's DN with one more RDN: longest first deletes leaves first.
        for entry_dn, _ in sorted(found, key=lambda item: len(split_dn(item[0])), reverse=True):
            self._pool.delete(entry_dn, allow=(NO_SUCH_OBJECT,))

    def _set_status(self, dn: str, status: EntityStatus, expected: EntityStatus | None) -> None:
        new = enum_value(EntityStatus, status, "iacsStatus")
        if expected is None:
            changes: Changes = {"iacsStatus": [(ldap3.MODIFY_REPLACE, [new])]}
        else:
            old = enum_value(EntityStatus, expected, "iacsStatus")
            changes = {"iacsStatus": [(ldap3.MODIFY_DELETE, [old]), (ldap3.MODIFY_ADD, [new])]}
        code = self._pool.modify(dn, changes, allow=(NO_SUCH_ATTRIBUTE,))
        if code == NO_SUCH_ATTRIBUTE:
            raise UnexpectedStatus(f"{dn} is not {expected}", result_code=code, dn=dn)

    def _update_profile(self, dn: str, values: dict[str, str | None]) -> None:
        changes: Changes = {
            attribute: [(ldap3.MODIFY_REPLACE, [checked(attribute, value)] if value else [])]
            for attribute, value in values.items()
            if value is not None
        }
        if changes:
            self._pool.modify(dn, changes)

    def _read_one(
        self, dn: str, object_class: str, attributes: Sequence[str]
    ) -> dict[str, list[str]] | None:
        found = self._pool.search(
            dn, filters.eq("objectClass", object_class), scope=ldap3.BASE, attributes=attributes
        )
        return found[0][1] if found else None

    def _require_organization(self, organization_id: str) -> None:
        if self.get_organization(organization_id) is None:
            dn = self.tree.organization(organization_id)
            raise NotFound(f"no organization {organization_id!r}", result_code=32, dn=dn)

    def _group_role_groups(self, parent: str) -> list[tuple[str, dict[str, list[str]]]]:
        return [
            (
                f"cn={GROUP_ADMINISTRATORS_RDN},{parent}",
                role_group_entry(GROUP_ADMINISTRATORS_RDN, Role.USER_GROUP_ADMINISTRATOR),
            ),
            (f"cn={END_USERS_RDN},{parent}", role_group_entry(END_USERS_RDN, Role.END_USER)),
        ]

    # -- organizations -------------------------------------------------------------------------

    def create_organization(self, org: Organization) -> None:
        """Add ``ou=<org.id>`` with its SO and BSO role groups and ``ou=groups`` (ORG-1, ORG-2).

        Raises ``OrganizationExists`` when an organization with the same normalized identifier
        is already registered, however close together the two registrations arrive.
        """
        expected_id = organization_id(org.identifier)
        if org.id != expected_id or org.identifier != expected_id.removeprefix("org-"):
            raise InvalidEntry(
                f"organization id {org.id!r} must be {expected_id!r}, derived from the normalized "
                "identifier (ORG-2)"
            )
        dn = self.tree.organization(org.id)
        children = [
            (
                f"cn={SECURITY_OFFICIAL_RDN},{dn}",
                role_group_entry(SECURITY_OFFICIAL_RDN, Role.SECURITY_OFFICIAL),
            ),
            (
                f"cn={BACKUP_SECURITY_OFFICIALS_RDN},{dn}",
                role_group_entry(BACKUP_SECURITY_OFFICIALS_RDN, Role.BACKUP_SECURITY_OFFICIAL),
            ),
            (
                self.tree.organization_groups(org.id),
                {"objectClass": ["organizationalUnit"], "ou": ["groups"]},
            ),
        ]
        self._add_with_children(
            dn, organization_entry(org), children, OrganizationExists, f"organization {org.id}"
        )

    def get_organization(self, organization_id: str) -> Organization | None:
        """The organization, or None."""
        dn = self.tree.organization(organization_id)
        attributes = self._read_one(dn, "iacsOrganization", ORGANIZATION_ATTRIBUTES)
        return organization_from(dn, attributes) if attributes is not None else None

    def find_organizations(
        self, text: str = "", *, status: EntityStatus | None = None, limit: int = 100
    ) -> list[Organization]:
        """Organizations whose name, identifier or id contains ``text``, by name."""
        search = ""
        if text:
            search = filters.any_of(
                filters.contains(attribute, text)
                for attribute in ("displayName", "iacsIdentifier", "ou")
            )
        found = self._pool.search(
            self.tree.organizations,
            filters.all_of(
                filters.eq("objectClass", "iacsOrganization"),
                filters.eq("iacsStatus", status.value) if status else "",
                search,
            ),
            scope=ldap3.LEVEL,
            attributes=ORGANIZATION_ATTRIBUTES,
            size_limit=limit,
        )
        orgs = [organization_from(dn, attributes) for dn, attributes in found]
        return sorted(orgs, key=lambda org: (org.name.lower(), org.id))

    def update_organization_profile(
        self,
        organization_id: str,
        *,
        name: str | None = None,
        address: str | None = None,
        phone: str | None = None,
        provider_type: ProviderType | None = None,
    ) -> None:
        """Replace the given profile fields (None: unchanged, "": removed) in one modify (ORG-5)."""
        self._update_profile(
            self.tree.organization(organization_id),
            {
                "displayName": name,
                "postalAddress": encode_postal_address(address) if address is not None else None,
                "telephoneNumber": phone,
                "iacsProviderType": (
                    enum_value(ProviderType, provider_type, "iacsProviderType")
                    if provider_type is not None
                    else None
                ),
            },
        )

    def set_organization_status(
        self,
        organization_id: str,
        status: EntityStatus,
        *,
        expected: EntityStatus | None = None,
    ) -> None:
        """Set the status; with ``expected``, only from that status (else ``UnexpectedStatus``)."""
        self._set_status(self.tree.organization(organization_id), status, expected)

    def delete_organization(self, organization_id: str, *, only_if_pending: bool = True) -> None:
        """Remove the organization and its subtree (a rejected SO registration).

        With ``only_if_pending`` the status is first swapped pending → rejected in one modify, so
        an organization that was approved meanwhile is never deleted (``UnexpectedStatus``).
        """
        dn = self.tree.organization(organization_id)
        if only_if_pending:
            self._set_status(dn, EntityStatus.REJECTED, EntityStatus.PENDING)
        self._delete_subtree(dn)

    # -- user groups -----------------------------------------------------------------------------

    def create_user_group(self, group: UserGroup) -> None:
        """Add the user group (status as given, normally pending) with its UGA and EU role groups.

        ``GroupExists`` when the organization already has a group with this id (UGA-1: the
        second requester joins the existing group); ``NotFound`` when the organization does not.
        """
        dn = self.tree.user_group(group.organization_id, group.id)
        self._add_with_children(
            dn,
            user_group_entry(group),
            self._group_role_groups(dn),
            GroupExists,
            f"user group {group.id} of {group.organization_id}",
        )

    def get_user_group(self, organization_id: str, group_id: str) -> UserGroup | None:
        """The organization's user group, or None."""
        dn = self.tree.user_group(organization_id, group_id)
        attributes = self._read_one(dn, "iacsUserGroup", USER_GROUP_ATTRIBUTES)
        return user_group_from(dn, attributes) if attributes is not None else None

    def list_user_groups(
        self, organization_id: str, *, status: EntityStatus | None = None
    ) -> list[UserGroup]:
        """The organization's user groups by name ([] when the organization does not exist)."""
        found = self._pool.search(
            self.tree.organization_groups(organization_id),
            filters.all_of(
                filters.eq("objectClass", "iacsUserGroup"),
                filters.eq("iacsStatus", status.value) if status else "",
            ),
            scope=ldap3.LEVEL,
            attributes=USER_GROUP_ATTRIBUTES,
        )
        groups = [user_group_from(dn, attributes) for dn, attributes in found]
        return sorted(groups, key=lambda group: (group.name.lower(), group.id))

    def update_user_group_profile(
        self,
        organization_id: str,
        group_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> None:
        """Replace the given profile fields (None: unchanged, "": removed) (UGA-3)."""
        self._update_profile(
            self.tree.user_group(organization_id, group_id),
            {"displayName": name, "description": description},
        )

    def set_user_group_status(
        self,
        organization_id: str,
        group_id: str,
        status: EntityStatus,
        *,
        expected: EntityStatus | None = None,
    ) -> None:
        self._set_status(self.tree.user_group(organization_id, group_id), status, expected)

    def delete_user_group(self, organization_id: str, group_id: str) -> None:
        """Remove a group that is still pending (its registration was rejected)."""
        dn = self.tree.user_group(organization_id, group_id)
        self._set_status(dn, EntityStatus.REJECTED, EntityStatus.PENDING)
        self._delete_subtree(dn)

    # -- surrogate groups --------------------------------------------------------------------------

    def create_surrogate_group(self, group: SurrogateGroup) -> None:
        """Add the SUG and its UGA and EU role groups (SUG-1); ``GroupExists`` if the id is used."""
        for org_id in group.associated_organizations:
            self._require_organization(org_id)
        dn = self.tree.surrogate_group(group.id)
        self._add_with_children(
            dn,
            surrogate_group_entry(group, self.tree),
            self._group_role_groups(dn),
            GroupExists,
            f"surrogate group {group.id}",
        )

    def get_surrogate_group(self, surrogate_group_id: str) -> SurrogateGroup | None:
        """The surrogate group, or None."""
        dn = self.tree.surrogate_group(surrogate_group_id)
        attributes = self._read_one(dn, "iacsSurrogateGroup", SURROGATE_GROUP_ATTRIBUTES)
        return surrogate_group_from(dn, attributes, self.tree) if attributes is not None else None

    def list_surrogate_groups(
        self, *, organization_id: str | None = None, status: EntityStatus | None = None
    ) -> list[SurrogateGroup]:
        """Surrogate groups, optionally only those associated with one organization, by name."""
        found = self._pool.search(
            self.tree.surrogate_groups,
            filters.all_of(
                filters.eq("objectClass", "iacsSurrogateGroup"),
                filters.eq("iacsAssociatedOrganization", self.tree.organization(organization_id))
                if organization_id
                else "",
                filters.eq("iacsStatus", status.value) if status else "",
            ),
            scope=ldap3.LEVEL,
            attributes=SURROGATE_GROUP_ATTRIBUTES,
        )
        groups = [surrogate_group_from(dn, attributes, self.tree) for dn, attributes in found]
        return sorted(groups, key=lambda group: (group.name.lower(), group.id))

    def update_surrogate_group_profile(
        self, surrogate_group_id: str, *, name: str | None = None, description: str | None = None
    ) -> None:
        self._update_profile(
            self.tree.surrogate_group(surrogate_group_id),
            {"displayName": name, "description": description},
        )

    def set_surrogate_group_status(
        self,
        surrogate_group_id: str,
        status: EntityStatus,
        *,
        expected: EntityStatus | None = None,
    ) -> None:
        self._set_status(self.tree.surrogate_group(surrogate_group_id), status, expected)

    def delete_surrogate_group(self, surrogate_group_id: str) -> None:
        """Remove a SUG that is still pending (its first UGA's registration was rejected)."""
        dn = self.tree.surrogate_group(surrogate_group_id)
        self._set_status(dn, EntityStatus.REJECTED, EntityStatus.PENDING)
        self._delete_subtree(dn)

    def associate_surrogate(self, surrogate_group_id: str, organization_id: str) -> None:
        """SUG-3: the SUG also works for this organization (idempotent)."""
        self._require_organization(organization_id)
        dn = self.tree.surrogate_group(surrogate_group_id)
        self._pool.modify(
            dn,
            {
                "iacsAssociatedOrganization": [
                    (ldap3.MODIFY_ADD, [self.tree.organization(organization_id)])
                ]
            },
            allow=(ATTRIBUTE_OR_VALUE_EXISTS,),
        )

    def dissociate_surrogate(self, surrogate_group_id: str, organization_id: str) -> None:
        """The SUG no longer works for this organization (idempotent)."""
        dn = self.tree.surrogate_group(surrogate_group_id)
        self._pool.modify(
            dn,
            {
                "iacsAssociatedOrganization": [
                    (ldap3.MODIFY_DELETE, [self.tree.organization(organization_id)])
                ]
            },
            allow=(NO_SUCH_ATTRIBUTE,),
        )

    # -- practitioners -----------------------------------------------------------------------------

    def create_practitioner_group(self, npi: str, *, exist_ok: bool = True) -> bool:
        """Add the role group ``cn=npi-<npi>`` of an individual practitioner (IND-1).

        True when it was created, False when it existed (``GroupExists`` unless ``exist_ok``).
        """
        checked("iacsIdentifier", npi)
        name = PRACTITIONER_PREFIX + npi
        try:
            self._pool.add(
                self.tree.practitioner(npi),
                role_group_entry(name, Role.INDIVIDUAL_PRACTITIONER, identifier=npi),
            )
        except AlreadyExists as exc:
            if exist_ok:
                return False
            raise GroupExists(f"practitioner group {name} already exists", result_code=68) from exc
        return True
