"""Whether a sign-in passed a second factor, and refusing those who hold authority without one.

Keycloak's browser flow (``keycloak_config/realm.json``, ``iacs-browser``) asks a second factor of
everyone in a group the sync worker marks ``iacs_mfa: required`` (the help desk, Security
Officials, Backups and User Group Administrators), and reports what was done in the token:

- ``amr`` (Authentication Method Reference, RFC 8176), from Keycloak's AMR mapper: each
  authenticator of the flow carries a reference, ``pwd`` for the password, ``otp`` for TOTP,
  ``hwk`` for a WebAuthn security key (kept for the SSO session: ``default.reference.maxAge``);
- ``iacs_mfa``: ``required`` when the person's groups call for a second factor.

The portal trusts neither the flow nor the person to have done it: a token or sign-in whose
``iacs_mfa`` says required and whose ``amr`` names no second factor is refused. Enrolling TOTP
at the first sign-in does not count (Keycloak reports only ``pwd`` for it): the person signs in
once more, with the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SECOND_FACTORS = frozenset({"otp", "hwk", "swk", "mfa"})
"""``amr`` values that prove a second factor (RFC 8176: one-time password, hardware or software
key; ``mfa`` when an authenticator reports the combination itself)."""

REQUIRED_CLAIM = "iacs_mfa"
REQUIRED = "required"


class SecondFactorRequired(Exception):
    """The person holds authority and this sign-in did not pass a second factor."""


def passed_mfa(claims: Mapping[str, Any]) -> bool:
    """Whether the token's ``amr`` names a second factor."""
    amr = claims.get("amr")
    if isinstance(amr, str):
        amr = [amr]
    if not isinstance(amr, list | tuple):
        return False
    return any(isinstance(method, str) and method in SECOND_FACTORS for method in amr)


def mfa_required(claims: Mapping[str, Any]) -> bool:
    """Whether the token says its subject must sign in with a second factor."""
    value = claims.get(REQUIRED_CLAIM)
    values = value if isinstance(value, list | tuple) else [value]
    return REQUIRED in values


def require_mfa(claims: Mapping[str, Any]) -> None:
    """Raise ``SecondFactorRequired`` if the subject must use a second factor and did not."""
    if mfa_required(claims) and not passed_mfa(claims):
        raise SecondFactorRequired(
            "a second factor is required of those who hold authority: sign in again with your "
            "authenticator code or security key"
        )
