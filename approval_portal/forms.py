"""The request forms people fill in: one description per kind, rendered by one template.

Validation is not here: the form's fields go through ``shapes.submit`` to the service, which
validates every value and asks the policy, so a form and an API call are refused alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from iacs.domain import ProviderType, RequestKind, organization_id

PROVIDER_TYPE_LABELS = {
    ProviderType.HOSPITAL: "Hospital",
    ProviderType.HOME_HEALTH_AGENCY: "Home health agency",
    ProviderType.SKILLED_NURSING_FACILITY: "Skilled nursing facility",
    ProviderType.INDEPENDENT_DIAGNOSTIC_TESTING_FACILITY: "Independent diagnostic testing facility",
    ProviderType.AMBULANCE_COMPANY: "Ambulance company",
    ProviderType.AMBULATORY_SURGICAL_CENTER: "Ambulatory surgical center",
    ProviderType.PHYSICIAN_GROUP_PRACTICE: "Physician group practice",
    ProviderType.INDIVIDUAL_PRACTITIONER_WITH_STAFF: (
        "Individual physician or practitioner delegating to staff"
    ),
    ProviderType.DMEPOS: "DMEPOS supplier (durable medical equipment, prosthetics, orthotics)",
}


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    label: str
    hint: str = ""
    required: bool = True
    kind: str = "text"  # text, tel, textarea, select
    options: tuple[tuple[str, str], ...] = ()
    autocomplete: str = "off"
    max_length: int = 120
    check: str = "text"
    """How the value is checked before the service sees it, with the service's own validators
    (``iacs.service.inputs``): text, identifier, npi, provider_type, id; or found by name:
    organization, group (within the organization field of the same form)."""
    service_names: tuple[str, ...] = ()
    """The names the service's errors use for this field (``InvalidInput.field``)."""


@dataclass(frozen=True, slots=True)
class RequestForm:
    slug: str
    kind: RequestKind
    title: str
    intro: str
    fields: tuple[Field, ...] = field(default_factory=tuple)
    rule: str = ""


_ORGANIZATION = Field(
    "organization_id",
    "Organization",
    hint="Start typing its name, or give its TIN/EIN or NPI.",
    max_length=120,
    check="organization",
    service_names=("organization", "organization_id"),
)
_SURROGATE = Field(
    "surrogate_group_id",
    "Surrogate User Group id",
    hint="Lower-case letters, digits and dashes, as shown on the group's page.",
    max_length=63,
    check="id",
    service_names=("surrogate_group", "surrogate_group_id"),
)

FORMS: dict[str, RequestForm] = {
    form.slug: form
    for form in [
        RequestForm(
            "organization",
            RequestKind.REGISTER_ORGANIZATION,
            "Register an organization as its Security Official",
            "The first person to register an organization is its Security Official; the EUS "
            "help desk approves the registration. An organization has only one.",
            (
                Field("name", "Organization name", autocomplete="organization"),
                Field(
                    "identifier",
                    "TIN/EIN or NPI",
                    hint="A 9-digit TIN/EIN or a 10-digit NPI; dashes and spaces are ignored.",
                    max_length=20,
                    check="identifier",
                ),
                Field(
                    "provider_type",
                    "Provider type",
                    kind="select",
                    options=tuple((p.value, label) for p, label in PROVIDER_TYPE_LABELS.items()),
                    hint="DMEPOS suppliers may not register at this time.",
                    check="provider_type",
                ),
                Field(
                    "address",
                    "Address",
                    required=False,
                    kind="textarea",
                    autocomplete="street-address",
                    max_length=300,
                ),
                Field(
                    "phone", "Phone", required=False, kind="tel", autocomplete="tel", max_length=40
                ),
            ),
            rule="ORG-1",
        ),
        RequestForm(
            "practitioner",
            RequestKind.INDIVIDUAL_PRACTITIONER,
            "Register as an individual practitioner",
            "Practitioners enrolled in Medicare after November 2003 (or who updated their "
            "enrollment since) may register alone, for access to their own data.",
            (
                Field(
                    "npi",
                    "NPI",
                    hint="Your 10-digit National Provider Identifier.",
                    max_length=20,
                    check="npi",
                ),
            ),
            rule="IND-1",
        ),
        RequestForm(
            "backup-security-official",
            RequestKind.BACKUP_SECURITY_OFFICIAL,
            "Request the Backup Security Official role",
            "The organization's Security Official approves Backup Security Officials.",
            (_ORGANIZATION,),
            rule="BSO-2",
        ),
        RequestForm(
            "user-group-administrator",
            RequestKind.USER_GROUP_ADMINISTRATOR,
            "Request to administer a user group",
            "Either name a new user group to register it, or choose an existing group "
            "to become one more of its administrators. The Security Official or a Backup "
            "Security Official approves.",
            (
                _ORGANIZATION,
                Field(
                    "group_name",
                    "New group's name",
                    hint="Leave empty to join an existing group instead.",
                    required=False,
                    max_length=80,
                ),
                Field(
                    "description",
                    "New group's description",
                    required=False,
                    kind="textarea",
                    max_length=300,
                ),
                Field(
                    "group_id",
                    "Existing group",
                    hint="Only when joining an existing group: start typing its name.",
                    required=False,
                    max_length=80,
                    check="group",
                    service_names=("group", "group_id"),
                ),
            ),
            rule="UGA-1",
        ),
        RequestForm(
            "end-user",
            RequestKind.END_USER,
            "Request to be an End User of a user group",
            "A User Group Administrator of the group approves. The group must already have an "
            "approved administrator.",
            (
                _ORGANIZATION,
                Field(
                    "group_id",
                    "Group",
                    hint="Start typing the group's name.",
                    max_length=80,
                    check="group",
                    service_names=("group", "group_id"),
                ),
            ),
            rule="EU-1",
        ),
        RequestForm(
            "surrogate-group",
            RequestKind.REGISTER_SURROGATE_GROUP,
            "Register a Surrogate User Group",
            "For contractors working on behalf of a provider. You become the group's first "
            "administrator; the provider's Security Official or a Backup approves.",
            (
                _ORGANIZATION,
                Field("name", "Surrogate group's name", max_length=80),
                Field(
                    "description", "Description", required=False, kind="textarea", max_length=300
                ),
            ),
            rule="SUG-1",
        ),
        RequestForm(
            "surrogate-administrator",
            RequestKind.SURROGATE_ADMINISTRATOR,
            "Request to administer a Surrogate User Group",
            "An official of a provider the group works for approves.",
            (_SURROGATE,),
            rule="SUG-4",
        ),
        RequestForm(
            "surrogate-end-user",
            RequestKind.SURROGATE_END_USER,
            "Request to be an End User of a Surrogate User Group",
            "An administrator of the Surrogate User Group approves.",
            (_SURROGATE,),
            rule="SUG-5",
        ),
        RequestForm(
            "surrogate-association",
            RequestKind.SURROGATE_ASSOCIATION,
            "Associate your Surrogate User Group with another provider",
            "As an approved administrator of the group, ask a further provider organization to "
            "accept your group; its Security Official or a Backup approves.",
            (_SURROGATE, _ORGANIZATION),
            rule="SUG-3",
        ),
    ]
}


def organization_reference(value: str) -> str:
    """People type a TIN/EIN or NPI more readily than an id: accept both."""
    value = (value or "").strip()
    if value and re.fullmatch(r"[0-9 -]+", value):
        try:
            return organization_id(value)
        except ValueError:
            return value
    return value
