"""The composition root: production objects built from settings (portal, CLI and maintenance)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta

from iacs.settings import Settings


def build_service(settings: Settings, directory=None):
    """The service over the directory (portal bind account) and the enrollment source."""
    from iacs.directory import Directory
    from iacs.enrollment import FileEnrollmentSource
    from iacs.service import AccessService, ServiceConfig

    portal = settings.portal
    config = ServiceConfig(
        request_ttl=timedelta(days=portal.request_ttl_days),
        recertification_period=timedelta(days=portal.recertification_days),
        blocked_provider_types=frozenset(portal.blocked_provider_types),
    )
    directory = directory or Directory(settings.ldap, account="portal")
    return AccessService(
        directory,
        FileEnrollmentSource(portal.enrollment_file),
        config,
        on_change=sync_nudge(settings.portal.sync_nudge_url),
    )


def sync_nudge(url: str | None) -> Callable[[], None] | None:
    """After each decision, poke the sync worker so the change reaches Keycloak at once.

    The worker's poll of the change feed is the safety net when a nudge is lost.
    """
    if not url:
        return None

    def nudge() -> None:
        import requests

        with contextlib.suppress(requests.RequestException):
            requests.post(url, timeout=1)

    return nudge
