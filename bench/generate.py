"""A realistic provider community, generated from a seed and written as LDIF for a bulk load.

The tree is the one of ``docs/architecture.md`` with the classes of
``directory_schema/iacs.schema``: people under ``ou=people`` (all with the same precomputed
``{SSHA}`` hash, so generation is fast), organizations ``ou=org-<9 digits>`` with their
Security Official, Backup Security Officials and user groups (each with its administrators and
end users), surrogate groups associated with several organizations, individual practitioners,
and optionally the approved ``iacsRequest`` entry behind every membership (its provenance,
DEC-4). The help desk lives in the bootstrap's ``cn=help-desk`` entry, which a bulk load cannot
modify: ``help_desk_ldif`` is an ``ldapmodify`` change for it.

``slapadd`` bypasses overlays, so for an offline load (``member_of=True``) the people entries
carry the ``memberOf`` values that the ``memberof`` overlay would have written; for ``ldapadd``
(``member_of=False``) the overlay writes them itself.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from iacs.directory.mapping import to_generalized_time
from iacs.domain import Membership, ProviderType, RequestKind, Role, ScopeKind

DEFAULT_BASE_DN = "dc=iacs,dc=example"
BENCH_PASSWORD = "Bench-Password-1"
"""The password of every generated person (a benchmark credential, never a real one)."""


@dataclass(frozen=True)
class CommunitySize:
    """How many of each thing to generate; ``seed`` makes the whole community reproducible."""

    people: int = 10_000
    organizations: int = 2_000
    user_groups: int = 5_000
    surrogate_groups: int = 300
    practitioners: int = 50
    help_desk: int = 5
    seed: int = 20250101
    sug_associations: tuple[int, int] = (2, 5)
    """Each surrogate group works for between this many provider organizations (inclusive)."""
    end_user_groups: tuple[int, int] = (1, 4)
    """Each person is an End User of between this many groups (user groups or surrogate)."""

    def __post_init__(self) -> None:
        if self.people < self.organizations + self.help_desk + self.practitioners:
            raise ValueError("need at least one person per organization, help desk member and NPI")
        if self.user_groups and not self.organizations:
            raise ValueError("user groups need organizations")
        if self.surrogate_groups and self.organizations < self.sug_associations[0]:
            raise ValueError("surrogate groups need enough organizations to associate with")


SIZES: dict[str, CommunitySize] = {
    "ci": CommunitySize(
        people=300, organizations=60, user_groups=150, surrogate_groups=10, practitioners=3
    ),
    "full": CommunitySize(),
}
"""The sizes of ``iacs bench --size``: a few hundred people in CI, a provider community by hand."""

FIRST_NAMES = [
    "Ada",
    "Ben",
    "Carla",
    "Dev",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jamal",
    "Kira",
    "Luis",
    "Maya",
    "Nia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Umar",
    "Vera",
    "Wen",
    "Xena",
    "Yusuf",
    "Zoe",
]
LAST_NAMES = [
    "Abbott",
    "Baker",
    "Chen",
    "Diaz",
    "Evans",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Khan",
    "Lopez",
    "Moreau",
    "Nguyen",
    "Okafor",
    "Patel",
    "Quist",
    "Rossi",
    "Silva",
    "Tanaka",
    "Ueda",
    "Varga",
    "Walsh",
    "Xu",
    "Young",
    "Zhang",
]
PLACES = [
    "Lakeside",
    "Riverside",
    "Hillcrest",
    "Maplewood",
    "Oakridge",
    "Pinecrest",
    "Fairview",
    "Brookfield",
    "Cedar",
    "Summit",
    "Harbor",
    "Valley",
    "Meadow",
    "Northgate",
    "Westfield",
    "Eastview",
    "Southport",
    "Greenville",
    "Ashford",
    "Bayview",
]
PROVIDER_TYPES = [t for t in ProviderType if t is not ProviderType.DMEPOS]
PROVIDER_WORDS = {
    ProviderType.HOSPITAL: "General Hospital",
    ProviderType.HOME_HEALTH_AGENCY: "Home Health",
    ProviderType.SKILLED_NURSING_FACILITY: "Nursing Center",
    ProviderType.INDEPENDENT_DIAGNOSTIC_TESTING_FACILITY: "Diagnostics",
    ProviderType.AMBULANCE_COMPANY: "Ambulance",
    ProviderType.AMBULATORY_SURGICAL_CENTER: "Surgery Center",
    ProviderType.PHYSICIAN_GROUP_PRACTICE: "Physicians Group",
    ProviderType.INDIVIDUAL_PRACTITIONER_WITH_STAFF: "Practice",
}
DEPARTMENTS = [
    "billing",
    "claims",
    "eligibility",
    "finance",
    "admissions",
    "coding",
    "audit",
    "records",
    "pharmacy",
    "radiology",
    "laboratory",
    "compliance",
    "reimbursement",
    "scheduling",
    "outreach",
]
SUG_WORDS = [
    "acme",
    "summit",
    "apex",
    "beacon",
    "clear",
    "prime",
    "vector",
    "north",
    "keystone",
    "pioneer",
]
SUG_KINDS = ["clearinghouse", "billing-services", "credentialing", "consulting"]

ROLE_GROUP_CN = {
    Role.SECURITY_OFFICIAL: "security-official",
    Role.BACKUP_SECURITY_OFFICIAL: "backup-security-officials",
    Role.USER_GROUP_ADMINISTRATOR: "user-group-administrators",
    Role.END_USER: "end-users",
}
"""The ``cn`` of each role group under its scope entry (docs/architecture.md)."""

Entry = tuple[str, list[tuple[str, str]]]
"""One LDIF entry: its DN and its attribute values in order."""


@dataclass
class Community:
    """A generated community: what is in it (for benchmarks and tests) and how to write it."""

    size: CommunitySize
    base_dn: str
    people: list[str]
    organizations: list[str]
    user_groups: list[tuple[str, str]]
    """(organization id, group id) of every user group."""
    surrogate_groups: dict[str, list[str]]
    """Surrogate group id to the ids of the organizations it is associated with."""
    practitioners: dict[str, str]
    """NPI digits to the username of the practitioner."""
    memberships: dict[str, set[Membership]] = field(default_factory=dict)
    """Username to the approved memberships the directory holds for them."""
    password_hash: str = ""
    with_requests: bool = True
    org_names: dict[str, str] = field(default_factory=dict)
    org_types: dict[str, ProviderType] = field(default_factory=dict)

    # -- DNs --------------------------------------------------------------------------------

    def person_dn(self, username: str) -> str:
        return f"uid={username},ou=people,{self.base_dn}"

    def organization_dn(self, org_id: str) -> str:
        return f"ou={org_id},ou=organizations,{self.base_dn}"

    def user_group_dn(self, org_id: str, group_id: str) -> str:
        return f"cn={group_id},ou=groups,{self.organization_dn(org_id)}"

    def surrogate_group_dn(self, sug_id: str) -> str:
        return f"cn={sug_id},ou=surrogate-groups,{self.base_dn}"

    def role_group_dn(self, membership: Membership) -> str:
        """DN of the role group whose ``member`` values hold ``membership``."""
        scope = membership.scope_kind
        if scope is ScopeKind.SYSTEM:
            return f"cn=help-desk,ou=system,{self.base_dn}"
        if scope is ScopeKind.PRACTITIONER:
            return f"cn=npi-{membership.scope_id},ou=practitioners,{self.base_dn}"
        cn = ROLE_GROUP_CN[membership.role]
        if scope is ScopeKind.ORGANIZATION:
            return f"cn={cn},{self.organization_dn(membership.scope_id)}"
        if scope is ScopeKind.USER_GROUP:
            parent = self.user_group_dn(membership.organization_id, membership.scope_id)
            return f"cn={cn},{parent}"
        return f"cn={cn},{self.surrogate_group_dn(membership.scope_id)}"

    # -- views ------------------------------------------------------------------------------

    def members_of(self) -> dict[Membership, list[str]]:
        """Each membership to its holders, in the order of ``people`` (stable LDIF)."""
        holders: dict[Membership, list[str]] = {}
        for username in self.people:
            for membership in sorted(self.memberships.get(username, ()), key=_membership_key):
                holders.setdefault(membership, []).append(username)
        return holders

    @property
    def membership_count(self) -> int:
        return sum(len(ms) for ms in self.memberships.values())

    def help_desk(self) -> list[str]:
        desk = Membership(Role.HELP_DESK, ScopeKind.SYSTEM)
        return [name for name in self.people if desk in self.memberships.get(name, ())]

    def counts(self) -> dict[str, int]:
        """What the community holds, for the report."""
        return {
            "people": len(self.people),
            "organizations": len(self.organizations),
            "user_groups": len(self.user_groups),
            "surrogate_groups": len(self.surrogate_groups),
            "practitioners": len(self.practitioners),
            "memberships": self.membership_count,
        }

    # -- LDIF -------------------------------------------------------------------------------

    def entries(self, *, member_of: bool = True) -> Iterator[Entry]:
        """Every entry below the bootstrap tree, parents before children, people first."""
        holders = self.members_of()
        rng = random.Random(self.size.seed + 1)
        for username in self.people:
            yield self._person(username, holders if member_of else None)
        for org_id in self.organizations:
            yield from self._organization(org_id, holders)
        groups_by_org: dict[str, list[str]] = {}
        for org_id, group_id in self.user_groups:
            groups_by_org.setdefault(org_id, []).append(group_id)
        for org_id in self.organizations:
            groups = groups_by_org.get(org_id, [])
            if not groups:
                continue
            yield (
                f"ou=groups,{self.organization_dn(org_id)}",
                [("objectClass", "organizationalUnit"), ("ou", "groups")],
            )
            for group_id in groups:
                yield from self._user_group(org_id, group_id, holders)
        for sug_id, orgs in self.surrogate_groups.items():
            yield from self._surrogate_group(sug_id, orgs, holders)
        for npi, username in self.practitioners.items():
            membership = Membership(Role.INDIVIDUAL_PRACTITIONER, ScopeKind.PRACTITIONER, npi)
            yield (
                self.role_group_dn(membership),
                [
                    ("objectClass", "iacsRoleGroup"),
                    ("cn", f"npi-{npi}"),
                    ("iacsRole", Role.INDIVIDUAL_PRACTITIONER.value),
                    ("iacsIdentifier", npi),
                    ("member", self.person_dn(username)),
                ],
            )
        if self.with_requests:
            yield from self._requests(holders, rng)

    def write_ldif(self, path: Path, *, member_of: bool = True) -> int:
        """Write the LDIF to ``path``; returns the number of entries."""
        count = 0
        with Path(path).open("w", encoding="utf-8") as out:
            for dn, attributes in self.entries(member_of=member_of):
                out.write(format_entry(dn, attributes))
                count += 1
        return count

    def help_desk_ldif(self) -> str:
        """An ``ldapmodify`` change adding the help desk members to the bootstrap's group."""
        desk = Membership(Role.HELP_DESK, ScopeKind.SYSTEM)
        lines = [f"dn: {self.role_group_dn(desk)}", "changetype: modify", "add: member"]
        lines += [f"member: {self.person_dn(name)}" for name in self.help_desk()]
        return "\n".join([*lines, "-", ""]) + "\n"

    def _person(self, username: str, holders: dict[Membership, list[str]] | None) -> Entry:
        number = int(username.removeprefix("user"))
        rng = random.Random(self.size.seed * 1_000_003 + number)
        given, family = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        attributes = [
            ("objectClass", "inetOrgPerson"),
            ("uid", username),
            ("cn", f"{given} {family}"),
            ("sn", family),
            ("givenName", given),
            ("displayName", f"{given} {family}"),
            ("mail", f"{username}@example.org"),
            ("userPassword", self.password_hash),
        ]
        if holders is not None:
            for membership in sorted(self.memberships.get(username, ()), key=_membership_key):
                # The help desk is added by ldapmodify after the load: the overlay writes it.
                if membership.scope_kind is not ScopeKind.SYSTEM:
                    attributes.append(("memberOf", self.role_group_dn(membership)))
        return self.person_dn(username), attributes

    def _role_group(
        self, membership: Membership, holders: dict[Membership, list[str]], cn: str
    ) -> Entry:
        attributes = [
            ("objectClass", "iacsRoleGroup"),
            ("cn", cn),
            ("iacsRole", membership.role.value),
        ]
        attributes += [("member", self.person_dn(name)) for name in holders.get(membership, ())]
        return self.role_group_dn(membership), attributes

    def _organization(self, org_id: str, holders: dict[Membership, list[str]]) -> Iterator[Entry]:
        digits = org_id.removeprefix("org-")
        yield (
            self.organization_dn(org_id),
            [
                ("objectClass", "organizationalUnit"),
                ("objectClass", "iacsOrganization"),
                ("ou", org_id),
                ("iacsIdentifier", digits),
                ("iacsStatus", "active"),
                ("iacsProviderType", self.org_types[org_id].value),
                ("displayName", self.org_names[org_id]),
                ("postalAddress", f"{int(digits[-4:])} Main Street$Springfield"),
                ("telephoneNumber", f"555-{digits[-4:]}"),
            ],
        )
        for role in (Role.SECURITY_OFFICIAL, Role.BACKUP_SECURITY_OFFICIAL):
            membership = Membership(role, ScopeKind.ORGANIZATION, org_id)
            yield self._role_group(membership, holders, ROLE_GROUP_CN[role])

    def _user_group(
        self, org_id: str, group_id: str, holders: dict[Membership, list[str]]
    ) -> Iterator[Entry]:
        yield (
            self.user_group_dn(org_id, group_id),
            [
                ("objectClass", "iacsUserGroup"),
                ("cn", group_id),
                ("iacsStatus", "active"),
                ("iacsOrganizationId", org_id),
                ("displayName", group_id.replace("-", " ").title()),
            ],
        )
        for role in (Role.USER_GROUP_ADMINISTRATOR, Role.END_USER):
            membership = Membership(role, ScopeKind.USER_GROUP, group_id, org_id)
            yield self._role_group(membership, holders, ROLE_GROUP_CN[role])

    def _surrogate_group(
        self, sug_id: str, orgs: list[str], holders: dict[Membership, list[str]]
    ) -> Iterator[Entry]:
        attributes = [
            ("objectClass", "iacsSurrogateGroup"),
            ("cn", sug_id),
            ("iacsStatus", "active"),
            ("displayName", sug_id.replace("-", " ").title()),
        ]
        attributes += [("iacsAssociatedOrganization", self.organization_dn(o)) for o in orgs]
        yield self.surrogate_group_dn(sug_id), attributes
        for role in (Role.USER_GROUP_ADMINISTRATOR, Role.END_USER):
            membership = Membership(role, ScopeKind.SURROGATE_GROUP, sug_id)
            yield self._role_group(membership, holders, ROLE_GROUP_CN[role])

    def _requests(
        self, holders: dict[Membership, list[str]], rng: random.Random
    ) -> Iterator[Entry]:
        """The approved request behind every membership but the help desk (operator bootstrap)."""
        # Within the last year (LC-3: the worker's schedule lapses a role not recertified for a
        # year, and would lapse a community made of older approvals at its first run); from the
        # start of today, so one day's runs write the same directory.
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        epoch = today - timedelta(days=330)
        first_admin: dict[str, str] = {}
        desk = self.help_desk()[0] if self.help_desk() else ""
        for membership, names in holders.items():
            if membership.role is Role.HELP_DESK:
                continue
            for username in names:
                created = epoch + timedelta(minutes=rng.randrange(0, 60 * 24 * 300))
                decided = created + timedelta(minutes=rng.randrange(1, 60 * 24 * 5))
                kind, fields = self._request_kind(membership, username, first_admin)
                request_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                attributes = [
                    ("objectClass", "iacsRequest"),
                    ("iacsRequestId", request_id),
                    ("iacsRequestKind", kind.value),
                    ("iacsRequester", username),
                    ("iacsRequestStatus", "approved"),
                    ("iacsCreatedAt", _gtime(created)),
                    ("iacsExpiresAt", _gtime(created + timedelta(days=30))),
                    *fields,
                    ("iacsDecidedBy", self._decider(membership, username, holders, desk)),
                    ("iacsDecidedAt", _gtime(decided)),
                ]
                yield f"iacsRequestId={request_id},ou=requests,{self.base_dn}", attributes

    def _request_kind(
        self, membership: Membership, username: str, first_admin: dict[str, str]
    ) -> tuple[RequestKind, list[tuple[str, str]]]:
        role, scope = membership.role, membership.scope_kind
        if scope is ScopeKind.PRACTITIONER:
            details = f'{{"npi": "{membership.scope_id}"}}'
            return RequestKind.INDIVIDUAL_PRACTITIONER, [("iacsDetails", details)]
        if scope is ScopeKind.ORGANIZATION:
            kind = (
                RequestKind.REGISTER_ORGANIZATION
                if role is Role.SECURITY_OFFICIAL
                else RequestKind.BACKUP_SECURITY_OFFICIAL
            )
            return kind, [("iacsOrganizationId", membership.scope_id)]
        if scope is ScopeKind.USER_GROUP:
            kind = (
                RequestKind.USER_GROUP_ADMINISTRATOR
                if role is Role.USER_GROUP_ADMINISTRATOR
                else RequestKind.END_USER
            )
            return kind, [
                ("iacsOrganizationId", membership.organization_id),
                ("iacsGroupId", membership.scope_id),
            ]
        sug_id = membership.scope_id
        if role is Role.END_USER:
            kind = RequestKind.SURROGATE_END_USER
        elif first_admin.setdefault(sug_id, username) == username:
            kind = RequestKind.REGISTER_SURROGATE_GROUP
        else:
            kind = RequestKind.SURROGATE_ADMINISTRATOR
        fields = [("iacsSurrogateGroupId", sug_id)]
        if kind is not RequestKind.SURROGATE_END_USER:
            fields.insert(0, ("iacsOrganizationId", self.surrogate_groups[sug_id][0]))
        return kind, fields

    def _decider(
        self,
        membership: Membership,
        username: str,
        holders: dict[Membership, list[str]],
        desk: str,
    ) -> str:
        """Who the rules name as the approver of ``membership`` (the help desk as a fallback)."""
        role, scope = membership.role, membership.scope_kind
        if scope is ScopeKind.PRACTITIONER or role is Role.SECURITY_OFFICIAL:
            return desk
        if scope is ScopeKind.ORGANIZATION:
            org = membership.scope_id
        elif scope is ScopeKind.USER_GROUP and role is Role.END_USER:
            admins = holders.get(
                Membership(
                    Role.USER_GROUP_ADMINISTRATOR,
                    ScopeKind.USER_GROUP,
                    membership.scope_id,
                    membership.organization_id,
                ),
                [],
            )
            return next((a for a in admins if a != username), desk)
        elif scope is ScopeKind.USER_GROUP:
            org = membership.organization_id
        elif role is Role.END_USER:
            admins = holders.get(
                Membership(
                    Role.USER_GROUP_ADMINISTRATOR, ScopeKind.SURROGATE_GROUP, membership.scope_id
                ),
                [],
            )
            return next((a for a in admins if a != username), desk)
        else:
            org = self.surrogate_groups[membership.scope_id][0]
        so = holders.get(Membership(Role.SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, org), [])
        return next((s for s in so if s != username), desk)


def generate(
    size: CommunitySize,
    *,
    base_dn: str = DEFAULT_BASE_DN,
    with_requests: bool = True,
    password: str = BENCH_PASSWORD,
) -> Community:
    """The community of ``size``, the same for the same seed (and Python's ``random``)."""
    rng = random.Random(size.seed)
    width = max(5, len(str(size.people)))
    people = [f"user{n:0{width}d}" for n in range(1, size.people + 1)]

    org_digits = rng.sample(range(100_000_000, 1_000_000_000), size.organizations)
    organizations = [f"org-{digits}" for digits in org_digits]
    org_types = {org: rng.choice(PROVIDER_TYPES) for org in organizations}
    org_names = {
        org: f"{rng.choice(PLACES)} {PROVIDER_WORDS[org_types[org]]}" for org in organizations
    }

    user_groups: list[tuple[str, str]] = []
    taken: set[tuple[str, str]] = set()
    for index in range(size.user_groups):
        # Every organization gets a group before any gets a second one; then at random.
        org = organizations[index] if index < len(organizations) else rng.choice(organizations)
        base = rng.choice(DEPARTMENTS)
        group_id, suffix = base, 2
        while (org, group_id) in taken:
            group_id, suffix = f"{base}-{suffix}", suffix + 1
        taken.add((org, group_id))
        user_groups.append((org, group_id))

    surrogate_groups: dict[str, list[str]] = {}
    low, high = size.sug_associations
    for index in range(1, size.surrogate_groups + 1):
        sug_id = f"{rng.choice(SUG_WORDS)}-{rng.choice(SUG_KINDS)}-{index:04d}"
        count = min(rng.randint(low, high), len(organizations))
        surrogate_groups[sug_id] = rng.sample(organizations, count)

    npis = rng.sample(range(1_000_000_000, 10_000_000_000), size.practitioners)

    memberships: dict[str, set[Membership]] = {name: set() for name in people}
    pool = people[:]
    rng.shuffle(pool)
    # Distinct people for the roles that name one person each: SO, help desk, practitioners.
    cursor = 0

    def take(count: int) -> list[str]:
        nonlocal cursor
        chosen = pool[cursor : cursor + count]
        cursor += count
        return chosen

    for username in take(size.help_desk):
        memberships[username].add(Membership(Role.HELP_DESK, ScopeKind.SYSTEM))
    practitioners: dict[str, str] = {}
    for npi, username in zip(npis, take(size.practitioners), strict=True):
        practitioners[str(npi)] = username
        memberships[username].add(
            Membership(Role.INDIVIDUAL_PRACTITIONER, ScopeKind.PRACTITIONER, str(npi))
        )
    for org, username in zip(organizations, take(size.organizations), strict=True):
        memberships[username].add(Membership(Role.SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, org))
    staff = pool[cursor:] or pool
    for org in organizations:
        for username in rng.sample(staff, min(rng.choice((0, 0, 1, 1, 2)), len(staff))):
            memberships[username].add(
                Membership(Role.BACKUP_SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, org)
            )
    for org, group_id in user_groups:
        for username in rng.sample(staff, min(rng.choice((1, 1, 1, 2, 3)), len(staff))):
            memberships[username].add(
                Membership(Role.USER_GROUP_ADMINISTRATOR, ScopeKind.USER_GROUP, group_id, org)
            )
    for sug_id in surrogate_groups:
        for username in rng.sample(staff, min(rng.choice((1, 1, 2)), len(staff))):
            memberships[username].add(
                Membership(Role.USER_GROUP_ADMINISTRATOR, ScopeKind.SURROGATE_GROUP, sug_id)
            )
    # End Users: most people work in one to a few groups, some also for a surrogate group.
    sug_ids = list(surrogate_groups)
    low, high = size.end_user_groups
    for username in staff:
        for _ in range(rng.randint(low, high)):
            if sug_ids and rng.random() < 0.15:
                sug_id = rng.choice(sug_ids)
                membership = Membership(Role.END_USER, ScopeKind.SURROGATE_GROUP, sug_id)
            elif user_groups:
                org, group_id = rng.choice(user_groups)
                membership = Membership(Role.END_USER, ScopeKind.USER_GROUP, group_id, org)
            else:
                continue
            memberships[username].add(membership)

    return Community(
        size=size,
        base_dn=base_dn,
        people=people,
        organizations=organizations,
        user_groups=user_groups,
        surrogate_groups=surrogate_groups,
        practitioners=practitioners,
        memberships=memberships,
        password_hash=fixed_ssha(password, salt=size.seed.to_bytes(8, "big", signed=False)),
        with_requests=with_requests,
        org_names=org_names,
        org_types=org_types,
    )


def fixed_ssha(password: str, salt: bytes) -> str:
    """One ``{SSHA}`` value computed once and reused for every person (slapd checks it on bind)."""
    digest = hashlib.sha1(password.encode("utf-8") + salt).digest()  # noqa: S324 - slapd's scheme
    return "{SSHA}" + base64.b64encode(digest + salt).decode("ascii")


_SAFE_VALUE = re.compile(
    r"^[\x01-\x09\x0b-\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f][\x01-\x09\x0b-\x0c\x0e-\x7f]*$"
)
"""RFC 2849 SAFE-STRING: anything else is written base64."""


def format_entry(dn: str, attributes: list[tuple[str, str]]) -> str:
    """One LDIF record (RFC 2849), base64 for any value that is not a safe string."""
    lines = [_line("dn", dn)]
    lines += [_line(name, value) for name, value in attributes]
    return "\n".join(lines) + "\n\n"


def _line(name: str, value: str) -> str:
    if value == "" or (_SAFE_VALUE.match(value) and not value.endswith(" ")):
        return f"{name}: {value}"
    return f"{name}:: {base64.b64encode(value.encode('utf-8')).decode('ascii')}"


def _gtime(moment: datetime) -> str:
    return to_generalized_time(moment, fraction="none")


def _membership_key(membership: Membership) -> tuple[str, str, str, str]:
    return (
        membership.scope_kind.value,
        membership.organization_id,
        membership.scope_id,
        membership.role.value,
    )
