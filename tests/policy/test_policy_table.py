"""Table-driven tests of the pure policy: every actor role x action x scope, generated.

The table lists, for each action, exactly which actors are allowed. Every other actor in
``ACTORS`` must be denied, so a new actor or action shows up as a missing row, not a silent pass.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from iacs import policy
from iacs.domain import (
    EntityStatus,
    Membership,
    Organization,
    ProviderType,
    Request,
    RequestKind,
    RequestStatus,
    Role,
    ScopeKind,
    SurrogateGroup,
    UserGroup,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
ORG_A, ORG_B = "org-111111111", "org-222222222"
GROUP_A1, GROUP_A2 = "billing", "records"
SUG = "clearinghouse-x"

HELP_DESK = Membership(Role.HELP_DESK, ScopeKind.SYSTEM)


def _org(role: Role, org: str) -> Membership:
    return Membership(role, ScopeKind.ORGANIZATION, org)


def _group(role: Role, org: str, group: str) -> Membership:
    return Membership(role, ScopeKind.USER_GROUP, group, org)


def _sug(role: Role, sug: str = SUG) -> Membership:
    return Membership(role, ScopeKind.SURROGATE_GROUP, sug)


ACTORS: dict[str, frozenset[Membership]] = {
    "help_desk": frozenset({HELP_DESK}),
    "so_a": frozenset({_org(Role.SECURITY_OFFICIAL, ORG_A)}),
    "bso_a": frozenset({_org(Role.BACKUP_SECURITY_OFFICIAL, ORG_A)}),
    "uga_a1": frozenset({_group(Role.USER_GROUP_ADMINISTRATOR, ORG_A, GROUP_A1)}),
    "uga_a2": frozenset({_group(Role.USER_GROUP_ADMINISTRATOR, ORG_A, GROUP_A2)}),
    "eu_a1": frozenset({_group(Role.END_USER, ORG_A, GROUP_A1)}),
    "so_b": frozenset({_org(Role.SECURITY_OFFICIAL, ORG_B)}),
    "bso_b": frozenset({_org(Role.BACKUP_SECURITY_OFFICIAL, ORG_B)}),
    "uga_b_same_group_name": frozenset({_group(Role.USER_GROUP_ADMINISTRATOR, ORG_B, GROUP_A1)}),
    "sug_uga": frozenset({_sug(Role.USER_GROUP_ADMINISTRATOR)}),
    "sug_eu": frozenset({_sug(Role.END_USER)}),
    "nobody": frozenset(),
}

ORG_A_ACTIVE = Organization(
    ORG_A, "General Hospital", "111111111", ProviderType.HOSPITAL, EntityStatus.ACTIVE
)
GROUP_A1_ACTIVE = UserGroup(GROUP_A1, ORG_A, "Billing", status=EntityStatus.ACTIVE)
SUG_ACTIVE = SurrogateGroup(
    SUG, "Clearinghouse X", status=EntityStatus.ACTIVE, associated_organizations=frozenset({ORG_A})
)
FACTS = policy.Facts(
    organization=ORG_A_ACTIVE,
    user_group=GROUP_A1_ACTIVE,
    surrogate_group=SUG_ACTIVE,
    group_has_administrator=True,
)


def make_request(kind: RequestKind, **changes: object) -> Request:
    """A pending request of ``kind`` aimed at organization A, group A1 or the SUG."""
    base = Request(
        id="r-1",
        kind=kind,
        requester="requester",
        created_at=NOW - timedelta(days=1),
        expires_at=NOW + timedelta(days=29),
        organization_id=ORG_A,
        group_id=GROUP_A1
        if kind in (RequestKind.USER_GROUP_ADMINISTRATOR, RequestKind.END_USER)
        else "",
        surrogate_group_id=SUG
        if kind
        in (
            RequestKind.REGISTER_SURROGATE_GROUP,
            RequestKind.SURROGATE_ADMINISTRATOR,
            RequestKind.SURROGATE_END_USER,
            RequestKind.SURROGATE_ASSOCIATION,
        )
        else "",
        details={"npi": "1234567890"} if kind is RequestKind.INDIVIDUAL_PRACTITIONER else {},
    )
    return replace(base, **changes)


# Who may decide (approve or reject) each kind of pending request aimed at organization A.
DECIDERS: dict[RequestKind, tuple[set[str], str]] = {
    RequestKind.REGISTER_ORGANIZATION: ({"help_desk"}, "ORG-3"),
    RequestKind.INDIVIDUAL_PRACTITIONER: ({"help_desk"}, "IND-1"),
    RequestKind.BACKUP_SECURITY_OFFICIAL: ({"so_a"}, "BSO-2"),
    RequestKind.USER_GROUP_ADMINISTRATOR: ({"so_a", "bso_a"}, "UGA-2"),
    RequestKind.END_USER: ({"so_a", "bso_a", "uga_a1"}, "EU-1"),
    RequestKind.REGISTER_SURROGATE_GROUP: ({"so_a", "bso_a"}, "SUG-2"),
    RequestKind.SURROGATE_ASSOCIATION: ({"so_a", "bso_a"}, "SUG-3"),
    RequestKind.SURROGATE_ADMINISTRATOR: ({"so_a", "bso_a"}, "SUG-4"),
    RequestKind.SURROGATE_END_USER: ({"sug_uga"}, "SUG-5"),
}


def test_every_request_kind_has_a_row() -> None:
    assert set(DECIDERS) == set(RequestKind)


@pytest.mark.parametrize(
    ("kind", "actor"),
    [(kind, actor) for kind in RequestKind for actor in ACTORS],
    ids=lambda value: getattr(value, "value", value),
)
def test_decide_table(kind: RequestKind, actor: str) -> None:
    """DEC-2 and the kind's own rule: exactly the listed actors may decide, all others may not."""
    allowed_actors, rule = DECIDERS[kind]
    decision = policy.may_decide(policy.Actor(actor, ACTORS[actor]), make_request(kind), FACTS, NOW)
    assert decision.allowed is (actor in allowed_actors), decision
    assert decision.reason
    if decision.allowed:
        assert decision.rule == rule


# ---------------------------------------------------------------------------------- deny wins


@pytest.mark.parametrize("kind", list(RequestKind), ids=lambda k: k.value)
def test_dec_1_nobody_decides_their_own_request(kind: RequestKind) -> None:
    allowed_actor = sorted(DECIDERS[kind][0])[0]
    request = make_request(kind, requester=allowed_actor)
    decision = policy.may_decide(
        policy.Actor(allowed_actor, ACTORS[allowed_actor]), request, FACTS, NOW
    )
    assert not decision.allowed and decision.rule == "DEC-1"


@pytest.mark.parametrize("status", [RequestStatus.APPROVED, RequestStatus.REJECTED])
@pytest.mark.parametrize("kind", list(RequestKind), ids=lambda k: k.value)
def test_dec_3_a_decided_request_cannot_be_decided_again(
    kind: RequestKind, status: RequestStatus
) -> None:
    allowed_actor = sorted(DECIDERS[kind][0])[0]
    decision = policy.may_decide(
        policy.Actor(allowed_actor, ACTORS[allowed_actor]),
        make_request(kind, status=status),
        FACTS,
        NOW,
    )
    assert not decision.allowed and decision.rule == "DEC-3"


def test_lc_2_an_expired_request_cannot_be_decided() -> None:
    request = make_request(RequestKind.END_USER, expires_at=NOW)
    decision = policy.may_decide(policy.Actor("uga_a1", ACTORS["uga_a1"]), request, FACTS, NOW)
    assert not decision.allowed and decision.rule == "LC-2"


@pytest.mark.parametrize(
    "kind",
    [
        RequestKind.BACKUP_SECURITY_OFFICIAL,
        RequestKind.USER_GROUP_ADMINISTRATOR,
        RequestKind.END_USER,
        RequestKind.REGISTER_SURROGATE_GROUP,
        RequestKind.SURROGATE_ASSOCIATION,
    ],
    ids=lambda k: k.value,
)
def test_org_4_nothing_is_approved_before_the_security_official(kind: RequestKind) -> None:
    pending_org = replace(ORG_A_ACTIVE, status=EntityStatus.PENDING)
    facts = replace(FACTS, organization=pending_org)
    for actor in DECIDERS[kind][0]:
        decision = policy.may_decide(
            policy.Actor(actor, ACTORS[actor]), make_request(kind), facts, NOW
        )
        assert not decision.allowed and decision.rule == "ORG-4", (actor, decision)


def test_dec_2_an_approver_whose_role_was_revoked_cannot_decide() -> None:
    """The service reads memberships at decision time; without them the SO has no authority."""
    decision = policy.may_decide(
        policy.Actor("so_a", frozenset()),
        make_request(RequestKind.USER_GROUP_ADMINISTRATOR),
        FACTS,
        NOW,
    )
    assert not decision.allowed and decision.rule == "UGA-2"


def test_dec_2_an_approver_of_another_organization_cannot_decide() -> None:
    decision = policy.may_decide(
        policy.Actor("so_b", ACTORS["so_b"]), make_request(RequestKind.END_USER), FACTS, NOW
    )
    assert not decision.allowed


def test_bso_2_a_backup_never_approves_another_backup() -> None:
    decision = policy.may_decide(
        policy.Actor("bso_a", ACTORS["bso_a"]),
        make_request(RequestKind.BACKUP_SECURITY_OFFICIAL),
        FACTS,
        NOW,
    )
    assert not decision.allowed and "never" in decision.reason


def test_sug_7_the_help_desk_takes_no_part_in_surrogate_approvals() -> None:
    for kind in (
        RequestKind.REGISTER_SURROGATE_GROUP,
        RequestKind.SURROGATE_ASSOCIATION,
        RequestKind.SURROGATE_ADMINISTRATOR,
    ):
        decision = policy.may_decide(
            policy.Actor("help_desk", ACTORS["help_desk"]), make_request(kind), FACTS, NOW
        )
        assert not decision.allowed and decision.rule == "SUG-7"


def test_sug_4_only_officers_of_a_provider_the_sug_serves_approve_further_ugas() -> None:
    facts = replace(
        FACTS, surrogate_group=replace(SUG_ACTIVE, associated_organizations=frozenset({ORG_B}))
    )
    request = make_request(RequestKind.SURROGATE_ADMINISTRATOR)
    assert policy.may_decide(policy.Actor("so_b", ACTORS["so_b"]), request, facts, NOW).allowed
    assert not policy.may_decide(policy.Actor("so_a", ACTORS["so_a"]), request, facts, NOW).allowed


# ---------------------------------------------------------------------------------- submitting


def _submit(kind: RequestKind, facts: policy.Facts, actor: str = "nobody", **changes: object):
    return policy.may_submit(
        policy.Actor(actor, ACTORS[actor]), make_request(kind, **changes), facts
    )


def test_org_1_requests_naming_an_unregistered_organization_are_refused() -> None:
    facts = replace(FACTS, organization=None)
    for kind in (
        RequestKind.BACKUP_SECURITY_OFFICIAL,
        RequestKind.USER_GROUP_ADMINISTRATOR,
        RequestKind.END_USER,
        RequestKind.REGISTER_SURROGATE_GROUP,
    ):
        decision = _submit(kind, facts)
        assert not decision.allowed and decision.rule == "ORG-1", kind


def test_org_1_registering_a_new_organization_is_accepted() -> None:
    facts = policy.Facts()
    decision = _submit(
        RequestKind.REGISTER_ORGANIZATION, facts, details={"provider_type": "hospital"}
    )
    assert decision.allowed


def test_org_2_a_second_security_official_registration_is_refused() -> None:
    decision = _submit(
        RequestKind.REGISTER_ORGANIZATION, FACTS, details={"provider_type": "hospital"}
    )
    assert not decision.allowed and decision.rule == "ORG-2"


@pytest.mark.parametrize(
    "provider_type", [p.value for p in ProviderType if p is not ProviderType.DMEPOS]
)
def test_org_7_every_organization_kind_of_the_seed_may_register(provider_type: str) -> None:
    decision = _submit(
        RequestKind.REGISTER_ORGANIZATION, policy.Facts(), details={"provider_type": provider_type}
    )
    assert decision.allowed, decision


def test_org_7_dmepos_suppliers_are_refused_with_the_reason() -> None:
    decision = _submit(
        RequestKind.REGISTER_ORGANIZATION, policy.Facts(), details={"provider_type": "dmepos"}
    )
    assert not decision.allowed and decision.rule == "ORG-7"
    assert "DMEPOS" in decision.reason


def test_org_7_blocked_types_are_configuration() -> None:
    facts = policy.Facts(blocked_provider_types=frozenset({"ambulance_company"}))
    assert _submit(
        RequestKind.REGISTER_ORGANIZATION, facts, details={"provider_type": "dmepos"}
    ).allowed
    assert not _submit(
        RequestKind.REGISTER_ORGANIZATION, facts, details={"provider_type": "ambulance_company"}
    ).allowed


def test_eu_2_no_end_user_registers_in_a_group_without_an_approved_uga() -> None:
    facts = replace(
        FACTS,
        group_has_administrator=False,
        user_group=replace(GROUP_A1_ACTIVE, status=EntityStatus.PENDING),
    )
    decision = _submit(RequestKind.END_USER, facts)
    assert not decision.allowed and decision.rule == "EU-2"


def test_eu_3_a_person_may_be_end_user_in_several_groups() -> None:
    facts = replace(FACTS, requester_memberships=ACTORS["eu_a1"])
    elsewhere = _submit(RequestKind.END_USER, facts, group_id=GROUP_A2)
    assert elsewhere.allowed
    same = policy.may_submit(
        policy.Actor("eu_a1", ACTORS["eu_a1"]), make_request(RequestKind.END_USER), facts
    )
    assert not same.allowed and "already hold" in same.reason


def test_uga_1_new_group_or_join_existing() -> None:
    assert not _submit(
        RequestKind.USER_GROUP_ADMINISTRATOR, FACTS, details={"new_group": "true"}
    ).allowed
    assert _submit(RequestKind.USER_GROUP_ADMINISTRATOR, FACTS).allowed
    no_group = replace(FACTS, user_group=None)
    assert _submit(
        RequestKind.USER_GROUP_ADMINISTRATOR, no_group, details={"new_group": "true"}
    ).allowed
    assert not _submit(RequestKind.USER_GROUP_ADMINISTRATOR, no_group).allowed


def test_sug_3_only_an_approved_sug_uga_asks_for_another_association() -> None:
    other = replace(FACTS, organization=replace(ORG_A_ACTIVE, id=ORG_B))
    assert _submit(
        RequestKind.SURROGATE_ASSOCIATION, other, actor="sug_uga", organization_id=ORG_B
    ).allowed
    assert not _submit(
        RequestKind.SURROGATE_ASSOCIATION, other, actor="sug_eu", organization_id=ORG_B
    ).allowed
    assert not _submit(RequestKind.SURROGATE_ASSOCIATION, FACTS, actor="sug_uga").allowed


def test_sug_1_first_registrant_of_a_surrogate_group_is_its_uga() -> None:
    pending = replace(FACTS, surrogate_group=None)
    assert _submit(RequestKind.REGISTER_SURROGATE_GROUP, pending).allowed
    no_uga = replace(
        FACTS,
        surrogate_group=replace(SUG_ACTIVE, status=EntityStatus.PENDING),
        group_has_administrator=False,
    )
    assert not _submit(RequestKind.SURROGATE_END_USER, no_uga).allowed


def test_ind_1_practitioner_eligibility_is_checked() -> None:
    assert _submit(
        RequestKind.INDIVIDUAL_PRACTITIONER, policy.Facts(practitioner_eligible=True)
    ).allowed
    decision = _submit(
        RequestKind.INDIVIDUAL_PRACTITIONER, policy.Facts(practitioner_eligible=False)
    )
    assert not decision.allowed and decision.rule == "IND-1"


def test_doubled_submission_is_refused() -> None:
    decision = _submit(RequestKind.END_USER, replace(FACTS, duplicate_pending=True))
    assert not decision.allowed


# ---------------------------------------------------------------------------------- profiles


PROFILE_TABLE = {
    "organization": (
        {"so_a", "help_desk"},
        lambda a: policy.may_update_organization_profile(a, ORG_A),
    ),
    "user_group": (
        {"so_a", "bso_a", "uga_a1", "help_desk"},
        lambda a: policy.may_update_group_profile(a, ORG_A, GROUP_A1),
    ),
    "surrogate_group": (
        {"sug_uga", "help_desk"},
        lambda a: policy.may_update_surrogate_profile(a, SUG),
    ),
    "audit_org_a": ({"so_a", "bso_a", "help_desk"}, lambda a: policy.may_read_audit(a, ORG_A)),
    "audit_all": ({"help_desk"}, lambda a: policy.may_read_audit(a, None)),
    "replace_security_official": ({"help_desk"}, policy.may_replace_security_official),
}


@pytest.mark.parametrize(
    ("action", "actor"), [(action, actor) for action in PROFILE_TABLE for actor in ACTORS]
)
def test_profile_and_record_table(action: str, actor: str) -> None:
    """ORG-5, UGA-3, AUD-2, LC-4 across every actor."""
    allowed, ask = PROFILE_TABLE[action]
    decision = ask(policy.Actor(actor, ACTORS[actor]))
    assert decision.allowed is (actor in allowed), decision


def test_org_5_a_backup_may_not_update_the_organization_profile() -> None:
    decision = policy.may_update_organization_profile(policy.Actor("bso_a", ACTORS["bso_a"]), ORG_A)
    assert not decision.allowed and "Backup" in decision.reason


def test_uga_3_only_the_groups_own_uga_updates_its_profile() -> None:
    assert not policy.may_update_group_profile(
        policy.Actor("uga_a2", ACTORS["uga_a2"]), ORG_A, GROUP_A1
    ).allowed
    assert not policy.may_update_group_profile(
        policy.Actor("uga_b", ACTORS["uga_b_same_group_name"]), ORG_A, GROUP_A1
    ).allowed


def test_aud_2_security_official_reads_own_record_only() -> None:
    assert policy.may_read_audit(policy.Actor("so_a", ACTORS["so_a"]), ORG_A).allowed
    assert not policy.may_read_audit(policy.Actor("so_a", ACTORS["so_a"]), ORG_B).allowed


# ---------------------------------------------------------------------------------- revocation

TARGETS: dict[str, Membership] = {
    "so_a": _org(Role.SECURITY_OFFICIAL, ORG_A),
    "bso_a": _org(Role.BACKUP_SECURITY_OFFICIAL, ORG_A),
    "uga_a1": _group(Role.USER_GROUP_ADMINISTRATOR, ORG_A, GROUP_A1),
    "eu_a1": _group(Role.END_USER, ORG_A, GROUP_A1),
    "sug_uga": _sug(Role.USER_GROUP_ADMINISTRATOR),
    "sug_eu": _sug(Role.END_USER),
}

REVOKERS: dict[str, set[str]] = {
    "so_a": {"help_desk"},
    "bso_a": {"help_desk", "so_a"},
    "uga_a1": {"help_desk", "so_a", "bso_a"},
    "eu_a1": {"help_desk", "so_a", "bso_a", "uga_a1"},
    "sug_uga": {"help_desk"},
    "sug_eu": {"help_desk", "sug_uga"},
}


@pytest.mark.parametrize(("target", "actor"), [(t, a) for t in TARGETS for a in ACTORS if a != t])
def test_lc_1_revocation_table(target: str, actor: str) -> None:
    decision = policy.may_revoke(
        policy.Actor(actor, ACTORS[actor]), f"holder-{target}", TARGETS[target]
    )
    assert decision.allowed is (actor in REVOKERS[target]), decision


@pytest.mark.parametrize("target", [t for t in TARGETS if t != "so_a"])
def test_lc_1_anyone_may_resign_their_own_role(target: str) -> None:
    assert policy.may_revoke(
        policy.Actor(target, ACTORS.get(target, frozenset())), target, TARGETS[target]
    ).allowed


def test_lc_4_the_last_security_official_cannot_resign() -> None:
    """ORG-2 makes every SO the last one: the refusal names the way forward (the help desk)."""
    decision = policy.may_revoke(policy.Actor("so_a", ACTORS["so_a"]), "so_a", TARGETS["so_a"])
    assert not decision.allowed
    assert decision.rule == "LC-4" and decision.kind is policy.Refusal.BY_RULE
    assert "help desk" in decision.reason and "replace you" in decision.reason


def test_lc_1_a_backup_cannot_revoke_another_backup() -> None:
    decision = policy.may_revoke(
        policy.Actor("bso_a", ACTORS["bso_a"]), "other-bso", TARGETS["bso_a"]
    )
    assert not decision.allowed


def test_lc_3_recertified_only_by_someone_who_could_approve_it() -> None:
    approved = make_request(RequestKind.END_USER, status=RequestStatus.APPROVED)
    assert policy.may_recertify(
        policy.Actor("uga_a1", ACTORS["uga_a1"]), "holder", approved, FACTS, NOW
    ).allowed
    assert not policy.may_recertify(
        policy.Actor("uga_a2", ACTORS["uga_a2"]), "holder", approved, FACTS, NOW
    ).allowed
    assert not policy.may_recertify(
        policy.Actor("holder", ACTORS["uga_a1"]), "holder", approved, FACTS, NOW
    ).allowed


def test_lc_4_only_the_help_desk_replaces_a_security_official() -> None:
    assert policy.may_replace_security_official(policy.Actor("hd", ACTORS["help_desk"])).allowed
    assert not policy.may_replace_security_official(policy.Actor("bso", ACTORS["bso_a"])).allowed


# ---------------------------------------------------------------------------------- ORG-6


def test_org_6_two_users_one_with_application_access() -> None:
    only_so = policy.organization_completeness({"so": [Role.SECURITY_OFFICIAL]})
    assert not only_so.complete and len(only_so.missing) == 2
    so_and_bso = policy.organization_completeness(
        {"so": [Role.SECURITY_OFFICIAL], "bso": [Role.BACKUP_SECURITY_OFFICIAL]}
    )
    assert not so_and_bso.complete
    so_and_eu = policy.organization_completeness(
        {"so": [Role.SECURITY_OFFICIAL], "eu": [Role.END_USER]}
    )
    assert so_and_eu.complete


def test_granted_membership_of_every_kind_except_association() -> None:
    for kind in RequestKind:
        membership = policy.granted_membership(make_request(kind))
        assert (membership is None) is (kind is RequestKind.SURROGATE_ASSOCIATION)


def test_bso_1_the_security_official_cannot_also_be_a_backup() -> None:
    facts = replace(FACTS, requester_memberships=ACTORS["so_a"])
    decision = _submit(RequestKind.BACKUP_SECURITY_OFFICIAL, facts)
    assert not decision.allowed and decision.rule == "BSO-1"
    assert _submit(RequestKind.BACKUP_SECURITY_OFFICIAL, FACTS).allowed


# ---------------------------------------------------------------------- who sees a request

# Besides the requester: the deciders of each kind, and the auditors of organization A (its SO
# and BSOs, and the help desk). Everyone else, End Users of the same organization included,
# must not read the request.
VIEWERS: dict[RequestKind, set[str]] = {
    kind: deciders
    | {"help_desk"}
    | ({"so_a", "bso_a"} if kind is not RequestKind.INDIVIDUAL_PRACTITIONER else set())
    for kind, (deciders, _rule) in DECIDERS.items()
}


@pytest.mark.parametrize("status", [RequestStatus.PENDING, RequestStatus.APPROVED])
@pytest.mark.parametrize(
    ("kind", "actor"),
    [(kind, actor) for kind in RequestKind for actor in ACTORS],
    ids=lambda value: getattr(value, "value", value),
)
def test_sec_request_is_visible_only_to_its_requester_deciders_and_auditors(
    kind: RequestKind, actor: str, status: RequestStatus
) -> None:
    request = make_request(kind, status=status)
    if kind is RequestKind.INDIVIDUAL_PRACTITIONER:
        request = replace(request, organization_id="")
    decision = policy.may_view_request(policy.Actor(actor, ACTORS[actor]), request, FACTS)
    assert decision.allowed is (actor in VIEWERS[kind]), decision
    assert decision.reason


def test_sec_the_requester_always_sees_their_own_request() -> None:
    request = make_request(RequestKind.END_USER, requester="eu_a1")
    assert policy.may_view_request(policy.Actor("eu_a1", ACTORS["eu_a1"]), request, FACTS)
    assert policy.may_view_request(policy.Actor("eu_a1", frozenset()), request, FACTS)
