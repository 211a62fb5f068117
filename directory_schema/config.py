"""The directory's production configuration: ``slapd.conf.in`` rendered for one installation.

One copy of the configuration (modules, overlays, the ACL table with the append-only audit
rule, password hashing and policy, TLS): ``iacs directory serve`` (the container), the dev
and test launcher and the tests all render this template, so what is tested is what runs.
The renderer only fills in paths and names; every rule is in the template, readable in review.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ldap3.utils.conv import escape_filter_chars

from directory_schema import SERVICE_ACCOUNTS, schema_path

__all__ = [
    "ACCESSLOG_SUFFIX",
    "ARGON2_OPTIONS",
    "MODULES",
    "PASSWORD_MIN_LENGTH",
    "PORTAL_SUBTREES",
    "REPLICATOR",
    "SYSTEM_SCHEMAS",
    "DirectoryPaths",
    "Replication",
    "config_template_path",
    "password_policy_dn",
    "render_slapd_conf",
    "replicator_dn",
    "service_dn",
    "sync_lease_dn",
]

_HERE = Path(__file__).resolve().parent

ACCESSLOG_SUFFIX = "cn=accesslog"
"""Suffix of the change-feed database (slapo-accesslog's ``logdb``)."""

MODULES = ("back_mdb", "memberof", "refint", "accesslog", "ppolicy", "syncprov", "argon2")
"""Dynamically loaded modules, in load order (a build with one compiled in skips it)."""

ARGON2_OPTIONS = "m=19456 t=2 p=1"
"""pw-argon2's cost: 19 MiB and 2 passes (OWASP's minimum for Argon2id; Debian's 2.5 module
makes argon2i hashes). About 30 ms per bind on the 2-core development machine."""

SYSTEM_SCHEMAS = ("core.schema", "cosine.schema", "inetorgperson.schema")

PORTAL_SUBTREES = ("organizations", "surrogate-groups", "practitioners", "requests")
"""Subtrees whose entries the portal creates, changes and removes (its service's state)."""

PASSWORD_MIN_LENGTH = 12
"""ASVS 5.0 V6.2.1: at least 12 characters; the policy entry in the bootstrap says the same."""


def service_dn(name: str, base_dn: str) -> str:
    """DN of a service bind account (``portal``, ``sync`` or ``keycloak``)."""
    if name not in SERVICE_ACCOUNTS:
        raise ValueError(f"unknown service account {name!r}")
    return f"cn={name},ou=services,{base_dn}"


REPLICATOR = "replicator"
"""The replication account (``cn=replicator,ou=services``): multi-provider syncrepl binds as it
to the other providers. It may read the whole IACS tree (passwords and password-policy state
included: a provider is a full copy) and write nothing; it is no account of a product process,
so it is not in ``SERVICE_ACCOUNTS`` and its entry exists only in a replicated directory."""


def replicator_dn(base_dn: str) -> str:
    """DN of the replication account of ``base_dn``."""
    return f"cn={REPLICATOR},ou=services,{base_dn}"


@dataclass(frozen=True)
class Replication:
    """This provider's place in an OpenLDAP multi-provider (syncrepl) set.

    Every provider replicates the IACS tree from every other (``refreshAndPersist`` over
    verified TLS, bound as the replication account); ``cn=accesslog`` is NOT replicated: each
    provider logs every write it applies, its own and the replicated ones, at its own time, so
    a change-feed cursor is only meaningful in the log it came from (the sync worker records
    which log, by its root entry's entryUUID, and treats another log as a gap: ``sync.feed``).
    """

    server_id: int
    """This provider's ``serverID`` (1-4095, unique in the set); 1 bootstraps the tree."""
    peers: tuple[str, ...]
    """``ldaps://`` URLs of the other providers."""
    password: str = field(repr=False)
    """The replication account's password (syncrepl needs it in clear in the configuration,
    which is why ``slapd.conf`` is mode 0600)."""

    def __post_init__(self) -> None:
        if not 1 <= self.server_id <= 4095:
            raise ValueError("serverID must be between 1 and 4095")
        if not self.peers:
            raise ValueError("a replicated provider needs at least one peer")
        for url in self.peers:
            if not url.lower().startswith("ldaps://") or any(c in url for c in ' "\\\n'):
                raise ValueError(f"a peer must be a plain ldaps:// URL, not {url!r}")
        if len(self.password) < 16 or any(c in self.password for c in ' "\\\n'):
            raise ValueError("the replication password needs 16+ characters and no space or quote")


def password_policy_dn(base_dn: str) -> str:
    """DN of the default password policy (``ppolicy_default``), created by the bootstrap."""
    return f"cn=password-policy,ou=system,{base_dn}"


def sync_lease_dn(base_dn: str) -> str:
    """DN of the sync workers' active/standby lease (``sync.lease``), made by the bootstrap."""
    return f"cn=sync-lease,ou=system,{base_dn}"


def config_template_path() -> Path:
    """The ``slapd.conf`` template (placeholders in double braces)."""
    return _HERE / "slapd.conf.in"


@dataclass(frozen=True)
class DirectoryPaths:
    """Where one installation keeps its files; ``main_dir`` and ``accesslog_dir`` must exist
    before slaptest or slapd reads the configuration."""

    run_dir: Path
    system_schema_dir: Path
    tls_ca_file: Path
    tls_cert_file: Path
    tls_key_file: Path
    module_dir: Path | None = None

    @property
    def main_dir(self) -> Path:
        return self.run_dir / "data" / "main"

    @property
    def accesslog_dir(self) -> Path:
        return self.run_dir / "data" / "accesslog"


def _quote(value: str | Path) -> str:
    text = str(value)
    if '"' in text or "\n" in text or "\\" in text:
        raise ValueError(f"unsupported character in config value {text!r}")
    return f'"{text}"'


def _modules(module_dir: Path | None) -> str:
    if module_dir is None:
        return "# every module is compiled in"
    lines = [f"modulepath {_quote(module_dir)}"]
    for name in MODULES:
        if (module_dir / f"{name}.la").exists() or (module_dir / f"{name}.so").exists():
            options = f" {ARGON2_OPTIONS}" if name == "argon2" else ""
            lines.append(f"moduleload {name}{options}")
    return "\n".join(lines)


def _portal_subtrees(base_dn: str, portal: str, sync: str) -> str:
    rules = []
    for ou in PORTAL_SUBTREES:
        subtree = _quote(f"ou={ou},{base_dn}")
        rules += [
            f"access to dn.base={subtree} attrs=children\n  by dn.exact={portal} write\n"
            "  by * none",
            f"access to dn.base={subtree}\n  by dn.exact={portal} read\n"
            f"  by dn.exact={sync} read\n  by * none",
            f"access to dn.children={subtree}\n  by dn.exact={portal} write\n"
            f"  by dn.exact={sync} read\n  by * none",
        ]
    return "\n".join(rules)


def _replication(
    replication: Replication | None, base_dn: str, ca_file: Path
) -> tuple[str, str, str]:
    """The ``serverID`` line, the main database's syncrepl block and its syncprov overlay."""
    if replication is None:
        return "# a single provider: no serverID", "# no replication", "# no syncprov"
    replicator = _quote(replicator_dn(base_dn))
    lines = [
        f"limits dn.exact={replicator} size=unlimited time=unlimited",
        "# The replication account reads everything (a provider is a full copy); `break` lets",
        "# everyone else fall through to the table below. It writes nothing: syncrepl applies",
        "# what it reads as this database's root.",
        f"access to *\n  by dn.exact={replicator} read\n  by * break",
    ]
    for number, url in enumerate(replication.peers, start=1):
        rid = replication.server_id * 100 + number
        lines.append(
            f"syncrepl rid={rid:03d} provider={url} type=refreshAndPersist"
            f" searchbase={_quote(base_dn)} scope=sub"
            f" bindmethod=simple binddn={replicator} credentials={replication.password}"
            f" tls_cacert={_quote(ca_file)} tls_reqcert=demand"
            ' retry="1 +" timeout=5 network-timeout=3 keepalive=60:3:10'
        )
    lines.append("multiprovider on")
    overlay = "overlay syncprov\nsyncprov-checkpoint 100 5\nsyncprov-sessionlog 10000"
    return f"serverID {replication.server_id}", "\n".join(lines), overlay


def render_slapd_conf(
    paths: DirectoryPaths,
    *,
    base_dn: str,
    root_password_hash: str,
    root_dn: str | None = None,
    max_size_bytes: int = 1 << 30,
    durable: bool = True,
    extra_config: str = "",
    replication: Replication | None = None,
) -> str:
    """The ``slapd.conf`` text of an IACS directory whose files live in ``paths.run_dir``.

    ``root_password_hash`` must already be hashed (``{ARGON2}...``). ``durable=False`` sets
    ``dbnosync`` (tests and benchmarks only). ``extra_config`` is appended after the last
    overlay of the main database (the tests shorten ``logpurge`` with it). ``replication``
    makes this directory one provider of a multi-provider set (see ``Replication``).
    """
    if not root_password_hash.startswith("{"):
        raise ValueError("the root password must be hashed ({ARGON2}...), not clear text")
    server_id, replication_block, replication_overlay = _replication(
        replication, base_dn, paths.tls_ca_file
    )
    portal, sync, keycloak = (_quote(service_dn(name, base_dn)) for name in SERVICE_ACCOUNTS)
    includes = [f"include {_quote(paths.system_schema_dir / name)}" for name in SYSTEM_SCHEMAS] + [
        f"include {_quote(schema_path())}"
    ]
    values = {
        "includes": "\n".join(includes),
        "pid_file": _quote(paths.run_dir / "slapd.pid"),
        "args_file": _quote(paths.run_dir / "slapd.args"),
        "modules": _modules(paths.module_dir),
        "tls_ca_file": _quote(paths.tls_ca_file),
        "tls_cert_file": _quote(paths.tls_cert_file),
        "tls_key_file": _quote(paths.tls_key_file),
        "accesslog_dir": _quote(paths.accesslog_dir),
        "main_dir": _quote(paths.main_dir),
        "max_size_bytes": str(int(max_size_bytes)),
        "nosync": "" if durable else "dbnosync",
        "base_dn": _quote(base_dn),
        "root_dn": _quote(root_dn or f"cn=admin,{base_dn}"),
        "root_password_hash": root_password_hash,
        "portal_dn": portal,
        "sync_dn": sync,
        "keycloak_dn": keycloak,
        "people_dn": _quote(f"ou=people,{base_dn}"),
        "services_dn": _quote(f"ou=services,{base_dn}"),
        "system_dn": _quote(f"ou=system,{base_dn}"),
        "help_desk_dn": escape_filter_chars(f"cn=help-desk,ou=system,{base_dn}"),
        "audit_dn": _quote(f"ou=audit,{base_dn}"),
        "outbox_dn": _quote(f"ou=outbox,{base_dn}"),
        "portal_subtrees": _portal_subtrees(base_dn, portal, sync),
        "password_policy_dn": _quote(password_policy_dn(base_dn)),
        "sync_lease_dn": _quote(sync_lease_dn(base_dn)),
        "extra_config": extra_config,
        "server_id": server_id,
        "replication": replication_block,
        "replication_overlay": replication_overlay,
    }
    text = config_template_path().read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    if "{{" in text:
        start = text.index("{{")
        raise ValueError(f"unfilled placeholder {text[start : text.index('}}', start) + 2]}")
    return text
