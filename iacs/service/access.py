"""The one path to every decision: load facts, ask the policy, write the directory, record it.

Pages and the JSON API both call ``AccessService``; nothing else writes role memberships. Every
method re-reads the actor's memberships from the directory (DEC-2), refuses with a typed
``ServiceError`` that changed nothing, and appends an audit record for every request, decision,
revocation and profile change, including the refused ones (AUD-1).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from iacs.service.base import MaintenanceReport, ServiceConfig, utcnow
from iacs.service.decisions import DecisionOperations
from iacs.service.lifecycle import LifecycleOperations
from iacs.service.profiles import ProfileOperations
from iacs.service.requests import RequestOperations


class AccessService(RequestOperations, DecisionOperations, ProfileOperations, LifecycleOperations):
    """Requests, decisions, revocations and profiles, enforced by ``iacs.policy``."""

    recovery: Any = None
    """The background pass over approvals cut short that the composition root may attach
    (``iacs.wiring.ApprovalRecovery``); whoever attached it stops it."""

    def run_maintenance(self) -> MaintenanceReport:
        """``iacs maintenance``: every pass, each entry on its own (see ``MaintenanceReport``).

        LC-2 expiry, pending requests whose target has gone, LC-3 lapses, approvals still
        marked as being granted (any age: the operator runs this when nothing else is
        deciding), and approvals from before the marker existed whose membership is missing.
        """
        report = MaintenanceReport()
        report.expired = self.expire_pending(report.problems)
        report.closed = self.close_orphaned_requests(report.problems)
        report.lapsed = self.lapse_unrecertified(report.problems)
        report.completed, report.undone = self.recover_interrupted_approvals(
            timedelta(0), report.problems
        )
        report.completed += self.complete_interrupted_approvals(report.problems)
        return report


__all__ = ["AccessService", "MaintenanceReport", "ServiceConfig", "utcnow"]
