"""Errors the service raises: each has a stable code, an HTTP status and a message for people.

The JSON API returns ``{"error": {"code", "message", "rule"}}`` from these; the pages show the
message. Codes are stable strings integrators may branch on; messages may change.
"""

from __future__ import annotations

from iacs.policy import Decision


class ServiceError(Exception):
    """Base of every refusal; nothing was changed when one is raised, except where
    ``Unavailable`` says otherwise in its message (a write whose answer was lost)."""

    status = 400
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

    status = 400
    code = "invalid_input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Forbidden(ServiceError):
    """The policy refused: the actor lacks authority for this action."""

    status = 403
    code = "forbidden"

    @classmethod
    def from_decision(cls, decision: Decision) -> Forbidden:
        return cls(decision.reason, rule=decision.rule)


class RuleRefused(ServiceError):
    """The request breaks a rule of the model (ORG-1, ORG-7, EU-2, IND-1...)."""

    status = 422
    code = "rule_refused"

    @classmethod
    def from_decision(cls, decision: Decision) -> RuleRefused:
        return cls(decision.reason, rule=decision.rule)


class Conflict(ServiceError):
    """The request collides with the directory's state (already registered, already decided)."""

    status = 409
    code = "conflict"


class Unavailable(ServiceError):
    """The directory could not be reached; the message says what may have been written.

    Codes: ``directory_unavailable`` (generic), ``decision_outcome_unknown`` (the decision's
    write got no answer: it may have been recorded) and ``grant_pending`` (an approval was
    recorded but its effects are not all written: the system completes or undoes it).
    """

    status = 503
    code = "directory_unavailable"
