"""The worker's entry points, ``iacs sync once`` and ``iacs sync run``: each builds the worker's
collaborators (the directory, the Keycloak gateway, the catalogue, the HTTP endpoint) and runs it.

They live apart from ``sync.worker`` so that the worker knows nothing of its endpoint
(``sync.http`` reads the worker; the worker does not import ``sync.http``).
"""

from __future__ import annotations

import logging
import signal
import time

from iacs.catalogue import load_catalogue
from iacs.directory import Directory
from iacs.settings import Settings, SettingsError

from .apply import log_out
from .gateway import KeycloakGateway
from .http import UnprotectedListenAddress, require_protected, serve
from .logs import configure_logging
from .pending_logouts import PendingLogouts
from .reconcile import ReconcileProgress, ReconcileResult, reconcile
from .worker import SyncWorker, pending_logouts_path

log = logging.getLogger("sync.worker")


def run_once(settings: Settings, progress: ReconcileProgress | None = None) -> ReconcileResult:
    """One full reconcile (``iacs sync once``); the change-feed cursor is left alone.

    ``progress`` (the command's bar) is told of each stage and each request to Keycloak.
    """
    configure_logging(logging.WARNING)
    catalogue = load_catalogue(settings.sync.catalogue_file)
    with Directory(settings.ldap, account="sync") as directory:
        started = time.perf_counter()
        if progress is not None:
            progress.stage("read the directory")
        snapshot = directory.snapshot()
        read_directory = time.perf_counter() - started
        gateway = KeycloakGateway.from_settings(settings.keycloak)
        pending = PendingLogouts(pending_logouts_path(settings))
        result = reconcile(gateway, snapshot, catalogue, pending=pending, progress=progress)
        if pending.load():
            log_out(gateway, pending.load(), dict(result.after.user_ids), pending)
    result.timings = {"snapshot": read_directory, **result.timings}
    result.timings["total"] += read_directory
    return result


def build_worker(settings: Settings) -> SyncWorker:
    """The production worker: the directory as the sync account, gateways from the settings."""
    return SyncWorker(
        settings,
        directory=Directory(settings.ldap, account="sync"),
        gateway_factory=lambda: KeycloakGateway.from_settings(settings.keycloak),
    )


def check_servers(settings: Settings) -> None:
    """Bind as the sync account and sign in as the sync client once, before the worker starts.

    The worker itself rides out a server that goes away (it retries); a wrong URL, password
    or secret at start is an operator's mistake, raised here as the typed error for
    ``iacs.cli_errors`` to put in one line.
    """
    with Directory(settings.ldap, account="sync") as directory:
        directory.check()
    KeycloakGateway.from_settings(settings.keycloak).check()


def run_forever(settings: Settings) -> None:
    """``iacs sync run``: the worker with its HTTP endpoint, until SIGTERM or SIGINT."""
    configure_logging()
    try:  # before anything starts: a clear message, no traceback
        require_protected(settings.sync.listen, settings.sync.nudge_token)
    except UnprotectedListenAddress as exc:
        raise SettingsError(str(exc)) from None
    check_servers(settings)
    worker = build_worker(settings)
    server = serve(worker, settings.sync.listen, settings.sync.nudge_token)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.stop())
    log.info("sync worker started", extra={"listen": settings.sync.listen})
    try:
        worker.run()
    finally:
        server.shutdown()
        log.info("sync worker stopped")
