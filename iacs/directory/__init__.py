"""The only code that talks LDAP: the IACS tree as domain objects (see docs/architecture.md).

``Directory`` is the gateway; ``Tree`` knows the DNs; the errors are typed and never ldap3's.
"""

from iacs.directory.changes import Change
from iacs.directory.dn import Tree
from iacs.directory.errors import (
    AccessDenied,
    AlreadyDecided,
    AlreadyExists,
    BindFailed,
    DirectoryError,
    DirectoryUnavailable,
    GroupExists,
    InvalidEntry,
    NotFound,
    OrganizationExists,
    PersonExists,
    UnexpectedStatus,
)
from iacs.directory.repository import Account, Directory
from iacs.directory.snapshot import DirectorySnapshot

__all__ = [
    "AccessDenied",
    "Account",
    "AlreadyDecided",
    "AlreadyExists",
    "BindFailed",
    "Change",
    "Directory",
    "DirectoryError",
    "DirectorySnapshot",
    "DirectoryUnavailable",
    "GroupExists",
    "InvalidEntry",
    "NotFound",
    "OrganizationExists",
    "PersonExists",
    "Tree",
    "UnexpectedStatus",
]
