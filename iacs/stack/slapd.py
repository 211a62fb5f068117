"""Launch a private slapd for the IACS tree: rendered config, checked, bootstrapped, TLS, free port.

The launcher only starts slapd: the configuration itself (modules, overlays, the ACL table with
the append-only audit rule, Argon2 hashing, the password policy, TLS) is the production one in
``directory_schema/slapd.conf.in``, rendered by ``directory_schema.config`` for a run directory.
Config format: one ``slapd.conf`` text run with ``slapd -f``; every start renders it again
(fresh random root password unless one is given, fresh port), checks it with ``slaptest`` and
fails with its output. An operator who wants ``cn=config`` converts the very same file with
``slaptest -f slapd.conf -F slapd.d``.

The data directory is bootstrapped with ``slapadd`` (``directory_schema/bootstrap.ldif``) only
when it is empty, so a dev stack keeps its data across restarts. slapd runs in the foreground
(``-d``) as a child in its own process group, and a failed start never leaves it running.

TLS: slapd listens on ``ldaps://`` only. Unless the run directory already holds them, a test CA
and a server certificate for the loopback names are made in ``<run_dir>/tls`` (or ``tls_dir``,
which a test session shares so Keycloak can trust one CA); clients verify against ``ca.pem``
(``SlapdInstance.ca_file``, ``IACS_LDAP__CA_FILE``).

``serve_foreground`` is the production entrypoint (``iacs directory serve``): the same start
with the root and service passwords from the settings, until SIGTERM.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import ldap3

from directory_schema import SERVICE_ACCOUNTS, render_bootstrap
from directory_schema.config import (
    ACCESSLOG_SUFFIX,
    ARGON2_OPTIONS,
    DirectoryPaths,
    Replication,
    password_policy_dn,
    render_slapd_conf,
    replicator_dn,
    sync_lease_dn,
)
from directory_schema.config import service_dn as _service_dn
from iacs.directory.connection import ldap_server
from iacs.settings import LdapSettings, Settings
from iacs.stack.process import (
    ManagedProcess,
    MissingPrerequisite,
    ServerStartError,
    StopsOnExit,
    free_port,
    tail,
)
from iacs.stack.tls import TlsFiles, ensure_server_tls

__all__ = [
    "ACCESSLOG_SUFFIX",
    "DEFAULT_BASE_DN",
    "SlapdInstance",
    "default_service_passwords",
    "generate_config",
    "hash_password",
    "replication_for",
    "serve_foreground",
    "service_dn",
    "start_providers",
    "start_slapd",
]

DEFAULT_BASE_DN = "dc=iacs,dc=example"
INSTALL_HINT = "apt-get install slapd ldap-utils"

SBIN_DIRS = (
    "/usr/sbin",
    "/usr/local/sbin",
    "/usr/local/libexec",
    "/usr/libexec",
    "/opt/bitnami/openldap/sbin",
)
"""Where slapd and its tools live besides $PATH (they are in sbin, often not on a user's PATH)."""
MODULE_DIRS = (
    "/usr/lib/ldap",
    "/usr/lib/openldap",
    "/usr/lib64/openldap",
    "/usr/local/libexec/openldap",
    "/opt/bitnami/openldap/lib/openldap",
)
"""Where the dynamically loaded backends and overlays may be (Debian first)."""
SYSTEM_SCHEMA_DIRS = (
    "/etc/ldap/schema",
    "/etc/openldap/schema",
    "/usr/local/etc/openldap/schema",
    "/opt/bitnami/openldap/etc/schema",
)
"""Where core.schema, cosine.schema and inetorgperson.schema may be."""


def service_dn(name: str, base_dn: str = DEFAULT_BASE_DN) -> str:
    """DN of a service bind account (``portal``, ``sync`` or ``keycloak``)."""
    return _service_dn(name, base_dn)


def default_service_passwords() -> dict[str, str]:
    """The dev secrets of ``iacs.settings.LdapSettings``: what a default-configured process uses."""
    defaults = LdapSettings()
    return {
        "portal": defaults.portal_bind_password.get_secret_value(),
        "sync": defaults.sync_bind_password.get_secret_value(),
        "keycloak": defaults.keycloak_bind_password.get_secret_value(),
    }


def _find_program(name: str) -> str:
    search = os.pathsep.join([os.environ.get("PATH", ""), *SBIN_DIRS])
    found = shutil.which(name, path=search)
    if found is None:
        raise MissingPrerequisite(f"{name} is not installed; install it with: {INSTALL_HINT}")
    return found


def _first_dir(candidates: tuple[str, ...], *markers: str) -> Path | None:
    for candidate in candidates:
        if any((Path(candidate) / marker).exists() for marker in markers):
            return Path(candidate)
    return None


def hash_password(password: str, timeout: float = 30.0) -> str:
    """An ``{ARGON2}`` ``userPassword`` value made by slapd's own tool and module.

    For the values slapd cannot hash itself: the root DN's ``rootpw`` and the bootstrap LDIF.
    The password goes to ``slappasswd`` on its standard input, never on a command line.
    """
    argv = [_find_program("slappasswd")]
    module_dir = _first_dir(MODULE_DIRS, "argon2.so", "argon2.la")
    if module_dir is not None:
        argv += ["-o", f"module-path={module_dir}"]
    argv += ["-o", f"module-load=argon2 {ARGON2_OPTIONS}", "-h", "{ARGON2}", "-T", "/dev/stdin"]
    try:
        result = subprocess.run(
            argv, input=password, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ServerStartError(f"slappasswd did not finish within {timeout:.0f}s") from exc
    value = result.stdout.strip()
    if result.returncode != 0 or not value.startswith("{ARGON2}"):
        raise ServerStartError(f"slappasswd could not hash with Argon2: {result.stderr.strip()}")
    return value


def generate_config(
    run_dir: Path,
    *,
    root_password_hash: str,
    tls: TlsFiles,
    base_dn: str = DEFAULT_BASE_DN,
    root_dn: str | None = None,
    module_dir: Path | None = None,
    system_schema_dir: Path | None = None,
    max_size_bytes: int = 1 << 30,
    durable: bool = True,
    extra_config: str = "",
    replication: Replication | None = None,
) -> str:
    """The production ``slapd.conf`` (``directory_schema/slapd.conf.in``) for ``run_dir``.

    ``module_dir`` and ``system_schema_dir`` default to the first known location present on
    this machine; see ``directory_schema.config.render_slapd_conf`` for the rest.
    """
    module_dir = module_dir or _first_dir(MODULE_DIRS, "back_mdb.la", "back_mdb.so")
    system_schema_dir = system_schema_dir or _first_dir(SYSTEM_SCHEMA_DIRS, "core.schema")
    if system_schema_dir is None:
        raise MissingPrerequisite(
            f"the OpenLDAP core schema files are not installed; install them with: {INSTALL_HINT}"
        )
    paths = DirectoryPaths(
        run_dir=run_dir,
        system_schema_dir=system_schema_dir,
        module_dir=module_dir,
        tls_ca_file=tls.ca_file,
        tls_cert_file=tls.cert_file,
        tls_key_file=tls.key_file,
    )
    return render_slapd_conf(
        paths,
        base_dn=base_dn,
        root_dn=root_dn,
        root_password_hash=root_password_hash,
        max_size_bytes=max_size_bytes,
        durable=durable,
        extra_config=extra_config,
        replication=replication,
    )


@dataclass
class SlapdInstance(StopsOnExit):
    """A running slapd started by ``start_slapd``; stop it with ``stop()`` or a ``with`` block."""

    url: str
    port: int
    base_dn: str
    root_dn: str
    root_password: str = field(repr=False)
    run_dir: Path
    service_passwords: dict[str, str] = field(repr=False)
    process: ManagedProcess = field(repr=False)
    tls: TlsFiles

    @property
    def config_path(self) -> Path:
        return self.run_dir / "slapd.conf"

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    @property
    def ca_file(self) -> Path:
        """The CA that signed this slapd's certificate (what clients verify against)."""
        return self.tls.ca_file

    @property
    def running(self) -> bool:
        return self.process.running

    def service_dn(self, name: str) -> str:
        """DN of the ``portal``, ``sync`` or ``keycloak`` service account of this instance."""
        return service_dn(name, self.base_dn)

    def server(self, timeout: float = 5.0) -> ldap3.Server:
        """An ldap3 ``Server`` for this instance that verifies its certificate."""
        return ldap_server(self.url, ca_file=self.ca_file, timeout=timeout)

    def connect(self, bind_dn: str | None = None, password: str | None = None) -> ldap3.Connection:
        """A bound raw ldap3 connection, as the root DN unless ``bind_dn`` is given."""
        if bind_dn is None:
            bind_dn, password = self.root_dn, self.root_password
        return ldap3.Connection(
            self.server(),
            bind_dn,
            password,
            auto_bind=True,
            receive_timeout=10,
            check_names=False,
        )

    def settings_env(self) -> dict[str, str]:
        """The ``IACS_LDAP__*`` environment variables that point a process at this instance."""
        env = {
            "IACS_LDAP__URL": self.url,
            "IACS_LDAP__CA_FILE": str(self.ca_file),
            "IACS_LDAP__BASE_DN": self.base_dn,
            "IACS_LDAP__ACCESSLOG_DN": ACCESSLOG_SUFFIX,
        }
        for name in SERVICE_ACCOUNTS:
            env[f"IACS_LDAP__{name.upper()}_BIND_DN"] = self.service_dn(name)
            env[f"IACS_LDAP__{name.upper()}_BIND_PASSWORD"] = self.service_passwords[name]
        return env

    def ldap_settings(self, **overrides: object) -> LdapSettings:
        """``LdapSettings`` for this instance (what ``settings_env`` would load)."""
        values: dict[str, object] = {
            "url": self.url,
            "ca_file": self.ca_file,
            "base_dn": self.base_dn,
            "accesslog_dn": ACCESSLOG_SUFFIX,
        }
        for name in SERVICE_ACCOUNTS:
            values[f"{name}_bind_dn"] = self.service_dn(name)
            values[f"{name}_bind_password"] = self.service_passwords[name]
        values.update(overrides)
        return LdapSettings(**values)

    def stop(self) -> None:
        """Stop slapd (SIGTERM, then SIGKILL) and wait for it; safe to call twice."""
        self.process.stop()


def _run_tool(argv: list[str], what: str, timeout: float) -> None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ServerStartError(f"{what} did not finish within {timeout:.0f}s") from exc
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise ServerStartError(f"{what} failed (exit {result.returncode}):\n{output}")


def _bind(
    server: ldap3.Server, dn: str, password: str, timeout: int = 10
) -> ldap3.Connection | None:
    """A bound connection, or None when the credentials are refused."""
    connection = ldap3.Connection(
        server, dn, password, receive_timeout=timeout, check_names=False, raise_exceptions=False
    )
    if connection.bind():
        return connection
    connection.unbind()
    return None


def _probe_new_server(
    url: str, ca_file: Path, base_dn: str, root_dn: str, root_password: str
) -> bool:
    """One probe, new ``Server``: ldap3 marks an address that refused once unusable."""
    return _ready_probe(
        ldap_server(url, ca_file=ca_file, timeout=1), base_dn, root_dn, root_password
    )


def _ready_probe(server: ldap3.Server, base_dn: str, root_dn: str, root_password: str) -> bool:
    # A short receive timeout: something else on the port may accept and never answer TLS.
    connection = _bind(server, root_dn, root_password, timeout=1)
    if connection is None:
        return False
    try:
        return bool(connection.search(base_dn, "(objectClass=*)", ldap3.BASE, attributes=["1.1"]))
    finally:
        connection.unbind()


def _finish_bootstrap(
    server: ldap3.Server, base_dn: str, root_dn: str, root_password: str, passwords: dict[str, str]
) -> None:
    """Make the service accounts' passwords the given ones and the password policy present.

    A password that already binds is left alone (no rewrite, no change-log entry); another is
    set with the password modify operation as the root DN, so slapd hashes it with Argon2.
    The policy and lease entries are added to a directory bootstrapped before they existed.
    """
    for name, password in passwords.items():
        dn = service_dn(name, base_dn)
        existing = _bind(server, dn, password)
        if existing is not None:
            existing.unbind()
            continue
        connection = _bind(server, root_dn, root_password)
        if connection is None:
            raise ServerStartError(f"cannot bind as {root_dn}")
        try:
            connection.extend.standard.modify_password(dn, new_password=password)
            if connection.result["result"] != 0:
                raise ServerStartError(f"cannot set the password of {dn}: {connection.result}")
        finally:
            connection.unbind()
    connection = _bind(server, root_dn, root_password)
    if connection is None:
        raise ServerStartError(f"cannot bind as {root_dn}")
    try:
        for dn in (password_policy_dn(base_dn), sync_lease_dn(base_dn)):
            if not connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["1.1"]):
                connection.add(dn, attributes=_bootstrap_entry(base_dn, dn))
                if connection.result["result"] not in (0, 68):
                    raise ServerStartError(f"cannot add {dn}: {connection.result}")
    finally:
        connection.unbind()


def _ensure_replicator(
    server: ldap3.Server, base_dn: str, root_dn: str, root_password: str, password: str
) -> None:
    """The replication account with ``password`` (first provider only; it replicates)."""
    dn = replicator_dn(base_dn)
    existing = _bind(server, dn, password)
    if existing is not None:
        existing.unbind()
        return
    connection = _bind(server, root_dn, root_password)
    if connection is None:
        raise ServerStartError(f"cannot bind as {root_dn}")
    try:
        connection.add(
            dn,
            attributes={
                "objectClass": ["applicationProcess", "simpleSecurityObject"],
                "cn": "replicator",
                "description": "Multi-provider replication: reads the whole tree, writes nothing",
                "userPassword": hash_password(password),
            },
        )
        if connection.result["result"] == 68:
            connection.modify(
                dn, {"userPassword": [(ldap3.MODIFY_REPLACE, [hash_password(password)])]}
            )
        if connection.result["result"] != 0:
            raise ServerStartError(f"cannot set up {dn}: {connection.result}")
    finally:
        connection.unbind()


def _replica_probe(url: str, ca_file: Path, base_dn: str, root_dn: str, root_password: str) -> bool:
    """A provider that started empty is ready once the first one's bootstrap has replicated:
    the service accounts, the replication account and the password policy are all there."""
    server = ldap_server(url, ca_file=ca_file, timeout=1)
    connection = _bind(server, root_dn, root_password, timeout=1)
    if connection is None:
        return False
    try:
        wanted = [service_dn(name, base_dn) for name in SERVICE_ACCOUNTS]
        wanted += [replicator_dn(base_dn), password_policy_dn(base_dn)]
        return all(
            connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["1.1"])
            for dn in wanted
        )
    finally:
        connection.unbind()


def _bootstrap_entry(base_dn: str, dn: str) -> dict[str, list[str]]:
    """The attributes of one entry of the bootstrap LDIF (one copy of its content)."""
    placeholder = {name: "{x}" for name in SERVICE_ACCOUNTS}
    for block in render_bootstrap(base_dn, placeholder).split("\n\n"):
        lines = [line for line in block.splitlines() if line and not line.startswith("#")]
        if lines and lines[0].lower() == f"dn: {dn}".lower():
            entry: dict[str, list[str]] = {}
            for line in lines[1:]:
                key, _, value = line.partition(": ")
                entry.setdefault(key, []).append(value)
            return entry
    raise ServerStartError(f"{dn} is not in the bootstrap LDIF")


def start_slapd(
    run_dir: Path,
    *,
    base_dn: str = DEFAULT_BASE_DN,
    port: int | None = None,
    service_passwords: dict[str, str] | None = None,
    timeout: float = 30.0,
    log_level: str = "stats",
    durable: bool = True,
    extra_config: str = "",
    root_password: str | None = None,
    host: str = "127.0.0.1",
    tls_dir: Path | None = None,
    tls_names: Iterable[str] = (),
    replication: Replication | None = None,
) -> SlapdInstance:
    """Start slapd for ``base_dn`` on ``ldaps://host`` (a free port unless ``port`` is given).

    Renders ``run_dir/slapd.conf``, checks it with ``slaptest``, loads the bootstrap tree with
    ``slapadd`` when the data directory is new, starts slapd and waits until a root bind and a
    base search are answered over verified TLS. The service accounts' passwords are made
    ``service_passwords`` (default: the dev secrets of ``LdapSettings``) on every start, so
    ``settings_env()`` holds. The root DN's password is ``root_password`` or, by default, a
    fresh random one per start. The TLS files are in ``tls_dir`` (default ``run_dir/tls``),
    made if missing, for the loopback names plus ``tls_names``.

    With ``replication`` this slapd is one provider of a multi-provider set (``port`` must be
    given: the peers' configurations name it). Only ``server_id`` 1 bootstraps an empty data
    directory and sets the passwords; another provider starts empty, replicates everything
    from its peers, and is ready once the bootstrap has arrived (no second bootstrap, whose
    entries would conflict with the first one's).

    Raises ``MissingPrerequisite`` when slapd is not installed and ``ServerStartError`` (with
    slaptest's output or the log tail) when it does not come up; then no slapd is left behind.
    """
    if replication is not None and port is None:
        raise ValueError("a replicated provider needs its port (its peers' syncrepl names it)")
    first_provider = replication is None or replication.server_id == 1
    slapd = _find_program("slapd")
    slaptest = _find_program("slaptest")
    slapadd = _find_program("slapadd")
    passwords = {**default_service_passwords(), **(service_passwords or {})}
    unknown = set(passwords) - set(SERVICE_ACCOUNTS)
    if unknown:
        raise ValueError(f"unknown service accounts: {', '.join(sorted(unknown))}")

    run_dir = Path(run_dir).resolve()
    for sub in ("data/main", "data/accesslog"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(run_dir, 0o700)
    needs_bootstrap = first_provider and not (run_dir / "data" / "main" / "data.mdb").exists()
    tls = ensure_server_tls(Path(tls_dir or run_dir / "tls").resolve(), tls_names)

    root_dn = f"cn=admin,{base_dn}"
    root_password = root_password or secrets.token_urlsafe(24)
    config_path = run_dir / "slapd.conf"
    config_path.write_text(
        generate_config(
            run_dir,
            root_password_hash=hash_password(root_password),
            tls=tls,
            base_dn=base_dn,
            root_dn=root_dn,
            durable=durable,
            extra_config=extra_config,
            replication=replication,
        )
    )
    config_path.chmod(0o600)
    # -u: check the configuration without opening the databases, which may not exist yet.
    _run_tool([slaptest, "-u", "-f", str(config_path)], f"slaptest of {config_path}", timeout)

    if needs_bootstrap:
        ldif_path = run_dir / "bootstrap.ldif"
        hashes = {name: hash_password(password) for name, password in passwords.items()}
        ldif_path.write_text(render_bootstrap(base_dn, hashes), encoding="utf-8")
        ldif_path.chmod(0o600)
        try:
            _run_tool(
                [slapadd, "-q", "-f", str(config_path), "-b", base_dn, "-l", str(ldif_path)],
                "slapadd of the bootstrap tree",
                timeout,
            )
        except ServerStartError:
            for leftover in (run_dir / "data" / "main").iterdir():
                leftover.unlink()  # a half-loaded database must not pass for a bootstrapped one
            raise
        finally:
            ldif_path.unlink(missing_ok=True)

    wildcard = host in ("0.0.0.0", "::", "")  # noqa: S104 - the container's listener
    attempts = 1 if port is not None else 3
    for attempt in range(1, attempts + 1):
        chosen = port if port is not None else free_port()
        # The clients of this process reach a wildcard listener through the loopback address.
        url = f"ldaps://{'127.0.0.1' if wildcard else host}:{chosen}"
        listen = f"ldaps://{'' if wildcard else host}:{chosen}/"
        log_path = run_dir / "slapd.log"
        process = ManagedProcess(
            name="slapd",
            argv=[slapd, "-d", log_level, "-h", listen, "-f", str(config_path)],
            log_path=log_path,
            cwd=run_dir,
        )
        process.start()
        try:
            process.wait_ready(
                # A new Server per probe: ldap3 marks an address that refused once unusable.
                functools.partial(
                    _probe_new_server if first_provider else _replica_probe,
                    url,
                    tls.ca_file,
                    base_dn,
                    root_dn,
                    root_password,
                ),
                timeout,
            )
        except ServerStartError:
            # Another process may have taken the free port between free_port() and bind().
            if attempt < attempts and "bind(" in tail(log_path, 15):
                continue
            raise
        except BaseException:
            process.stop()
            raise
        try:
            server = ldap_server(url, ca_file=tls.ca_file, timeout=5)
            if first_provider:
                _finish_bootstrap(server, base_dn, root_dn, root_password, passwords)
            if replication is not None and first_provider:
                _ensure_replicator(server, base_dn, root_dn, root_password, replication.password)
        except BaseException:
            process.stop()
            raise
        return SlapdInstance(
            url=url,
            port=chosen,
            base_dn=base_dn,
            root_dn=root_dn,
            root_password=root_password,
            run_dir=run_dir,
            service_passwords=passwords,
            process=process,
            tls=tls,
        )
    raise AssertionError("unreachable")  # pragma: no cover


def start_providers(
    run_dirs: Iterable[Path],
    *,
    tls_dir: Path,
    replication_password: str | None = None,
    **options: object,
) -> list[SlapdInstance]:
    """Start a multi-provider set on this machine, one provider per run directory.

    Each gets a free port and the others' URLs as its peers; they share ``tls_dir``'s CA (the
    providers verify each other with it) and one root password. The first provider bootstraps
    the tree, the others replicate it. ``options`` go to every ``start_slapd``. On a failure
    the providers already started are stopped.
    """
    dirs = [Path(run_dir) for run_dir in run_dirs]
    if len(dirs) < 2:
        raise ValueError("a multi-provider set needs at least two providers")
    password = replication_password or secrets.token_urlsafe(24)
    root_password = str(options.pop("root_password", None) or secrets.token_urlsafe(24))
    ports = [free_port() for _ in dirs]
    urls = [f"ldaps://127.0.0.1:{port}" for port in ports]
    started: list[SlapdInstance] = []
    try:
        for index, run_dir in enumerate(dirs):
            replication = Replication(
                server_id=index + 1,
                peers=tuple(url for other, url in enumerate(urls) if other != index),
                password=password,
            )
            started.append(
                start_slapd(
                    run_dir,
                    port=ports[index],
                    tls_dir=tls_dir,
                    root_password=root_password,
                    replication=replication,
                    **options,  # type: ignore[arg-type]
                )
            )
    except BaseException:
        for instance in started:
            instance.stop()
        raise
    return started


def replication_for(
    settings: Settings, server_id: int | None, peers: Iterable[str]
) -> Replication | None:
    """The ``Replication`` of ``iacs directory serve --server-id N --peer URL...``, or None.

    The replication account's password is ``IACS_LDAP__REPLICATION_PASSWORD`` (the same on
    every provider); a half-given replication (an id without peers, or no password) is an
    error rather than a silently single directory.
    """
    peers = tuple(peers)
    if server_id is None and not peers:
        return None
    password = settings.ldap.replication_password
    if server_id is None or not peers or password is None or not password.get_secret_value():
        raise ServerStartError(
            "a replicated provider needs --server-id, at least one --peer and "
            "IACS_LDAP__REPLICATION_PASSWORD"
        )
    try:
        return Replication(server_id, peers, password.get_secret_value())
    except ValueError as exc:
        raise ServerStartError(f"invalid replication settings: {exc}") from exc


def serve_foreground(
    data_dir: Path,
    *,
    port: int,
    settings: Settings,
    host: str = "0.0.0.0",  # noqa: S104 - the directory container's listener
    log_level: str = "stats",
    tls_names: Iterable[str] = (),
    publish_ca: Path | None = None,
    replication: Replication | None = None,
) -> int:
    """Run the production directory in the foreground until SIGTERM or SIGINT; the exit code.

    What ``iacs directory serve`` (the container's entrypoint) runs: the same generated and
    checked configuration as every other start, with the root password and the service
    accounts' passwords taken from ``settings`` (no defaults here: a missing root password is
    an error), an empty ``data_dir`` bootstrapped, and the data kept across restarts. On a
    signal slapd is stopped (it flushes and closes its databases) and 0 is returned; if slapd
    dies on its own its exit code is returned so the container restarts.

    TLS files live in ``data_dir/tls``: a CA and a certificate for the loopback names, this
    host's name and ``tls_names`` are made there unless present (an operator with a PKI puts
    ``ca.pem``, ``server.pem`` and ``server.key`` there instead); clients need ``ca.pem``,
    which ``publish_ca`` copies to a path the clients can read (a volume without the keys).

    ``replication`` (``replication_for``) makes it one provider of a multi-provider set; the
    providers verify each other, so they need one CA: put the same ``ca.pem`` and ``ca.key``
    in each provider's ``data_dir/tls`` before the first start (each issues its own server
    certificate from it).
    """
    ldap = settings.ldap
    if ldap.root_password is None or not ldap.root_password.get_secret_value():
        raise ServerStartError("IACS_LDAP__ROOT_PASSWORD must be set to serve the directory")
    passwords: dict[str, str] = {}
    for name in SERVICE_ACCOUNTS:
        configured = getattr(ldap, f"{name}_bind_dn")
        if configured.lower() != service_dn(name, ldap.base_dn).lower():
            raise ServerStartError(
                f"IACS_LDAP__{name.upper()}_BIND_DN is {configured!r}, but the directory for "
                f"{ldap.base_dn!r} serves {service_dn(name, ldap.base_dn)!r}"
            )
        passwords[name] = getattr(ldap, f"{name}_bind_password").get_secret_value()

    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        instance = start_slapd(
            data_dir,
            base_dn=ldap.base_dn,
            port=port,
            service_passwords=passwords,
            root_password=ldap.root_password.get_secret_value(),
            host=host,
            log_level=log_level,
            durable=True,
            tls_names=[socket.gethostname(), *tls_names],
            replication=replication,
        )
        with instance:
            if publish_ca is not None:
                publish_ca.parent.mkdir(parents=True, exist_ok=True)
                staged = publish_ca.with_name(publish_ca.name + ".tmp")
                shutil.copyfile(instance.ca_file, staged)
                staged.chmod(0o644)
                staged.replace(publish_ca)  # clients never see a half-written CA file
            print(
                f"directory {ldap.base_dn} serving ldaps on {host}:{port}; "
                f"CA: {instance.ca_file}; log: {instance.log_path}",
                flush=True,
            )
            while not stop.is_set() and instance.running:
                stop.wait(0.5)
            if stop.is_set():
                return 0
            process = instance.process.process
            return process.returncode if process is not None and process.returncode else 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
