"""The projection marks the leaves whose members must sign in with a second factor (issue 13, 8).

Keycloak's browser flow asks a second factor of everyone whose groups carry ``iacs_mfa:
required``; the projection (pure) puts it on the leaves of the roles that hold authority over
others' access, and on no other.
"""

from __future__ import annotations

from iacs.catalogue import load_catalogue
from sync.project import MFA_ATTRIBUTE, MFA_REQUIRED, project

from .factories import (
    ORG_A,
    backup_security_official,
    end_user,
    help_desk,
    practitioner,
    security_official,
    surrogate_end_user,
    surrogate_uga,
    uga,
    world,
)

CATALOGUE = load_catalogue()


def test_authority_leaves_require_a_second_factor_and_no_others() -> None:
    state = project(
        world(
            {
                "hd": [help_desk()],
                "so": [security_official(ORG_A)],
                "bso": [backup_security_official(ORG_A)],
                "uga": [uga(ORG_A, "billing")],
                "sua": [surrogate_uga("acme")],
                "eu": [end_user(ORG_A, "billing")],
                "sue": [surrogate_end_user("acme")],
                "doc": [practitioner("1234567893")],
            }
        ),
        CATALOGUE,
    )
    marked = {path for path, group in state.groups.items() if MFA_ATTRIBUTE in group.attributes}
    assert marked == {
        "/iacs/help-desk",
        f"/iacs/{ORG_A}/security-official",
        f"/iacs/{ORG_A}/backup-security-official",
        f"/iacs/{ORG_A}/billing/user-group-administrator",
        "/iacs/sug-acme/user-group-administrator",
    }
    for path in marked:
        assert state.groups[path].attributes[MFA_ATTRIBUTE] == (MFA_REQUIRED,)
