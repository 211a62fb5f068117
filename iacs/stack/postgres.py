"""Launch a private PostgreSQL for Keycloak's clustered nodes: loopback, passwords, a temp dir.

Two Keycloak nodes form one cluster only on a shared database (``dev-file`` H2 is one process's
file): the realm, the users and, in Keycloak 26, the persistent user sessions live there, and
JGroups' ``jdbc-ping`` discovery finds the other nodes through a table in it. This launcher runs
Debian's server (package ``postgresql``) the way the slapd and Redis launchers run theirs: a
fresh cluster (``initdb``) in its own data directory, bound to 127.0.0.1 on a free port, TCP
only (no Unix socket), SCRAM passwords for every login, and one database owned by one role for
Keycloak. Readiness is an authenticated query polled against a deadline; a failed start leaves
no server behind.

PostgreSQL refuses to run as root. When the tests run as root (containers, CI), the server runs
as the ``postgres`` system user that the Debian package creates, in a data directory of its own
under the system temp dir (the caller's run directory may sit under a 0700 directory that user
cannot enter); the log stays in the run directory. Compose's ``deploy/postgres`` image runs the
same server from the same package.
"""

from __future__ import annotations

import functools
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from iacs.stack.process import (
    ManagedProcess,
    MissingPrerequisite,
    ServerStartError,
    StopsOnExit,
    free_port,
    tail,
)

__all__ = ["PostgresInstance", "find_bindir", "start_postgres"]

INSTALL_HINT = "apt-get install postgresql"
HOST = "127.0.0.1"
SYSTEM_USER = "postgres"
"""The account the Debian package creates; the server runs as it when we are root."""
SUPERUSER = "iacs"
"""The cluster's superuser (only the launcher uses it: it creates the application's role)."""


def find_bindir() -> Path:
    """The directory of ``initdb``/``postgres``: on ``PATH``, else Debian's versioned bindir."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    if not candidates:
        raise MissingPrerequisite(f"PostgreSQL is not installed; install it with: {INSTALL_HINT}")
    return Path(candidates[-1]).parent


def _identifier(value: str) -> str:
    """A role or database name we create: plain lower-case only, so quoting is never needed."""
    if not value or not value.replace("_", "").isalnum() or not value.islower():
        raise ValueError(f"unsupported PostgreSQL name {value!r} (use [a-z0-9_])")
    return value


@dataclass
class PostgresInstance(StopsOnExit):
    """A running PostgreSQL started by ``start_postgres``; stop it with ``stop()`` or ``with``."""

    port: int
    database: str
    username: str
    """The application's role, owner of ``database`` (not a superuser)."""
    password: str = field(repr=False)
    run_dir: Path
    data_dir: Path
    process: ManagedProcess = field(repr=False)
    superuser_password: str = field(repr=False)
    bindir: Path = field(repr=False)
    owned_data_dir: bool = field(default=False, repr=False)

    host: str = HOST

    @property
    def jdbc_url(self) -> str:
        """``jdbc:postgresql://127.0.0.1:<port>/<database>`` (Keycloak's ``--db-url``)."""
        return f"jdbc:postgresql://{self.host}:{self.port}/{self.database}"

    @property
    def running(self) -> bool:
        return self.process.running

    def psql(self, sql: str, *, as_superuser: bool = False) -> str:
        """Run ``sql`` with ``psql`` (tests and tools): the unaligned, tuples-only output."""
        user, password = (
            (SUPERUSER, self.superuser_password) if as_superuser else (self.username, self.password)
        )
        return _psql(self.bindir, self.port, user, password, self.database, sql)

    def stop(self) -> None:
        """Stop the server (SIGINT: PostgreSQL's fast shutdown, which does not wait for clients
        such as Keycloak's pool to leave) and remove a data directory made outside run_dir."""
        self.process.stop()
        if self.owned_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def _psql(bindir: Path, port: int, user: str, password: str, database: str, sql: str) -> str:
    psql = bindir / "psql"
    program = str(psql) if psql.exists() else (shutil.which("psql") or "psql")
    result = subprocess.run(
        [
            program,
            "-h",
            HOST,
            "-p",
            str(port),
            "-U",
            user,
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-X",
            "-A",
            "-t",
            "-c",
            sql,
        ],
        capture_output=True,
        text=True,
        env={**_clean_env(), "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "3"},
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"psql failed (exit {result.returncode}): {result.stderr.strip()}")
    return result.stdout.strip()


def _clean_env() -> dict[str, str]:
    """Our environment without any PG* variable that would redirect a client or the server."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


def _run_as() -> str | None:
    """The user the server must run as: ``postgres`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError as exc:
        raise MissingPrerequisite(
            f"PostgreSQL refuses to run as root and there is no '{SYSTEM_USER}' user; "
            f"install it with: {INSTALL_HINT}"
        ) from exc
    return SYSTEM_USER


def _initdb(bindir: Path, data_dir: Path, superuser_password: str, user: str | None) -> None:
    password_file = data_dir.parent / f".{data_dir.name}.pw"
    descriptor = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(superuser_password + "\n")
    try:
        if user is not None:
            account = pwd.getpwnam(user)
            os.chown(password_file, account.pw_uid, account.pw_gid)
        result = subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                SUPERUSER,
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            env=_clean_env(),
            user=user,
            timeout=300,
            check=False,
        )
    finally:
        password_file.unlink(missing_ok=True)
    if result.returncode != 0:
        raise ServerStartError(
            f"initdb failed (exit {result.returncode}):\n{(result.stdout + result.stderr)[-3000:]}"
        )


def _ready(bindir: Path, port: int, password: str) -> bool:
    return _psql(bindir, port, SUPERUSER, password, "postgres", "SELECT 1") == "1"


def start_postgres(
    run_dir: Path,
    *,
    database: str = "keycloak",
    username: str = "keycloak",
    port: int | None = None,
    max_connections: int = 100,
    timeout: float = 60.0,
) -> PostgresInstance:
    """Start PostgreSQL on 127.0.0.1 with a fresh cluster and ``database`` owned by ``username``.

    Both passwords are fresh random values. Raises ``MissingPrerequisite`` when the server is not
    installed and ``ServerStartError`` (with the log tail) when it does not come up.
    """
    database, username = _identifier(database), _identifier(username)
    bindir = find_bindir()
    user = _run_as()
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    owned = user is not None
    if owned:
        data_parent = Path(tempfile.mkdtemp(prefix="iacs-postgres-"))
        account = pwd.getpwnam(SYSTEM_USER)
        os.chown(data_parent, account.pw_uid, account.pw_gid)
        data_dir = data_parent / "data"
    else:
        data_parent = run_dir
        data_dir = run_dir / "data"
    superuser_password = secrets.token_urlsafe(24)
    password = secrets.token_urlsafe(24)
    try:
        _initdb(bindir, data_dir, superuser_password, user)
    except BaseException:
        if owned:
            shutil.rmtree(data_parent, ignore_errors=True)
        raise
    chosen = port if port is not None else free_port(HOST)
    argv = [
        str(bindir / "postgres"),
        "-D",
        str(data_dir),
        "-c",
        f"listen_addresses={HOST}",
        "-c",
        f"port={chosen}",
        "-c",
        "unix_socket_directories=",
        "-c",
        f"max_connections={max_connections}",
        # A test database: crash safety of the last commits is not worth the fsyncs here.
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
    ]
    log_path = run_dir / "postgres.log"
    process = ManagedProcess(
        "postgres",
        argv,
        log_path,
        env=_clean_env(),
        cwd=data_parent,
        user=user,
        stop_signal=signal.SIGINT,  # fast shutdown; SIGTERM would wait for every client
    )
    process.start()
    try:
        process.wait_ready(functools.partial(_ready, bindir, chosen, superuser_password), timeout)
        _psql(
            bindir,
            chosen,
            SUPERUSER,
            superuser_password,
            "postgres",
            f"CREATE ROLE {username} LOGIN PASSWORD '{password}'",  # token_urlsafe: no quote
        )
        _psql(
            bindir,
            chosen,
            SUPERUSER,
            superuser_password,
            "postgres",
            f"CREATE DATABASE {database} OWNER {username} ENCODING 'UTF8'",
        )
    except BaseException as exc:
        process.stop()
        if owned:
            shutil.rmtree(data_parent, ignore_errors=True)
        if isinstance(exc, RuntimeError) and not isinstance(exc, ServerStartError):
            raise ServerStartError(f"{exc}; last lines of {log_path}:\n{tail(log_path)}") from exc
        raise
    instance = PostgresInstance(
        port=chosen,
        database=database,
        username=username,
        password=password,
        run_dir=run_dir,
        data_dir=data_parent if owned else data_dir,
        process=process,
        superuser_password=superuser_password,
        bindir=bindir,
        owned_data_dir=owned,
    )
    return instance
