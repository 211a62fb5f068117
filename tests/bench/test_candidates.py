"""Who the latency benchmarks ask and who approves: always a valid request for a real approver."""

from __future__ import annotations

from bench.generate import SIZES, generate
from bench.portal import candidates, decision_queues
from iacs.domain import Membership, Role, ScopeKind

COMMUNITY = generate(SIZES["ci"])


def is_uga(username: str, org_id: str, group_id: str) -> bool:
    uga = Membership(Role.USER_GROUP_ADMINISTRATOR, ScopeKind.USER_GROUP, group_id, org_id)
    return uga in COMMUNITY.memberships[username]


def test_candidates_are_distinct_people_outside_the_group_with_its_administrator():
    chosen = candidates(COMMUNITY, 20, seed=1, exclude=set())
    assert len({c.person for c in chosen}) == 20
    for c in chosen:
        held = {(m.organization_id, m.scope_id) for m in COMMUNITY.memberships[c.person]}
        assert (c.organization_id, c.group_id) not in held
        assert c.person != c.approver
        assert is_uga(c.approver, c.organization_id, c.group_id)


def test_candidates_leave_out_people_already_used():
    first = candidates(COMMUNITY, 20, seed=1, exclude=set())
    second = candidates(COMMUNITY, 20, seed=2, exclude={c.person for c in first})
    assert not {c.person for c in first} & {c.person for c in second}


def test_twenty_distinct_approvers_each_with_their_own_queue():
    queues = decision_queues(COMMUNITY, 20, 2, seed=5, exclude=set())
    assert len(queues) == 20
    for approver, queue in queues.items():
        assert len(queue) == 2
        assert len({(c.person, c.group_id) for c in queue}) == 2
        assert all(c.approver == approver for c in queue)
        assert all(is_uga(approver, c.organization_id, c.group_id) for c in queue)
