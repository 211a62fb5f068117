"""The one path to every decision: load facts, ask the policy, write the directory, record it.

Pages and the JSON API both call ``AccessService``; nothing else writes role memberships. Every
method re-reads the actor's memberships from the directory (DEC-2), refuses with a typed
``ServiceError`` that changed nothing, and appends an audit record for every request, decision,
revocation and profile change, including the refused ones (AUD-1).
"""

from __future__ import annotations

from iacs.service.base import ServiceConfig, utcnow
from iacs.service.decisions import DecisionOperations
from iacs.service.lifecycle import LifecycleOperations
from iacs.service.profiles import ProfileOperations
from iacs.service.requests import RequestOperations


class AccessService(RequestOperations, DecisionOperations, ProfileOperations, LifecycleOperations):
    """Requests, decisions, revocations and profiles, enforced by ``iacs.policy``."""


__all__ = ["AccessService", "ServiceConfig", "utcnow"]
