"""The ``iacs`` command: run the stack, apply the realm, run the sync worker, run maintenance.

Heavy modules are imported inside each command so that ``iacs --help`` and settings errors are
instant, and a missing prerequisite is reported by the command that needs it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from iacs.settings import SettingsError, load_settings


@click.group()
def main() -> None:
    """IACS delegated access: directory, approval portal, Keycloak sync."""


@main.command("settings")
def show_settings() -> None:
    """Validate the settings from the environment and print them (secrets hidden)."""
    settings = _settings()
    # str() of a secret is "**********" (or "(unset)" outside development): never its value.
    click.echo(json.dumps(settings.model_dump(), indent=2, default=str))


@main.command()
@click.option("--run-dir", type=click.Path(path_type=Path), default=Path("var/dev"))
@click.option("--portal-port", type=int, default=5000, show_default=True)
@click.option("--no-demo", is_flag=True, help="Start with an empty directory.")
def dev(run_dir: Path, portal_port: int, no_demo: bool) -> None:
    """Run the whole system locally with demo data; Ctrl-C stops everything."""
    from iacs.stack.local import run_dev_stack

    try:
        run_dev_stack(run_dir.resolve(), portal_port=portal_port, demo=not no_demo)
    except KeyboardInterrupt:
        click.echo("stopped")


@main.group()
def keycloak() -> None:
    """The realm as code."""


@keycloak.command("apply")
@click.option("--dry-run", is_flag=True, help="Print what would change, change nothing.")
@click.option("--no-federation", is_flag=True, help="Leave out the LDAP user federation.")
def keycloak_apply(dry_run: bool, no_federation: bool) -> None:
    """Apply keycloak_config/realm.json idempotently and print what changed."""
    from keycloak_config.apply import apply_from_settings

    changes = apply_from_settings(_settings(), with_federation=not no_federation, dry_run=dry_run)
    for change in changes:
        click.echo(str(change))
    click.echo(f"{len(changes)} change(s)" if changes else "no changes")


@main.group()
def sync() -> None:
    """The sync worker: approved roles into Keycloak."""


@sync.command("once")
def sync_once() -> None:
    """One full reconcile, with progress and a summary of what changed."""
    from sync.worker import run_once

    summary = run_once(_settings(), progress=True)
    click.echo(str(summary))


@sync.command("run")
def sync_run() -> None:
    """Follow the directory's change feed and reconcile periodically, until stopped."""
    from sync.worker import run_forever

    run_forever(_settings())


@main.group()
def portal() -> None:
    """The approval portal."""


@portal.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=5000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--threads", type=click.IntRange(1, 256), default=8, show_default=True)
def portal_serve(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the portal with gunicorn (processes x threads; put a TLS proxy in front of it)."""
    from approval_portal.server import serve

    settings = _settings()  # validated before any process starts
    serve(settings, host=host, port=port, workers=workers, threads=threads)


@main.command()
def maintenance() -> None:
    """LC-2 expire pending requests, LC-3 lapse unrecertified roles, finish cut-short approvals."""
    from iacs.wiring import build_service

    service = build_service(_settings())
    expired = service.expire_pending()
    lapsed = service.lapse_unrecertified()
    completed = service.complete_interrupted_approvals()
    click.echo(f"expired {expired}, lapsed {lapsed}, completed {completed}")


@main.group()
def directory() -> None:
    """The OpenLDAP directory."""


@directory.command("serve")
@click.option("--data-dir", type=click.Path(path_type=Path), required=True)
@click.option("--port", type=int, default=389, show_default=True)
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")  # noqa: S104
def directory_serve(data_dir: Path, port: int, host: str) -> None:
    """Run slapd in the foreground with the project's generated config (container entrypoint)."""
    from iacs.stack.process import ServerStartError
    from iacs.stack.slapd import serve_foreground

    settings = _settings()
    try:
        code = serve_foreground(data_dir.resolve(), port=port, settings=settings, host=host)
    except ServerStartError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    sys.exit(code)


@main.group()
def compose() -> None:
    """docker-compose.yml for real, on a private Docker engine this command starts and stops."""


@compose.command("up")
@click.option("--project-dir", type=click.Path(path_type=Path, file_okay=False), default=Path("."))
@click.option("--state-dir", type=click.Path(path_type=Path), default=None)
@click.option("--port", type=int, default=8443, show_default=True, help="Published on 127.0.0.1.")
def compose_up(project_dir: Path, state_dir: Path | None, port: int) -> None:
    """Build the images, bring the deployment up, wait for Ctrl-C, then stop it (volumes kept)."""
    from iacs.stack.docker import default_state_dir, run_foreground

    if not (project_dir / "docker-compose.yml").exists():
        raise click.UsageError(f"no docker-compose.yml in {project_dir.resolve()}")
    _exit_cleanly_on_sigterm()
    run_foreground(
        project_dir.resolve(), (state_dir or default_state_dir()).resolve(), port, click.echo
    )


@compose.command("reset")
@click.option("--project-dir", type=click.Path(path_type=Path, file_okay=False), default=Path("."))
@click.option("--state-dir", type=click.Path(path_type=Path), default=None)
def compose_reset(project_dir: Path, state_dir: Path | None) -> None:
    """Remove the deployment's containers, volumes (the directory!) and generated secrets."""
    from iacs.stack.docker import default_state_dir, reset

    reset(project_dir.resolve(), (state_dir or default_state_dir()).resolve())
    click.echo("removed")


@main.command()
@click.option("--size", type=click.Choice(["ci", "full"]), default="ci", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench/results"))
def bench(size: str, out: Path) -> None:
    """Run the benchmarks on real servers and write results and docs/benchmarks.md."""
    from bench.run import run_benchmarks

    _exit_cleanly_on_sigterm()
    run_benchmarks(size=size, out_dir=out)


def _exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so ``finally`` blocks stop the servers this command started."""
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def _settings():
    try:
        return load_settings()
    except SettingsError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
