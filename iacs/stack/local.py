"""The whole system on one machine: slapd, Redis, Keycloak, the realm, demo data, portal, sync.

``iacs dev`` (``make demo``) runs this. The portal and the sync worker run as the same CLI
commands a deployment runs (``iacs portal serve``, ``iacs sync run``), configured through the
same ``IACS_*`` variables, which are also written to ``<run-dir>/env`` (shell-quoted) so a
second shell can ``set -a; . var/dev/env; set +a`` and use ``iacs sync once`` or
``iacs keycloak apply``.
From a checkout, the sample PQRI and PS&R applications (``examples/pqri_psr_app``) run too.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import secrets
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

from iacs.demo import ACCOUNTS, DEMO_PASSWORD
from iacs.demo import seed as seed_demo
from iacs.directory import Directory
from iacs.settings import (
    KeycloakSettings,
    PortalSettings,
    Settings,
    SyncSettings,
    settings_to_env,
)
from iacs.stack.keycloak import KeycloakInstance, start_keycloak
from iacs.stack.process import ManagedProcess, free_port
from iacs.stack.redis import RedisInstance, start_redis
from iacs.stack.slapd import SlapdInstance, start_slapd
from iacs.stack.smtp import SmtpInstance, start_smtp
from iacs.wiring import build_service
from keycloak_config.apply import DEV_APPLICATION_REDIRECT_URIS, apply_from_settings

EXAMPLE_APP_MODULE = "examples.pqri_psr_app"
"""The sample application, an installed package (not a path in a checkout)."""


@dataclass
class LocalStack:
    """Running servers and the settings that reach them; ``stop`` ends every process."""

    run_dir: Path
    settings: Settings
    slapd: SlapdInstance
    keycloak: KeycloakInstance
    redis: RedisInstance
    processes: list[ManagedProcess] = field(default_factory=list)
    smtp: SmtpInstance | None = None
    """The relay every e-mail goes through; what it received is in ``smtp.maildir``."""

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        if self.smtp is not None:
            self.smtp.stop()
        self.keycloak.stop()
        self.redis.stop()
        self.slapd.stop()

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_servers(
    run_dir: Path,
    *,
    portal_url: str,
    realm: str = "iacs",
    say: Callable[[str], None] = print,
) -> LocalStack:
    """Start slapd and Keycloak in ``run_dir`` and apply the realm with LDAP federation."""
    run_dir.mkdir(parents=True, exist_ok=True)
    say("starting slapd ...")
    slapd = start_slapd(run_dir / "slapd")
    try:
        say("starting Redis (the portal's sessions) ...")
        redis = start_redis(run_dir / "redis")
    except BaseException:
        slapd.stop()
        raise
    try:
        admin_password = secrets.token_urlsafe(16)
        say("starting Keycloak (the first start takes a minute) ...")
        keycloak = start_keycloak(
            run_dir / "keycloak",
            admin_username="admin",
            admin_password=admin_password,
            truststore_paths=[slapd.ca_file],  # LDAP federation over verified ldaps
        )
    except BaseException:
        redis.stop()
        slapd.stop()
        raise
    say("starting the SMTP server (mail goes to a Maildir) ...")
    try:
        smtp = start_smtp(run_dir / "mail")
    except BaseException:
        keycloak.stop()
        redis.stop()
        slapd.stop()
        raise
    sync_listen = f"127.0.0.1:{free_port()}"
    settings = Settings(
        environment="development",
        ldap=slapd.ldap_settings(),
        keycloak=KeycloakSettings(
            url=keycloak.url,
            realm=realm,
            admin_username="admin",
            admin_password=admin_password,
            sync_client_secret=secrets.token_urlsafe(24),
            portal_client_secret=secrets.token_urlsafe(24),
            application_redirect_uris=dict(DEV_APPLICATION_REDIRECT_URIS),
            application_client_secrets={
                client_id: secrets.token_urlsafe(24) for client_id in DEV_APPLICATION_REDIRECT_URIS
            },
        ),
        portal=PortalSettings(
            public_url=portal_url,
            secret_key=secrets.token_urlsafe(48),
            session_cookie_secure=False,  # local http only; production keeps the default True
            sync_nudge_url=f"http://{sync_listen}/nudge",
            session_store_url=redis.url,
        ),
        sync=SyncSettings(cursor_file=run_dir / "sync-cursor.json", listen=sync_listen),
        mail=smtp.mail_settings(),
    )
    stack = LocalStack(run_dir, settings, slapd, keycloak, redis, smtp=smtp)
    try:
        say("applying the realm ...")
        for change in apply_from_settings(settings, with_federation=True):
            say(f"  {change}")
    except BaseException:
        stack.stop()
        raise
    return stack


def start_cli_process(stack: LocalStack, name: str, *args: str) -> ManagedProcess:
    """Run ``iacs <args>`` with the stack's settings in the environment, logging to the run dir."""
    env = {**os.environ, **settings_to_env(stack.settings)}
    process = ManagedProcess(
        name,
        [sys.executable, "-m", "iacs.cli", *args],
        stack.run_dir / f"{name}.log",
        env=env,
    )
    process.start()
    stack.processes.append(process)
    return process


def start_example_apps(stack: LocalStack) -> dict[str, str]:
    """The sample applications on their redirect URIs' ports (from a checkout): client id → URL."""
    if importlib.util.find_spec(EXAMPLE_APP_MODULE) is None:
        return {}
    env = {**os.environ, **settings_to_env(stack.settings)}
    urls = {}
    for client_id, redirect_uri in stack.settings.keycloak.application_redirect_uris.items():
        address = urlsplit(redirect_uri)
        process = ManagedProcess(
            client_id,
            [
                *(sys.executable, "-m", EXAMPLE_APP_MODULE, "--client-id", client_id),
                *("--host", address.hostname or "127.0.0.1", "--port", str(address.port)),
            ],
            stack.run_dir / f"{client_id}.log",
            env=env,
        )
        process.start()
        stack.processes.append(process)
        url = f"{address.scheme}://{address.netloc}/"
        process.wait_ready(functools.partial(_answers_healthz, url), timeout=60)
        urls[client_id] = url
    return urls


def shell_env_file(env: Mapping[str, str]) -> str:
    """``NAME=value`` lines a POSIX shell can source (``set -a; . file; set +a``).

    Each value is quoted with ``shlex.quote``: the settings hold JSON (quotes, braces, spaces)
    and generated secrets, which unquoted would be split, globbed or expanded by the shell.
    """
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in env.items())


def run_dev_stack(run_dir: Path, *, portal_port: int = 5000, demo: bool = True) -> None:
    """Start everything, print how to sign in, and wait for Ctrl-C."""
    if run_dir.exists():
        shutil.rmtree(run_dir)  # a fresh demo every time; nothing here is meant to persist
    portal_url = f"http://127.0.0.1:{portal_port}"
    stack = start_servers(run_dir, portal_url=portal_url)
    try:
        (run_dir / "env").write_text(shell_env_file(settings_to_env(stack.settings)))
        if demo:
            _seed_demo(stack)
        sync = start_cli_process(stack, "sync", "sync", "run")
        portal = start_cli_process(stack, "portal", "portal", "serve", "--port", str(portal_port))
        sync_url = f"http://{stack.settings.sync.listen}/healthz"
        sync.wait_ready(lambda: requests.get(sync_url, timeout=1).ok, timeout=60)
        portal.wait_ready(lambda: requests.get(f"{portal_url}/healthz", timeout=1).ok, timeout=60)
        apps = start_example_apps(stack)
        _print_welcome(stack, portal_url, demo, apps)
        _wait_for_interrupt()
    finally:
        print("stopping ...")
        stack.stop()


def _seed_demo(stack: LocalStack) -> None:
    root = Directory(
        stack.settings.ldap, bind_dn=stack.slapd.root_dn, password=stack.slapd.root_password
    )
    service = build_service(stack.settings)
    seed_demo(root, service)


def _print_welcome(stack: LocalStack, portal_url: str, demo: bool, apps: dict[str, str]) -> None:
    realm = stack.settings.keycloak.realm
    lines = [
        "",
        "IACS delegated access is running.",
        f"  portal          {portal_url}",
        f"  Keycloak        {stack.keycloak.url}/realms/{realm}/account  (admin console: "
        f"{stack.keycloak.url}/admin, user admin, password in {stack.run_dir / 'env'})",
        f"  sync worker     http://{stack.settings.sync.listen}/metrics",
        *(f"  sample app      {url}  ({client_id})" for client_id, url in apps.items()),
        f"  directory       {stack.slapd.url}  ({stack.settings.ldap.base_dn})",
        *(
            [f"  mail            {stack.smtp.maildir / 'new'}  (one file per e-mail sent)"]
            if stack.smtp is not None
            else []
        ),
        f"  logs            {stack.run_dir}",
    ]
    if demo:
        lines += ["", f"Demo sign-ins (password {DEMO_PASSWORD}):"]
        lines += [f"  {a.username:<10} {a.role}" for a in ACCOUNTS]
    lines += ["", "Ctrl-C stops everything."]
    print("\n".join(lines), flush=True)


def _answers_healthz(url: str) -> bool:
    return requests.get(f"{url}healthz", timeout=1).ok


def _wait_for_interrupt() -> None:
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stopping:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
