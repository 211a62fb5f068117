"""The ``iacs`` command: run the stack, apply the realm, run the sync worker, run maintenance.

With ``iacs.wiring`` this is the composition root: the one place that imports every layer
(portal, sync worker, realm applier, launchers) and hands each its collaborators. Imports are
at the top so that a broken one fails ``iacs --help`` (and ``tests/test_cli.py``), not the
command in production.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import TextIO

import click
from tqdm import tqdm

from approval_portal.server import serve as serve_portal
from iacs.cli_errors import CommandContext, explain
from iacs.service import ServiceError
from iacs.service.onboarding import export_roles, import_onboarding
from iacs.settings import Settings, SettingsError, load_settings
from iacs.stack.local import run_dev_stack
from iacs.stack.process import ServerStartError
from iacs.stack.slapd import replication_for, serve_foreground
from iacs.wiring import (
    build_housekeeping,
    build_portal,
    build_scheduler,
    build_service,
    check_directory,
)
from keycloak_config.apply import apply_from_settings
from sync.main import run_forever, run_once
from sync.reconcile import ReconcileResult

DISTRIBUTION = "iacs-delegated-access"
"""The installed package ``iacs --version`` reads its version from (importlib.metadata)."""


class _Commands(click.Group):
    """The ``iacs`` group: a failure an operator can fix is one line on stderr, exit 1.

    The one place errors are translated (``iacs.cli_errors``): a wrong LDAP URL, a refused
    password, an unreachable Keycloak or a refused client secret, in every command. Others,
    and all of them under ``--debug``, keep their traceback.
    """

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (Exception, SettingsError) as exc:
            context = ctx.obj if isinstance(ctx.obj, CommandContext) else CommandContext()
            line = None if context.debug else explain(exc, context)
            if line is None:
                raise
            click.echo(f"iacs: {line}", err=True)
            ctx.exit(2 if isinstance(exc, SettingsError) else 1)


@click.group(cls=_Commands)
@click.version_option(package_name=DISTRIBUTION, prog_name="iacs")
@click.option("--debug", is_flag=True, help="Show the traceback of any failure.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """IACS delegated access: directory, approval portal, Keycloak sync."""
    ctx.obj = CommandContext(debug=debug)


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
    _context().keycloak_as = "admin"
    changes = apply_from_settings(_settings(), with_federation=not no_federation, dry_run=dry_run)
    for change in changes:
        click.echo(str(change))
    click.echo(f"{len(changes)} change(s)" if changes else "no changes")


@main.group()
def sync() -> None:
    """The sync worker: approved roles into Keycloak."""


@sync.command("once")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Draw a progress bar on stderr (default: when stderr is a terminal).",
)
def sync_once(progress: bool | None) -> None:
    """One full reconcile, with progress and a one-line summary of what changed."""
    settings = _settings()
    show = sys.stderr.isatty() if progress is None else progress
    bar = ProgressBar() if show else None
    try:
        result = run_once(settings, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    click.echo(summary_line(result))


class ProgressBar:
    """``sync.reconcile.ReconcileProgress`` drawn with tqdm on stderr, one bar per stage."""

    def __init__(self) -> None:
        self._bar: tqdm[None] | None = None

    def stage(self, name: str, total: int | None = None) -> None:
        self.close()
        self._bar = tqdm(total=total, desc=name, unit=" req", file=sys.stderr, leave=False)

    def advance(self, count: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def summary_line(result: ReconcileResult) -> str:
    """One line: what the reconcile saw, what it changed, what it could not do, how long."""
    summary = result.summary()
    changes = ", ".join(f"{count} {kind}" for kind, count in result.plan.summary().items() if count)
    return (
        f"sync once: {summary['people']} people, {summary['groups']} groups; "
        f"{result.report.total_writes} writes ({changes or 'nothing to change'}); "
        f"{summary['missing_users']} users not in Keycloak, {summary['problems']} problems; "
        f"{result.timings.get('total', 0.0):.1f}s"
    )


@sync.command("run")
def sync_run() -> None:
    """Follow the directory's change feed and reconcile periodically, until stopped."""
    settings = _settings()
    # checks both servers at start: a failure is one line
    run_forever(settings, housekeeping=lambda: build_housekeeping(settings))


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
    settings = _settings()  # validated before any process starts
    serve_portal(
        lambda: build_portal(settings),
        settings=settings,
        # a wrong URL or password: one line, before the fork
        preflight=lambda: check_directory(settings, "portal"),
        host=host,
        port=port,
        workers=workers,
        threads=threads,
    )


@main.command()
@click.option(
    "--dry-run", is_flag=True, help="Say what the next scheduled run would do; change nothing."
)
def maintenance(dry_run: bool) -> None:
    """LC-2 expire pending requests, LC-3 lapse unrecertified roles, finish cut-short approvals.

    The sync worker runs the same passes by itself every IACS_SCHEDULE__INTERVAL_SECONDS,
    with the certification reminders.
    """
    settings = _settings()
    check_directory(settings, "portal")
    if dry_run:
        click.echo(str(build_scheduler(settings).plan()))
        return
    report = build_service(settings).run_maintenance()
    click.echo(str(report))
    if report.problems:  # every other entry was handled; say that some were not
        sys.exit(1)


@main.group()
def accounts() -> None:
    """Accounts unused for the configured period (issue 10, item 4): disable, re-enable."""


@accounts.command("disable-inactive")
@click.option("--dry-run", is_flag=True, help="Say who would be disabled, change nothing.")
def accounts_disable_inactive(dry_run: bool) -> None:
    """Disable in Keycloak every account with no sign-in for IACS_PORTAL__INACTIVITY_DAYS."""
    settings = _settings()
    check_directory(settings, "portal")
    try:
        report = build_service(settings).disable_inactive(dry_run=dry_run)
    except ServiceError as exc:
        click.echo(f"iacs accounts disable-inactive: {exc.message}", err=True)
        sys.exit(1)
    click.echo(str(report))
    if report.problems:
        sys.exit(1)


@accounts.command("enable")
@click.argument("holder")
@click.option("--as", "username", required=True, help="The help desk person re-enabling.")
def accounts_enable(holder: str, username: str) -> None:
    """Re-enable an account disabled for inactivity (the help desk's decision, INACT-1)."""
    settings = _settings()
    check_directory(settings, "portal")
    try:
        build_service(settings).reenable_account(username, holder)
    except ServiceError as exc:
        click.echo(f"iacs accounts enable: {exc.message}", err=True)
        sys.exit(1)
    click.echo(f"{holder}: enabled")


@main.command("import")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--as", "username", required=True, help="The help desk person importing.")
@click.option("--dry-run", is_flag=True, help="Check every line and say what would happen.")
def import_csv(csv_file: TextIO, username: str, dry_run: bool) -> None:
    """Bulk onboarding: organizations with their SOs (and user groups with UGAs) from a CSV.

    Every line goes through the portal's own service calls, as the help desk person named by
    --as (the policy checks that they are); the report says line by line what happened or why
    a line was refused. Exit 1 when a line was refused (the others were carried out).
    """
    settings = _settings()
    check_directory(settings, "portal")
    try:
        report = import_onboarding(
            build_service(settings), username, csv_file.read(), dry_run=dry_run
        )
    except ServiceError as exc:  # not the help desk, or not a CSV of the import's columns
        click.echo(f"iacs import: {exc.message}", err=True)
        sys.exit(1)
    click.echo(str(report))
    if report.refused:
        sys.exit(1)


@main.command("export")
@click.option("--as", "username", required=True, help="The help desk person exporting.")
@click.option("--out", type=click.File("w", encoding="utf-8", lazy=True), default="-")
def export_csv(username: str, out: TextIO) -> None:
    """Every organization's current roles with their certification dates, as CSV."""
    settings = _settings()
    check_directory(settings, "portal")
    try:
        text = export_roles(build_service(settings), username)
    except ServiceError as exc:
        click.echo(f"iacs export: {exc.message}", err=True)
        sys.exit(1)
    out.write(text)


@main.group()
def directory() -> None:
    """The OpenLDAP directory."""


@directory.command("serve")
@click.option("--data-dir", type=click.Path(path_type=Path), required=True)
@click.option("--port", type=int, default=389, show_default=True)
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")  # noqa: S104
@click.option(
    "--tls-name",
    "tls_names",
    multiple=True,
    help="A host name clients use for the directory (repeatable; the certificate names it).",
)
@click.option(
    "--publish-ca",
    type=click.Path(path_type=Path),
    default=None,
    help="Copy the CA certificate clients verify against here (e.g. a shared volume).",
)
@click.option(
    "--server-id",
    type=click.IntRange(1, 4095),
    default=None,
    help="Replicated: this provider's serverID (1 bootstraps the tree, others replicate it).",
)
@click.option(
    "--peer",
    "peers",
    multiple=True,
    help="Replicated: the ldaps:// URL of another provider (repeatable); needs --server-id, "
    "IACS_LDAP__REPLICATION_PASSWORD and a CA shared by the providers in DATA_DIR/tls.",
)
def directory_serve(
    data_dir: Path,
    port: int,
    host: str,
    tls_names: tuple[str, ...],
    publish_ca: Path | None,
    server_id: int | None,
    peers: tuple[str, ...],
) -> None:
    """Run slapd (ldaps) in the foreground with the production config (container entrypoint)."""

    settings = _settings(client=False)  # the server: it makes the CA its clients verify
    try:
        code = serve_foreground(
            data_dir.resolve(),
            port=port,
            settings=settings,
            host=host,
            tls_names=tls_names,
            publish_ca=publish_ca.resolve() if publish_ca else None,
            replication=replication_for(settings, server_id, peers),
        )
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
    # bench/ is not part of the product: only this command reaches it, and only when run.
    from bench.run import run_benchmarks

    _exit_cleanly_on_sigterm()
    run_benchmarks(size=size, out_dir=out)


def _exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so ``finally`` blocks stop the servers this command started."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def _context() -> CommandContext:
    """What this run of ``iacs`` knows for its error messages (set by ``main``)."""
    obj = click.get_current_context().find_root().obj
    return obj if isinstance(obj, CommandContext) else CommandContext()


def _settings(*, client: bool = True) -> Settings:
    """The settings from the environment, or exit 2 with the validation message."""
    try:
        settings = load_settings(client=client)
    except SettingsError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    _context().settings = settings  # where the servers are, for a failure's one line
    return settings


if __name__ == "__main__":  # pragma: no cover
    main()
