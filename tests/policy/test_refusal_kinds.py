"""Each denial carries its kind, so the portal chooses a status without reading rule IDs.

Submissions the model forbids are refused by rule; a duplicate or an organization already
registered is a conflict; a request already decided is a conflict; everything an actor lacks
the authority for is forbidden. The portal maps the kinds to 422, 409 and 403 in one table.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from approval_portal.errors import status_of
from iacs import policy
from iacs.domain import RequestKind, RequestStatus
from iacs.policy import Refusal
from iacs.service import errors as service_errors

from .test_policy_table import ACTORS, FACTS, NOW, _submit, make_request


def test_an_allowed_decision_has_no_kind() -> None:
    assert policy.allow("DEC-4", "fine").kind is None
    decision = _submit(RequestKind.END_USER, FACTS)
    assert decision.allowed and decision.kind is None


def test_a_duplicate_submission_is_a_conflict() -> None:
    decision = _submit(RequestKind.END_USER, replace(FACTS, duplicate_pending=True))
    assert (decision.allowed, decision.rule, decision.kind) == (False, "DEC-3", Refusal.CONFLICT)


def test_registering_a_registered_organization_is_a_conflict() -> None:
    decision = _submit(
        RequestKind.REGISTER_ORGANIZATION, FACTS, details={"provider_type": "hospital"}
    )
    assert (decision.rule, decision.kind) == ("ORG-2", Refusal.CONFLICT)


def test_a_submission_the_model_forbids_is_refused_by_rule() -> None:
    decision = _submit(
        RequestKind.REGISTER_ORGANIZATION, policy.Facts(), details={"provider_type": "dmepos"}
    )
    assert (decision.rule, decision.kind) == ("ORG-7", Refusal.BY_RULE)
    decision = _submit(RequestKind.END_USER, replace(FACTS, organization=None))
    assert (decision.rule, decision.kind) == ("ORG-1", Refusal.BY_RULE)


def test_deciding_a_decided_request_is_a_conflict_and_lacking_authority_is_forbidden() -> None:
    uga = policy.Actor("uga_a1", ACTORS["uga_a1"])
    decided = make_request(RequestKind.END_USER, status=RequestStatus.APPROVED)
    assert policy.may_decide(uga, decided, FACTS, NOW).kind is Refusal.CONFLICT
    outsider = policy.Actor("so_b", ACTORS["so_b"])
    denied = policy.may_decide(outsider, make_request(RequestKind.END_USER), FACTS, NOW)
    assert (denied.allowed, denied.kind) == (False, Refusal.FORBIDDEN)


@pytest.mark.parametrize(
    ("kind", "error", "status"),
    [
        (Refusal.FORBIDDEN, service_errors.Forbidden, 403),
        (Refusal.CONFLICT, service_errors.Conflict, 409),
        (Refusal.BY_RULE, service_errors.RuleRefused, 422),
    ],
)
def test_the_service_raises_by_kind_and_the_portal_answers_by_error(
    kind: Refusal, error: type[service_errors.ServiceError], status: int
) -> None:
    refused = service_errors.refusal(policy.deny("X-1", "no", kind))
    assert type(refused) is error and refused.rule == "X-1"
    assert status_of(refused) == status


def test_every_service_error_has_a_status() -> None:
    assert status_of(service_errors.InvalidInput("field", "bad")) == 400
    assert status_of(service_errors.NotFound("gone")) == 404
    assert status_of(service_errors.Unavailable("down")) == 503
    assert status_of(service_errors.ServiceError("other")) == 400
