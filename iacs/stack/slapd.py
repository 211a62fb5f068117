"""Launch a private slapd for the IACS tree: generated config, checked, bootstrapped, free port.

Config format: we generate one ``slapd.conf`` text and run ``slapd -f`` on it. The dev stack and
the tests regenerate the configuration on every start (fresh random root password, fresh port),
so the run-time editability of ``cn=config`` buys nothing, while a single text file is easy to
read in review, to diff, and to mount into a container (``generate_config`` is public for that
entrypoint). ``slapd.conf`` is still fully supported by slapd 2.5/2.6; an operator who wants
``cn=config`` converts the very same file with ``slaptest -f slapd.conf -F slapd.d``.

Every start runs ``slaptest`` on the generated file first and fails with its output; the data
directory is bootstrapped with ``slapadd`` (``directory_schema/bootstrap.ldif``) only when it is
empty, so a dev stack keeps its data across restarts. slapd runs in the foreground (``-d``) as
a child in its own process group, and a failed start never leaves it running.

Access control (least privilege, one table in ``_main_acl``): the portal writes the portal-owned
subtrees and may only *add* (never modify or delete) audit records; the sync account reads the
tree and ``cn=accesslog`` and writes nothing; Keycloak writes ``ou=people`` and their passwords
and reads nothing else; ``userPassword`` is readable by nobody; anonymous may only bind.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import ldap3

from directory_schema import SERVICE_ACCOUNTS, render_bootstrap, schema_path
from iacs.settings import LdapSettings, Settings
from iacs.stack.process import (
    ManagedProcess,
    MissingPrerequisite,
    ServerStartError,
    free_port,
    tail,
)

__all__ = [
    "ACCESSLOG_SUFFIX",
    "DEFAULT_BASE_DN",
    "SlapdInstance",
    "default_service_passwords",
    "generate_config",
    "serve_foreground",
    "service_dn",
    "ssha",
    "start_slapd",
]

DEFAULT_BASE_DN = "dc=iacs,dc=example"
ACCESSLOG_SUFFIX = "cn=accesslog"
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

MODULES = ("back_mdb", "memberof", "refint", "accesslog")
SYSTEM_SCHEMAS = ("core.schema", "cosine.schema", "inetorgperson.schema")

INDEXES = (
    "objectClass eq",
    "entryUUID eq",
    "entryCSN eq",
    "uid eq,sub",
    "cn eq,sub",
    "displayName sub",
    "mail eq,sub",
    "member eq",
    "memberOf eq",
    "iacsIdentifier eq,sub",
    "iacsRequestStatus eq",
    "iacsRequestKind eq",
    "iacsRequester eq",
    "iacsOrganizationId eq",
    "iacsGroupId eq",
    "iacsSurrogateGroupId eq",
    "iacsAssociatedOrganization eq",
    "iacsActor eq",
    "iacsAt eq",
    "iacsExpiresAt eq",
)
ACCESSLOG_INDEXES = ("objectClass eq", "entryCSN eq", "reqStart eq", "reqDN eq")


def ssha(password: str) -> str:
    """A salted SHA-1 ``userPassword`` value, the scheme slapd is configured to write."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode("utf-8") + salt).digest()  # noqa: S324 - {SSHA} is slapd's scheme
    return "{SSHA}" + base64.b64encode(digest + salt).decode("ascii")


def service_dn(name: str, base_dn: str = DEFAULT_BASE_DN) -> str:
    """DN of a service bind account (``portal``, ``sync`` or ``keycloak``)."""
    if name not in SERVICE_ACCOUNTS:
        raise ValueError(f"unknown service account {name!r}")
    return f"cn={name},ou=services,{base_dn}"


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


def _quote(value: str | Path) -> str:
    text = str(value)
    if '"' in text or "\n" in text:
        raise ValueError(f"unsupported character in config value {text!r}")
    return f'"{text}"'


def _main_acl(base_dn: str) -> str:
    """The ACL of the IACS tree: first matching ``access to`` wins, then first matching ``by``."""
    portal = _quote(service_dn("portal", base_dn))
    sync = _quote(service_dn("sync", base_dn))
    keycloak = _quote(service_dn("keycloak", base_dn))
    people = f"ou=people,{base_dn}"
    rules = [
        # Passwords are never readable. Keycloak sets people's passwords (password modify
        # extended operation), a person or service changes their own, anonymous binds.
        f"access to dn.subtree={_quote(people)} attrs=userPassword\n"
        f"  by dn.exact={keycloak} =w\n  by self =xw\n  by anonymous auth\n  by * none",
        "access to attrs=userPassword\n  by self =xw\n  by anonymous auth\n  by * none",
        # Service accounts: only themselves and the sync account (which reads everything).
        f"access to dn.subtree={_quote('ou=services,' + base_dn)}\n"
        f"  by self read\n  by dn.exact={sync} read\n  by * none",
        # People: written by Keycloak (federation, registration), read by the portal and sync.
        f"access to dn.base={_quote(people)} attrs=children\n"
        f"  by dn.exact={keycloak} write\n  by * none",
        f"access to dn.base={_quote(people)}\n"
        f"  by dn.exact={keycloak} read\n  by dn.exact={portal} read\n"
        f"  by dn.exact={sync} read\n  by * none",
        f"access to dn.children={_quote(people)}\n"
        f"  by dn.exact={keycloak} write\n  by dn.exact={portal} read\n"
        f"  by dn.exact={sync} read\n  by self read\n  by * none",
    ]
    for ou in ("organizations", "surrogate-groups", "practitioners", "requests", "system"):
        subtree = _quote(f"ou={ou},{base_dn}")
        rules += [
            f"access to dn.base={subtree} attrs=children\n"
            f"  by dn.exact={portal} write\n  by * none",
            f"access to dn.base={subtree}\n"
            f"  by dn.exact={portal} read\n  by dn.exact={sync} read\n  by * none",
            f"access to dn.children={subtree}\n"
            f"  by dn.exact={portal} write\n  by dn.exact={sync} read\n  by * none",
        ]
    audit = _quote(f"ou=audit,{base_dn}")
    rules += [
        # AUD-1 append-only: the portal may add children (=a) but never delete them (no z);
        # on a record it has add on the entry (to create it) and only read on its attributes,
        # so every modify, delete and rename is refused. add_content_acl stays off, so an add
        # is checked on "entry" and the parent's "children" only.
        f"access to dn.base={audit} attrs=children\n  by dn.exact={portal} =a\n  by * none",
        f"access to dn.base={audit}\n"
        f"  by dn.exact={portal} read\n  by dn.exact={sync} read\n  by * none",
        f"access to dn.children={audit} attrs=entry\n"
        f"  by dn.exact={portal} =arscd\n  by dn.exact={sync} read\n  by * none",
        f"access to dn.children={audit}\n"
        f"  by dn.exact={portal} read\n  by dn.exact={sync} read\n  by * none",
        f"access to dn.base={_quote(base_dn)}\n"
        f"  by dn.exact={portal} read\n  by dn.exact={sync} read\n  by * none",
        f"access to *\n  by dn.exact={sync} read\n  by * none",
    ]
    return "\n".join(rules)


def _accesslog_acl(base_dn: str) -> str:
    """The change feed is read by the sync account only, without any password value in it."""
    sync = _quote(service_dn("sync", base_dn))
    # A reqMod value is "<attribute>:<op> <value>"; match the attribute name in any case.
    password_mod = '"^' + "".join(f"[{c.upper()}{c}]" for c in "userpassword") + '[:;]"'
    return "\n".join(
        [
            f"access to attrs=reqMod val.regex={password_mod}\n  by * none",
            f"access to attrs=reqOld val.regex={password_mod}\n  by * none",
            f"access to *\n  by dn.exact={sync} read\n  by * none",
        ]
    )


def _limits(*dns: str) -> str:
    return "\n".join(f"limits dn.exact={_quote(dn)} size=unlimited time=unlimited" for dn in dns)


def generate_config(
    run_dir: Path,
    *,
    root_password_hash: str,
    base_dn: str = DEFAULT_BASE_DN,
    root_dn: str | None = None,
    module_dir: Path | None = None,
    system_schema_dir: Path | None = None,
    max_size_bytes: int = 1 << 30,
    durable: bool = True,
    extra_config: str = "",
) -> str:
    """The ``slapd.conf`` text of an IACS directory whose files live in ``run_dir``.

    ``run_dir`` holds the pid and args files and ``data/main`` and ``data/accesslog`` (the two
    mdb databases; these directories must exist before slaptest or slapd reads the file).
    ``module_dir`` and ``system_schema_dir`` default to the first known location present on
    this machine. ``durable=False`` sets ``dbnosync`` (tests and benchmarks only).
    ``extra_config`` is appended to the main database section.
    """
    root_dn = root_dn or f"cn=admin,{base_dn}"
    module_dir = module_dir or _first_dir(MODULE_DIRS, "back_mdb.la", "back_mdb.so")
    system_schema_dir = system_schema_dir or _first_dir(SYSTEM_SCHEMA_DIRS, "core.schema")
    if system_schema_dir is None:
        raise MissingPrerequisite(
            f"the OpenLDAP core schema files are not installed; install them with: {INSTALL_HINT}"
        )
    data = run_dir / "data"
    portal, sync, keycloak = (service_dn(name, base_dn) for name in SERVICE_ACCOUNTS)
    lines = ["# Generated by iacs.stack.slapd.generate_config; do not edit by hand.", ""]
    lines += [f"include {_quote(system_schema_dir / name)}" for name in SYSTEM_SCHEMAS]
    lines += [f"include {_quote(schema_path())}", ""]
    lines += [
        f"pidfile {_quote(run_dir / 'slapd.pid')}",
        f"argsfile {_quote(run_dir / 'slapd.args')}",
    ]
    if module_dir is not None:
        lines.append(f"modulepath {_quote(module_dir)}")
        lines += [
            f"moduleload {name}"
            for name in MODULES
            if (module_dir / f"{name}.la").exists() or (module_dir / f"{name}.so").exists()
        ]
    lines += [
        "password-hash {SSHA}",
        "sizelimit 500",
        "",
        "# rootDSE and subschema: authenticated clients only; anonymous may only bind.",
        'access to dn.base=""\n  by users read\n  by * none',
        'access to dn.base="cn=Subschema"\n  by users read\n  by * none',
        "",
        "# The change feed (slapo-accesslog), followed by the sync worker.",
        "database mdb",
        f"suffix {_quote(ACCESSLOG_SUFFIX)}",
        f"rootdn {_quote(ACCESSLOG_SUFFIX)}",
        f"directory {_quote(data / 'accesslog')}",
        f"maxsize {max_size_bytes}",
        *(["dbnosync"] if not durable else []),
        *(f"index {index}" for index in ACCESSLOG_INDEXES),
        _limits(sync),
        _accesslog_acl(base_dn),
        "",
        "# The IACS tree.",
        "database mdb",
        f"suffix {_quote(base_dn)}",
        f"rootdn {_quote(root_dn)}",
        f"rootpw {root_password_hash}",
        f"directory {_quote(data / 'main')}",
        f"maxsize {max_size_bytes}",
        *(["dbnosync"] if not durable else []),
        *(f"index {index}" for index in INDEXES),
        _limits(portal, sync, keycloak),
        _main_acl(base_dn),
        "",
        "overlay memberof",
        "memberof-group-oc iacsRoleGroup",
        "memberof-member-ad member",
        "memberof-memberof-ad memberOf",
        "memberof-dangling error",
        "memberof-refint TRUE",
        "",
        "overlay refint",
        "refint_attributes member iacsAssociatedOrganization",
        "",
        "overlay accesslog",
        f"logdb {_quote(ACCESSLOG_SUFFIX)}",
        "logops writes",
        "logsuccess TRUE",
        "logpurge 07+00:00 01+00:00",
    ]
    if extra_config:
        lines += ["", extra_config]
    return "\n".join(lines) + "\n"


@dataclass
class SlapdInstance:
    """A running slapd started by ``start_slapd``; stop it with ``stop()`` or a ``with`` block."""

    url: str
    port: int
    base_dn: str
    root_dn: str
    root_password: str = field(repr=False)
    run_dir: Path
    service_passwords: dict[str, str] = field(repr=False)
    process: ManagedProcess = field(repr=False)

    @property
    def config_path(self) -> Path:
        return self.run_dir / "slapd.conf"

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    @property
    def running(self) -> bool:
        return self.process.running

    def service_dn(self, name: str) -> str:
        """DN of the ``portal``, ``sync`` or ``keycloak`` service account of this instance."""
        return service_dn(name, self.base_dn)

    def settings_env(self) -> dict[str, str]:
        """The ``IACS_LDAP__*`` environment variables that point a process at this instance."""
        env = {
            "IACS_LDAP__URL": self.url,
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
            "base_dn": self.base_dn,
            "accesslog_dn": ACCESSLOG_SUFFIX,
        }
        for name in SERVICE_ACCOUNTS:
            values[f"{name}_bind_dn"] = self.service_dn(name)
            values[f"{name}_bind_password"] = self.service_passwords[name]
        values.update(overrides)
        return LdapSettings(**values)  # type: ignore[arg-type]

    def stop(self) -> None:
        """Stop slapd (SIGTERM, then SIGKILL) and wait for it; safe to call twice."""
        self.process.stop()

    def __enter__(self) -> SlapdInstance:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _run_tool(argv: list[str], what: str, timeout: float) -> None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ServerStartError(f"{what} did not finish within {timeout:.0f}s") from exc
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise ServerStartError(f"{what} failed (exit {result.returncode}):\n{output}")


def _ready_probe(url: str, base_dn: str, root_dn: str, root_password: str) -> bool:
    server = ldap3.Server(url, get_info=ldap3.NONE, connect_timeout=1)
    connection = ldap3.Connection(
        server, root_dn, root_password, receive_timeout=1, check_names=False, raise_exceptions=False
    )
    try:
        if not connection.bind():
            return False
        return bool(connection.search(base_dn, "(objectClass=*)", ldap3.BASE, attributes=["1.1"]))
    finally:
        connection.unbind()


def _apply_service_passwords(
    url: str, base_dn: str, root_dn: str, root_password: str, passwords: dict[str, str]
) -> None:
    """Make the service accounts' passwords the given ones (also on a restart with new secrets)."""
    server = ldap3.Server(url, get_info=ldap3.NONE, connect_timeout=5)
    connection = ldap3.Connection(
        server, root_dn, root_password, receive_timeout=10, check_names=False
    )
    try:
        if not connection.bind():
            raise ServerStartError(f"cannot bind as {root_dn}: {connection.result}")
        for name, password in passwords.items():
            dn = service_dn(name, base_dn)
            connection.modify(dn, {"userPassword": [(ldap3.MODIFY_REPLACE, [ssha(password)])]})
            if connection.result["result"] != 0:
                raise ServerStartError(f"cannot set the password of {dn}: {connection.result}")
    finally:
        connection.unbind()


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
) -> SlapdInstance:
    """Start slapd for ``base_dn`` on ``host`` (a free port unless ``port`` is given).

    Generates ``run_dir/slapd.conf``, checks it with ``slaptest``, loads the bootstrap tree with
    ``slapadd`` when the data directory is new, starts slapd and waits until a root bind and a
    base search are answered. The service accounts' passwords are set to ``service_passwords``
    (default: the dev secrets of ``LdapSettings``) on every start, so ``settings_env()`` holds.
    The root DN's password is ``root_password`` or, by default, a fresh random one per start.

    Raises ``MissingPrerequisite`` when slapd is not installed and ``ServerStartError`` (with
    slaptest's output or the log tail) when it does not come up; then no slapd is left behind.
    """
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
    needs_bootstrap = not (run_dir / "data" / "main" / "data.mdb").exists()

    root_dn = f"cn=admin,{base_dn}"
    root_password = root_password or secrets.token_urlsafe(24)
    config_path = run_dir / "slapd.conf"
    config_path.write_text(
        generate_config(
            run_dir,
            root_password_hash=ssha(root_password),
            base_dn=base_dn,
            root_dn=root_dn,
            durable=durable,
            extra_config=extra_config,
        )
    )
    config_path.chmod(0o600)
    # -u: check the configuration without opening the databases, which may not exist yet.
    _run_tool([slaptest, "-u", "-f", str(config_path)], f"slaptest of {config_path}", timeout)

    if needs_bootstrap:
        ldif_path = run_dir / "bootstrap.ldif"
        hashes = {name: ssha(password) for name, password in passwords.items()}
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

    attempts = 1 if port is not None else 3
    for attempt in range(1, attempts + 1):
        chosen = port if port is not None else free_port()
        # The clients of this process reach a wildcard listener through the loopback address.
        url = f"ldap://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{chosen}"  # noqa: S104
        log_path = run_dir / "slapd.log"
        process = ManagedProcess(
            name="slapd",
            argv=[slapd, "-d", log_level, "-h", f"ldap://{host}:{chosen}/", "-f", str(config_path)],
            log_path=log_path,
            cwd=run_dir,
        )
        process.start()
        try:
            process.wait_ready(
                lambda url=url: _ready_probe(url, base_dn, root_dn, root_password), timeout
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
            _apply_service_passwords(url, base_dn, root_dn, root_password, passwords)
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
        )
    raise AssertionError("unreachable")  # pragma: no cover


def serve_foreground(
    data_dir: Path,
    *,
    port: int,
    settings: Settings,
    host: str = "0.0.0.0",  # noqa: S104 - the directory container's listener
    log_level: str = "stats",
) -> int:
    """Run the production directory in the foreground until SIGTERM or SIGINT; the exit code.

    What ``iacs directory serve`` (the container's entrypoint) runs: the same generated and
    checked configuration as every other start, with the root password and the service
    accounts' passwords taken from ``settings`` (no defaults here: a missing root password is
    an error), an empty ``data_dir`` bootstrapped, and the data kept across restarts. On a
    signal slapd is stopped (it flushes and closes its databases) and 0 is returned; if slapd
    dies on its own its exit code is returned so the container restarts.
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
        )
        with instance:
            print(f"directory {ldap.base_dn} serving on {host}:{port}; log: {instance.log_path}")
            while not stop.is_set() and instance.running:
                stop.wait(0.5)
            if stop.is_set():
                return 0
            process = instance.process.process
            return process.returncode if process is not None and process.returncode else 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
