"""Errors the service raises: each has a stable code and a message for people.

The JSON API returns ``{"error": {"code", "message", "rule"}}`` from these; the pages show the
message. Codes are stable strings integrators may branch on; messages may change. The service
knows no HTTP: the portal maps each error to a status (``approval_portal.errors``).
"""

from __future__ import annotations

from iacs.policy import Decision, Refusal


class ServiceError(Exception):
    """Base of every refusal; nothing was changed when one is raised, except where
    ``Unavailable`` says otherwise in its message (a write whose answer was lost)."""

    code = "bad_request"

    def __init__(self, message: str, *, rule: str = "", code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.rule = rule
        if code:
            self.code = code

    def as_dict(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.rule:
            body["rule"] = self.rule
        return body


class InvalidInput(ServiceError):
    """Malformed, oversized or hostile input."""

    code = "invalid_input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class NotFound(ServiceError):
    code = "not_found"


class Forbidden(ServiceError):
    """The policy refused: the actor lacks authority for this action."""

    code = "forbidden"


class RuleRefused(ServiceError):
    """The request breaks a rule of the model (ORG-1, ORG-7, EU-2, IND-1...)."""

    code = "rule_refused"


class Conflict(ServiceError):
    """The request collides with the directory's state (already registered, already decided)."""

    code = "conflict"


class Unavailable(ServiceError):
    """The directory could not be reached; the message says what may have been written.

    Codes: ``directory_unavailable`` (generic), ``decision_outcome_unknown`` (the decision's
    write got no answer: it may have been recorded) and ``grant_pending`` (an approval was
    recorded but its effects are not all written: the system completes or undoes it).
    """

    code = "directory_unavailable"


def refusal(decision: Decision, *, code: str | None = None) -> ServiceError:
    """The error for a policy denial, chosen by the denial's kind (not by its rule)."""
    match decision.kind:
        case Refusal.CONFLICT:
            return Conflict(decision.reason, rule=decision.rule, code=code)
        case Refusal.BY_RULE:
            return RuleRefused(decision.reason, rule=decision.rule, code=code)
    return Forbidden(decision.reason, rule=decision.rule, code=code)
