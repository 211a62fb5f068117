"""The composition root (with ``iacs.cli``): production objects built from settings.

The portal, the maintenance command and the dev stack get their service from here; nothing
below this module builds a collaborator that talks to a server on its own.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import timedelta

import requests
from flask import Flask

from approval_portal import create_app
from iacs.directory import Directory
from iacs.enrollment import FileEnrollmentSource
from iacs.service import AccessService, ServiceConfig
from iacs.settings import Settings


def build_service(settings: Settings, directory: Directory | None = None) -> AccessService:
    """The service over the directory (portal bind account) and the enrollment source."""
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


def build_portal(settings: Settings) -> Flask:
    """The portal over the production service (``iacs portal serve``, once per process)."""
    return create_app(settings, service=build_service(settings))


def sync_nudge(url: str | None) -> Callable[[], None] | None:
    """After each decision, poke the sync worker so the change reaches Keycloak at once.

    The worker's poll of the change feed is the safety net when a nudge is lost.
    """
    return SyncNudge(url) if url else None


class SyncNudge:
    """Posts ``/nudge`` to the sync worker from a thread of its own, never on a request's path.

    A decision must not wait for the worker: under a burst of approvals the worker's listen
    queue fills and a synchronous post costs a connect timeout (the benchmark's 1.1 s p95
    decisions). Calls while a post is in flight collapse into one more post, so a burst of
    decisions costs the worker a nudge or two. The thread starts on first use (after a forking
    server has forked).
    """

    def __init__(self, url: str, timeout: float = 2.0) -> None:
        self.url = url
        self.timeout = timeout
        self._pending = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def __call__(self) -> None:
        self._pending.set()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="sync-nudge", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        session = requests.Session()
        while True:
            self._pending.wait()
            self._pending.clear()
            with contextlib.suppress(requests.RequestException):
                session.post(self.url, timeout=self.timeout)
