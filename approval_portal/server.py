"""``iacs portal serve``: the portal under gunicorn, the same way in a deployment and locally.

Several processes with several threads each: a decision spends most of its time waiting on
slapd, and one process alone is held to one core by the GIL (the benchmark's 20 concurrent
approvers). Each worker process builds its own app after the fork, so no LDAP connection or
thread crosses a fork. SIGTERM stops the workers gracefully within a few seconds.
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from approval_portal import check_settings
from approval_portal.sessions import StoreNotConfigured
from iacs.settings import MissingSecret, Settings, SettingsError


class PortalServer(BaseApplication):
    """gunicorn configured from arguments rather than a command line or a config file."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from approval_portal import create_app

        return create_app(self.settings)


def serve(settings: Settings, *, host: str, port: int, workers: int, threads: int) -> None:
    """Run until SIGTERM or SIGINT; refuse to start (naming the setting) before any fork."""
    try:
        check_settings(settings)
    except (MissingSecret, StoreNotConfigured) as exc:
        raise SettingsError(f"the portal cannot start: {exc}") from None
    PortalServer(
        settings,
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
