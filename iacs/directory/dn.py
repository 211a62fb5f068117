"""Distinguished names of the IACS tree: built with escaping, parsed back into domain facts.

Ids are ``[a-z0-9-]`` by construction, but every value placed in a DN still goes through
``escape_value`` (RFC 4514), so a hostile username such as ``x,ou=system`` stays one RDN value.
``Tree`` is the one place that knows the layout of docs/architecture.md.
"""

from __future__ import annotations

from functools import lru_cache

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn

from iacs.domain import Membership, Role, ScopeKind

_SPECIAL = frozenset('"+,;<>\\=')

SECURITY_OFFICIAL_RDN = "security-official"
BACKUP_SECURITY_OFFICIALS_RDN = "backup-security-officials"
GROUP_ADMINISTRATORS_RDN = "user-group-administrators"
END_USERS_RDN = "end-users"
HELP_DESK_RDN = "help-desk"
PRACTITIONER_PREFIX = "npi-"

ORGANIZATION_ROLE_GROUPS = {
    Role.SECURITY_OFFICIAL: SECURITY_OFFICIAL_RDN,
    Role.BACKUP_SECURITY_OFFICIAL: BACKUP_SECURITY_OFFICIALS_RDN,
}
"""Role groups under ``ou=org-<digits>``."""
GROUP_ROLE_GROUPS = {
    Role.USER_GROUP_ADMINISTRATOR: GROUP_ADMINISTRATORS_RDN,
    Role.END_USER: END_USERS_RDN,
}
"""Role groups under a user group or a surrogate group."""
_ROLE_BY_RDN = {
    **{rdn: role for role, rdn in ORGANIZATION_ROLE_GROUPS.items()},
    **{rdn: role for role, rdn in GROUP_ROLE_GROUPS.items()},
}


def escape_value(value: str) -> str:
    """Escape one attribute value for use in a DN string (RFC 4514 section 2.4).

    Unlike ``ldap3.utils.dn.escape_rdn`` this writes NUL as ``\\00`` (a backslash before a raw
    NUL is not a valid escape), and it refuses the empty value, which no RDN may have.
    """
    if not value:
        raise ValueError("a DN value cannot be empty")
    out = []
    for index, char in enumerate(value):
        if char == "\x00":
            out.append("\\00")
        elif (
            char in _SPECIAL
            or (index == 0 and char in " #")
            or (index == len(value) - 1 and char == " ")
        ):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def unescape_value(value: str) -> str:
    """The attribute value an escaped DN value stands for (``\\XX`` hex pairs are UTF-8 bytes)."""
    if "\\" not in value:
        return value
    raw = bytearray()
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            pair = value[index + 1 : index + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                raw.append(int(pair, 16))
                index += 3
                continue
            raw.extend(value[index + 1].encode("utf-8"))
            index += 2
            continue
        raw.extend(char.encode("utf-8"))
        index += 1
    return raw.decode("utf-8", errors="replace")


@lru_cache(maxsize=65536)
def split_dn(dn: str) -> tuple[tuple[str, str], ...]:
    """``(attribute type in lower case, unescaped value)`` per RDN, leaf first.

    Raises ``ValueError`` for a malformed DN or a multi-valued RDN (the IACS tree has none).
    """
    try:
        parts = parse_dn(dn)
    except LDAPInvalidDnError as exc:
        raise ValueError(f"malformed DN {dn!r}") from exc
    if any(separator == "+" for _, _, separator in parts):
        raise ValueError(f"multi-valued RDN in {dn!r}")
    return tuple((kind.strip().lower(), unescape_value(_trim(value))) for kind, value, _ in parts)


def _trim(value: str) -> str:
    """Drop unescaped spaces around a DN value (an escaped trailing space is part of it)."""
    value = value.lstrip(" ")
    while value.endswith(" "):
        backslashes = len(value[:-1]) - len(value[:-1].rstrip("\\"))
        if backslashes % 2:
            break
        value = value[:-1]
    return value


def _same(left: tuple[tuple[str, str], ...], right: tuple[tuple[str, str], ...]) -> bool:
    return len(left) == len(right) and all(
        a_type == b_type and a_value.lower() == b_value.lower()
        for (a_type, a_value), (b_type, b_value) in zip(left, right, strict=True)
    )


class Tree:
    """The DIT under one base DN: every DN the directory layer reads or writes."""

    def __init__(self, base_dn: str) -> None:
        self.base = base_dn
        self._base_parts = split_dn(base_dn)
        self.people = f"ou=people,{base_dn}"
        self.services = f"ou=services,{base_dn}"
        self.system = f"ou=system,{base_dn}"
        self.help_desk = f"cn={HELP_DESK_RDN},{self.system}"
        self.sync_lease = f"cn=sync-lease,{self.system}"
        """The sync workers' active/standby lease (``directory_schema.config.sync_lease_dn``)."""
        self.organizations = f"ou=organizations,{base_dn}"
        self.surrogate_groups = f"ou=surrogate-groups,{base_dn}"
        self.practitioners = f"ou=practitioners,{base_dn}"
        self.requests = f"ou=requests,{base_dn}"
        self.audit = f"ou=audit,{base_dn}"

    # -- entries ---------------------------------------------------------------------------

    def person(self, username: str) -> str:
        return f"uid={escape_value(username)},{self.people}"

    def organization(self, organization_id: str) -> str:
        return f"ou={escape_value(organization_id)},{self.organizations}"

    def organization_groups(self, organization_id: str) -> str:
        return f"ou=groups,{self.organization(organization_id)}"

    def user_group(self, organization_id: str, group_id: str) -> str:
        return f"cn={escape_value(group_id)},{self.organization_groups(organization_id)}"

    def surrogate_group(self, surrogate_group_id: str) -> str:
        return f"cn={escape_value(surrogate_group_id)},{self.surrogate_groups}"

    def practitioner(self, npi: str) -> str:
        return f"cn={escape_value(PRACTITIONER_PREFIX + npi)},{self.practitioners}"

    def request(self, request_id: str) -> str:
        return f"iacsRequestId={escape_value(request_id)},{self.requests}"

    def audit_record(self, audit_id: str) -> str:
        return f"iacsAuditId={escape_value(audit_id)},{self.audit}"

    def role_group(self, membership: Membership) -> str:
        """The DN of the role group whose ``member`` values hold this membership."""
        role, kind, scope = membership.role, membership.scope_kind, membership.scope_id
        if kind is ScopeKind.SYSTEM and role is Role.HELP_DESK:
            return self.help_desk
        if kind is ScopeKind.ORGANIZATION and role in ORGANIZATION_ROLE_GROUPS:
            return f"cn={ORGANIZATION_ROLE_GROUPS[role]},{self.organization(scope)}"
        if kind is ScopeKind.USER_GROUP and role in GROUP_ROLE_GROUPS:
            if not membership.organization_id:
                raise ValueError("a user-group membership needs its organization_id")
            parent = self.user_group(membership.organization_id, scope)
            return f"cn={GROUP_ROLE_GROUPS[role]},{parent}"
        if kind is ScopeKind.SURROGATE_GROUP and role in GROUP_ROLE_GROUPS:
            return f"cn={GROUP_ROLE_GROUPS[role]},{self.surrogate_group(scope)}"
        if kind is ScopeKind.PRACTITIONER and role is Role.INDIVIDUAL_PRACTITIONER:
            return self.practitioner(scope)
        raise ValueError(f"no role group for {role} in a {kind} scope")

    # -- parsing ---------------------------------------------------------------------------

    def _relative(self, dn: str) -> tuple[tuple[str, str], ...] | None:
        """The RDNs of ``dn`` below the base, top-down; None when outside the base or malformed."""
        try:
            parts = split_dn(dn)
        except ValueError:
            return None
        depth = len(self._base_parts)
        if len(parts) <= depth or not _same(parts[-depth:], self._base_parts):
            return None
        return tuple(reversed(parts[:-depth]))

    def contains(self, dn: str) -> bool:
        """True when ``dn`` is the base or below it."""
        return dn.lower() == self.base.lower() or self._relative(dn) is not None

    def username_of(self, dn: str) -> str | None:
        """The username of a person's DN, or None when the DN is not a person's."""
        rel = self._relative(dn)
        if rel is None or len(rel) != 2 or rel[0] != ("ou", "people") or rel[1][0] != "uid":
            return None
        return rel[1][1]

    def organization_id_of(self, dn: str) -> str | None:
        """The organization id of an organization's DN, or None."""
        rel = self._relative(dn)
        if rel is None or len(rel) != 2 or rel[0] != ("ou", "organizations") or rel[1][0] != "ou":
            return None
        return rel[1][1]

    def membership_of(self, dn: str) -> Membership | None:
        """The membership a role group's DN stands for, or None for any other DN."""
        return _membership_of(self, dn)


@lru_cache(maxsize=65536)
def _membership_of(tree: Tree, dn: str) -> Membership | None:
    rel = tree._relative(dn)
    if rel is None:
        return None
    lowered = tuple((kind, value.lower()) for kind, value in rel)
    top = lowered[0]
    if lowered == (("ou", "system"), ("cn", HELP_DESK_RDN)):
        return Membership(Role.HELP_DESK, ScopeKind.SYSTEM)
    if top == ("ou", "organizations") and len(rel) == 3 and rel[1][0] == "ou":
        role = _ROLE_BY_RDN.get(lowered[2][1]) if lowered[2][0] == "cn" else None
        if role in ORGANIZATION_ROLE_GROUPS:
            return Membership(role, ScopeKind.ORGANIZATION, rel[1][1])
        return None
    if (
        top == ("ou", "organizations")
        and len(rel) == 5
        and rel[1][0] == "ou"
        and lowered[2] == ("ou", "groups")
        and rel[3][0] == "cn"
        and lowered[4][0] == "cn"
    ):
        role = _ROLE_BY_RDN.get(lowered[4][1])
        if role in GROUP_ROLE_GROUPS:
            return Membership(role, ScopeKind.USER_GROUP, rel[3][1], rel[1][1])
        return None
    if top == ("ou", "surrogate-groups") and len(rel) == 3 and rel[1][0] == "cn":
        role = _ROLE_BY_RDN.get(lowered[2][1]) if lowered[2][0] == "cn" else None
        if role in GROUP_ROLE_GROUPS:
            return Membership(role, ScopeKind.SURROGATE_GROUP, rel[1][1])
        return None
    if top == ("ou", "practitioners") and len(rel) == 2 and rel[1][0] == "cn":
        name = rel[1][1]
        if name.lower().startswith(PRACTITIONER_PREFIX) and len(name) > len(PRACTITIONER_PREFIX):
            return Membership(
                Role.INDIVIDUAL_PRACTITIONER,
                ScopeKind.PRACTITIONER,
                name[len(PRACTITIONER_PREFIX) :],
            )
    return None
