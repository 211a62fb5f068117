"""``iacs portal serve``: the portal under gunicorn, the same way in a deployment and locally.

Several processes with several threads each: a decision spends most of its time waiting on
slapd, and one process alone is held to one core by the GIL (the benchmark's 20 concurrent
approvers). Each worker process builds its own app after the fork, so no LDAP connection or
thread crosses a fork. SIGTERM stops the workers gracefully within a few seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from approval_portal import check_settings
from approval_portal.sessions import StoreNotConfigured
from iacs.settings import MissingSecret, Settings, SettingsError


class PortalServer(BaseApplication):
    """gunicorn configured from arguments rather than a command line or a config file."""

    def __init__(self, build_app: Callable[[], Flask], options: dict[str, Any]) -> None:
        self.build_app = build_app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        """Called in each worker process after the fork: the app and its connections are its own."""
        return self.build_app()


def serve(
    build_app: Callable[[], Flask],
    *,
    settings: Settings,
    host: str,
    port: int,
    workers: int,
    threads: int,
    preflight: Callable[[], None] | None = None,
) -> None:
    """Run until SIGTERM or SIGINT; ``build_app`` (from the composition root) runs per process.

    The portal's secrets and session store are checked first, then ``preflight`` (the
    composition root's check of the servers), before any fork: a bad start fails once, with
    the setting or the server named.
    """
    try:
        check_settings(settings)
    except (MissingSecret, StoreNotConfigured) as exc:
        raise SettingsError(f"the portal cannot start: {exc}") from None
    if preflight is not None:
        preflight()
    PortalServer(
        build_app,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "graceful_timeout": 5,
            "timeout": 60,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "proc_name": "iacs-portal",
        },
    ).run()
