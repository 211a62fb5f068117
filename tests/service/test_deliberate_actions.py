"""Issue 9 in the service, over the real slapd: withdrawal, the last Security Official, the
replacement of an SO by a BSO, the reasons kept in the audit, the organizations without an SO,
and the read models officials decide from (names in words)."""

from __future__ import annotations

import pytest

from iacs.domain import Membership, RequestStatus, Role, ScopeKind
from iacs.service import Conflict, Forbidden, NotFound, RuleRefused
from iacs.service.views import ViewService
from tests.service.conftest import ORG_ID, World

SO = Membership(Role.SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, ORG_ID)
BSO = Membership(Role.BACKUP_SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, ORG_ID)


def test_dec_1_the_requester_withdraws_a_pending_request_once_and_it_is_audited(world: World):
    world.people("sofia", "ben")
    world.organization()
    filed = world.service.request_backup_security_official("ben", ORG_ID)
    with pytest.raises(Forbidden):
        world.service.withdraw("sofia", filed.id)
    withdrawn = world.service.withdraw("ben", filed.id, "asked by mistake")
    assert withdrawn.status is RequestStatus.WITHDRAWN
    assert world.root.get_request(filed.id).status is RequestStatus.WITHDRAWN
    assert filed.id not in {r.id for r in world.service.approval_queue("sofia")}
    with pytest.raises(Conflict):
        world.service.withdraw("ben", filed.id)
    with pytest.raises(Conflict):
        world.service.decide("sofia", filed.id, approve=True)
    records = world.root.find_audit(request_id=filed.id)
    assert sorted((r.actor, r.action, r.outcome) for r in records if r.action == "withdraw") == [
        ("ben", "withdraw", "denied"),
        ("ben", "withdraw", "ok"),
        ("sofia", "withdraw", "denied"),
    ]


def test_dec_1_withdrawing_a_registration_frees_the_organization(world: World):
    world.people("sofia")
    filed = world.service.register_organization(
        "sofia", name="Lakeside", identifier="123456789", provider_type="hospital"
    )
    world.service.withdraw("sofia", filed.id)
    assert world.root.get_organization(ORG_ID) is None
    again = world.service.register_organization(
        "sofia", name="Lakeside", identifier="123456789", provider_type="hospital"
    )
    assert again.status is RequestStatus.PENDING


def test_lc_4_the_last_security_official_cannot_resign(world: World):
    world.people("sofia")
    world.organization()
    with pytest.raises(RuleRefused) as refused:
        world.service.revoke("sofia", "sofia", SO, "leaving")
    assert refused.value.rule == "LC-4" and "help desk" in refused.value.message
    assert world.root.members_of(SO) == {"sofia"}


def test_lc_4_replacing_the_so_by_a_bso_leaves_them_one_role_and_keeps_the_reason(world: World):
    world.people("sofia", "ben")
    world.organization()
    bso = world.service.request_backup_security_official("ben", ORG_ID)
    world.service.decide("sofia", bso.id, approve=True)
    world.service.replace_security_official("helpdesk", ORG_ID, "ben", "sofia retired")
    assert world.root.memberships_of("ben") == frozenset({SO})
    assert world.root.memberships_of("sofia") == frozenset()
    records = world.root.find_audit(actor="helpdesk", subject="ben")
    assert [r.detail for r in records if r.action == "replace_security_official"] == [
        "sofia retired"
    ]


def test_lc_1_the_reason_of_a_revocation_is_kept_in_the_audit(world: World):
    world.people("sofia", "ben")
    world.organization()
    bso = world.service.request_backup_security_official("ben", ORG_ID)
    world.service.decide("sofia", bso.id, approve=True)
    world.service.revoke("sofia", "ben", BSO, "left the hospital")
    revoked = [r for r in world.root.find_audit(actor="sofia") if r.action == "revoke"]
    assert [(r.subject, r.detail) for r in revoked] == [("ben", "left the hospital")]


def test_lc_4_the_help_desk_sees_the_organizations_without_a_security_official(world: World):
    world.people("sofia", "olga")
    world.organization()
    world.organization("olga", identifier="987654321")
    views = ViewService(world.service)
    assert views.organizations_without_security_official("helpdesk") == []
    world.service.revoke(
        "helpdesk",
        "olga",
        SO.__class__(Role.SECURITY_OFFICIAL, ScopeKind.ORGANIZATION, "org-987654321"),
        "left",
    )
    assert [o.id for o in views.organizations_without_security_official("helpdesk")] == [
        "org-987654321"
    ]
    with pytest.raises(Forbidden):
        views.organizations_without_security_official("sofia")


def test_aud_2_the_queue_and_person_page_speak_in_names_within_scope(world: World):
    world.make_person("sofia", display_name="Sofia Lopez", email="sofia@example.test")
    world.make_person("ben", display_name="Ben Okafor", email="ben@example.test")
    world.make_person("olga")
    world.organization()
    world.organization("olga", identifier="987654321")
    world.service.request_backup_security_official("ben", ORG_ID)
    views = ViewService(world.service)
    [row] = views.queue("sofia")
    assert (row.requester.display_name, row.requester.email) == ("Ben Okafor", "ben@example.test")
    assert row.title == "Ben Okafor asks to be a Backup Security Official — Lakeside"
    assert views.person("sofia", "ben").person.display_name == "Ben Okafor"  # he asks her
    with pytest.raises(NotFound):
        views.person("olga", "sofia")  # another organization's official
    whole = views.person("helpdesk", "sofia")
    assert whole.audit and {r.action for r in whole.audit} >= {"request:register_organization"}
