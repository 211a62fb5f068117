"""A small demo community, created through the service so that every role is properly approved.

Only the help desk is placed directly (the operator's bootstrap, DEC-4); everything else is a
request decided by the person the rules name, exactly as a person would do it in the portal.
"""

from __future__ import annotations

from dataclasses import dataclass

from iacs.domain import Membership, Person, Role, ScopeKind
from iacs.service import AccessService

DEMO_PASSWORD = "Demo-Password-1"  # noqa: S105 - a published demo credential
"""Every demo account's password (meets the realm's password policy)."""

ORG_ID = "org-123456789"
SUG_ID = "acme-clearinghouse"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    name: str
    role: str


ACCOUNTS = [
    DemoAccount("helpdesk", "Hana Desk", "EUS help desk"),
    DemoAccount("sofia", "Sofia Officer", "Security Official of Lakeside General Hospital"),
    DemoAccount("ben", "Ben Backup", "Backup Security Official"),
    DemoAccount("uma", "Uma Admin", "User Group Administrator of Billing"),
    DemoAccount("eve", "Eve Enduser", "End User of Billing (PQRI and PS&R)"),
    DemoAccount("carl", "Carl Contractor", "UGA of the Acme Clearinghouse surrogate group"),
    DemoAccount("sam", "Sam Surrogate", "End User of Acme Clearinghouse (no PS&R, SUG-6)"),
    DemoAccount("paul", "Paul Pending", "has a pending End User request for uma to decide"),
    DemoAccount("ada", "Ada Lovelace", "individual practitioner request for the help desk"),
]


def seed(directory, service: AccessService, password: str = DEMO_PASSWORD) -> list[DemoAccount]:
    """Create the demo people and walk the delegated-authority chain for them."""
    for account in ACCOUNTS:
        if directory.get_person(account.username) is None:
            directory.add_person(
                Person(account.username, account.name, f"{account.username}@example.org"),
                password,
            )
    directory.add_member(Membership(Role.HELP_DESK, ScopeKind.SYSTEM), "helpdesk")

    so = service.register_organization(
        "sofia",
        name="Lakeside General Hospital",
        identifier="12-3456789",
        provider_type="hospital",
        address="1 Lake Road, Springfield",
        phone="555-0100",
    )
    service.decide("helpdesk", so.id, approve=True)
    bso = service.request_backup_security_official("ben", ORG_ID)
    service.decide("sofia", bso.id, approve=True)
    uga = service.request_user_group_administrator(
        "uma", ORG_ID, group_name="Billing", description="Claims and billing staff"
    )
    service.decide("ben", uga.id, approve=True)
    eu = service.request_end_user("eve", ORG_ID, "billing")
    service.decide("uma", eu.id, approve=True)
    sug = service.register_surrogate_group(
        "carl", ORG_ID, name="Acme Clearinghouse", description="Claims clearinghouse"
    )
    service.decide("sofia", sug.id, approve=True)
    sug_eu = service.request_surrogate_end_user("sam", SUG_ID)
    service.decide("carl", sug_eu.id, approve=True)
    service.request_end_user("paul", ORG_ID, "billing")
    service.request_individual_practitioner("ada", "1003000126")
    return ACCOUNTS
