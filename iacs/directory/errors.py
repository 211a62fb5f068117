"""Typed errors of the directory layer; no ldap3 exception ever reaches a caller.

Each error carries the LDAP result code that caused it (``None`` for client-side failures), so a
log line can name it, while callers branch on the type.
"""

from __future__ import annotations


class DirectoryError(Exception):
    """Any failure of a directory operation."""

    def __init__(self, message: str, *, result_code: int | None = None, dn: str = "") -> None:
        super().__init__(message)
        self.result_code = result_code
        self.dn = dn


class DirectoryUnavailable(DirectoryError):
    """slapd was unreachable or busy; the outcome of a write that was sent is unknown."""


class NotFound(DirectoryError):
    """The entry (person, organization, group, request, ...) does not exist."""


class AlreadyExists(DirectoryError):
    """An entry with this DN already exists (LDAP result 68, entryAlreadyExists)."""


class PersonExists(AlreadyExists):
    """A person with this username already exists."""


class OrganizationExists(AlreadyExists):
    """ORG-2: the organization (same normalized identifier) is already registered."""


class GroupExists(AlreadyExists):
    """A user group, surrogate group or practitioner group with this id already exists."""


class UnexpectedStatus(DirectoryError):
    """A compare-and-swap found the entry in another status than expected."""


class AlreadyDecided(UnexpectedStatus):
    """DEC-3: the request was no longer pending; another decision got there first."""


class AccessDenied(DirectoryError):
    """The bound account lacks the right (LDAP result 50, insufficientAccessRights)."""


class InvalidEntry(DirectoryError):
    """The value or entry was refused: schema, syntax, length or enumeration violation."""


class BindFailed(DirectoryError):
    """The service account could not bind (wrong DN or password)."""
