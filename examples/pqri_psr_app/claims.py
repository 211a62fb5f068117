"""Reading the IACS claims of a verified ID token: the part of the sample to copy first.

The contract is ``docs/claims.md``: ``iacs_claims_version`` (refuse versions you do not know),
``app_roles`` (this application's roles only, the union over the affiliations) and
``affiliations`` (each approved affiliation with the roles *this* application grants through it).
A claim with no value is left out by Keycloak: absent means empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SUPPORTED_CLAIMS_VERSION = 1


class UnsupportedClaims(Exception):
    """The token speaks a claims version this application does not know: refuse the sign-in."""


@dataclass(frozen=True)
class Affiliation:
    """One approved affiliation, as the token describes it to this application."""

    role: str
    organization: str | None
    organizations: tuple[str, ...]
    group: str | None
    surrogate: bool
    npi: str | None
    app_roles: tuple[str, ...]

    @property
    def scope(self) -> str:
        """For a person: which data this affiliation concerns."""
        if self.npi:
            return f"NPI {self.npi}"
        return ", ".join(self.organizations) or "—"

    @property
    def label(self) -> str:
        """For a person: "End user of group billing", "End user of Surrogate User Group acme"."""
        role = self.role.replace("_", " ").capitalize()
        if self.group is None:
            return role
        return f"{role} of {'Surrogate User Group' if self.surrogate else 'group'} {self.group}"


@dataclass(frozen=True)
class IacsClaims:
    """What this application knows about the signed-in person's authority."""

    username: str
    app_roles: frozenset[str]
    affiliations: tuple[Affiliation, ...]

    @classmethod
    def from_token(cls, claims: dict[str, Any]) -> IacsClaims:
        """From *verified* ID-token claims (signature, iss, aud, exp, nonce already checked)."""
        if claims.get("iacs_claims_version") != SUPPORTED_CLAIMS_VERSION:
            raise UnsupportedClaims(
                f"IACS claims version {claims.get('iacs_claims_version')!r} is not supported "
                f"(this application knows version {SUPPORTED_CLAIMS_VERSION})"
            )
        affiliations = tuple(
            Affiliation(
                role=item["role"],
                organization=item.get("organization"),
                organizations=tuple(item.get("organizations") or ()),
                group=item.get("group"),
                surrogate=bool(item.get("surrogate")),
                npi=item.get("npi"),
                app_roles=tuple(sorted(item.get("app_roles") or ())),
            )
            for item in claims.get("affiliations") or ()
        )
        return cls(
            username=str(claims.get("preferred_username") or claims["sub"]),
            app_roles=frozenset(claims.get("app_roles") or ()),
            affiliations=affiliations,
        )

    def has(self, role: str) -> bool:
        """Whether the person may use a function that needs ``role`` (in this application)."""
        return role in self.app_roles

    def granting(self, role: str) -> tuple[Affiliation, ...]:
        """The affiliations that give ``role``: these, and only these, say for which data."""
        return tuple(a for a in self.affiliations if role in a.app_roles)

    def organizations_for(self, role: str) -> list[str]:
        """Organizations whose data ``role`` may be used on (never every organization of the
        person: an affiliation that grants nothing here, e.g. a surrogate one in PS&R, counts
        for nothing)."""
        return sorted({org for a in self.granting(role) for org in a.organizations})
