"""Keycloak as a local process: fetch the server distribution with Maven, build it once, start it.

The distribution is cached outside the repository (``~/.cache/iacs/keycloak/<version>``, or
``$IACS_CACHE_DIR/keycloak/<version>``). ``ensure_distribution`` fetches the zip with Maven,
unpacks it and runs ``kc.sh build`` once under a file lock, so parallel test processes share one
build; a stamp file makes every later call instant.

``start_keycloak`` runs ``kc.sh start --optimized`` in production mode with a dev-file (H2)
database, a local cache and a transaction log that all live inside the given run directory, so
runs never share state. It answers once ``/health/ready`` on the management port says UP, or
raises ``ServerStartError`` with the tail of the log and leaves no process behind.

Measured on the 2-core development machine (Java 17, Keycloak 26.5.6, zip already in ~/.m2):
Maven copy and unzip about 5 s, ``kc.sh build`` 14-30 s, once. A start to ready takes about
15 s when the machine is otherwise idle, 25-40 s while other servers compete for the two cores
(and up to 75 s at a load average of 10, hence the generous default timeout). The heap is kept
to 1 GiB; a running server with a few test realms sits at about 700 MB resident.

Java: Keycloak 26.5 supports OpenJDK 17, 21 and 25; both the Debian Java 17 and Temurin 25 start
it here (Temurin 25 prints a ``sun.misc.Unsafe`` deprecation warning from Netty). The ``java`` on
``PATH`` is used unless ``IACS_KEYCLOAK_JAVA_HOME`` or ``JAVA_HOME`` names another.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from iacs.stack.process import (
    ManagedProcess,
    MissingPrerequisite,
    ServerStartError,
    free_port,
    tail,
)
from iacs.stack.tls import TlsFiles

if TYPE_CHECKING:
    from keycloak import KeycloakAdmin

KEYCLOAK_VERSION = "26.5.6"
"""The Keycloak server the stack, the tests and docker-compose use."""

MAVEN_ARTIFACT = "org.keycloak:keycloak-quarkus-dist:{version}:zip"

BUILD_OPTIONS: tuple[str, ...] = (
    "--db=dev-file",
    "--health-enabled=true",
    "--metrics-enabled=true",
)
"""Build-time options baked into the cached distribution (``kc.sh build``)."""

CLUSTER_VARIANT = "postgres"
CLUSTER_BUILD_OPTIONS: tuple[str, ...] = (
    "--db=postgres",
    "--health-enabled=true",
    "--metrics-enabled=true",
    "--http-relative-path=/auth",
)
"""Build options of the clustered nodes: those of compose's Keycloak image
(``deploy/keycloak/Dockerfile``): PostgreSQL, everything under ``/auth`` so that one TLS proxy
serves the portal at ``/`` and Keycloak at ``/auth``. The cache stays Keycloak's production
default, embedded Infinispan with the ``jdbc-ping`` discovery (the shared database, no
multicast: it works on one host and across hosts alike). Built into a copy of the cached
distribution (``keycloak-<version>-postgres``), never into it."""

REALM_CACHE_ENTRIES = 50_000
"""Keycloak's realm cache holds groups too: at its default 10,000 entries, a realm with 21,000
managed groups evicts on every full read of the sync worker (measured: 81,000 evictions in
one read; 52 s -> 42 s with everything cached). docker-compose.yml sets the same value."""

PASSWORD_BLOCKLISTS_DIR = Path(__file__).resolve().parents[2] / "keycloak_config"
"""Where Keycloak's ``passwordBlacklist(password-blocklist.txt)`` policy finds its list (the
realm's password policy names it): the project's own copy, given at start as a runtime SPI
option, so the cached distribution's build stays untouched. docker-compose mounts the same file."""

MINIMUM_JAVA = 17
"""Keycloak 26.5 supports OpenJDK 17, 21 and 25; 17 is what Debian 12 ships."""

JAVA_PACKAGE = "openjdk-17-jre-headless"
MAVEN_PACKAGE = "maven"

JAVA_HEAP = "-Xms64m -Xmx1g"
"""Modest heap: a test or dev server holds a few realms and some thousand users."""

STAMP_NAME = ".iacs-built.json"


class DistributionError(RuntimeError):
    """Fetching, unpacking or building the Keycloak distribution failed."""


# --------------------------------------------------------------------------------------------
# Java and Maven


@dataclass(frozen=True)
class JavaRuntime:
    """A Java installation that can run Keycloak."""

    home: Path
    major: int


def find_java() -> JavaRuntime:
    """The Java that runs Keycloak.

    ``IACS_KEYCLOAK_JAVA_HOME`` wins, then ``JAVA_HOME``, then the ``java`` on ``PATH``. It must
    be Java 17 or newer (Keycloak 26.5 supports 17, 21 and 25).
    """
    for variable in ("IACS_KEYCLOAK_JAVA_HOME", "JAVA_HOME"):
        value = os.environ.get(variable)
        if value and (Path(value) / "bin" / "java").exists():
            return _checked_java(Path(value))
    java = shutil.which("java")
    if java is None:
        raise MissingPrerequisite(
            f"Keycloak needs Java {MINIMUM_JAVA} or newer and no `java` is on PATH; "
            f"install the Debian package {JAVA_PACKAGE}"
        )
    return _checked_java(Path(java).resolve().parent.parent)


def _checked_java(home: Path) -> JavaRuntime:
    major = _java_major(home)
    if major < MINIMUM_JAVA:
        raise MissingPrerequisite(
            f"Keycloak {KEYCLOAK_VERSION} needs Java {MINIMUM_JAVA} or newer, {home} is Java "
            f"{major}; install the Debian package {JAVA_PACKAGE} (or set IACS_KEYCLOAK_JAVA_HOME)"
        )
    return JavaRuntime(home=home, major=major)


def _java_major(home: Path) -> int:
    release = home / "release"
    text = ""
    if release.exists():
        match = re.search(r'^JAVA_VERSION="([^"]+)"', release.read_text(), re.MULTILINE)
        text = match.group(1) if match else ""
    if not text:
        result = subprocess.run(
            [str(home / "bin" / "java"), "-version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        match = re.search(r'version "([^"]+)"', result.stderr)
        text = match.group(1) if match else "0"
    first = text.split(".")[0]
    if first == "1":  # 1.8.0_x
        first = text.split(".")[1]
    return int(re.sub(r"\D.*", "", first) or 0)


def _find_maven() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MissingPrerequisite(
            "fetching Keycloak needs Maven and no `mvn` is on PATH; "
            f"install the Debian package {MAVEN_PACKAGE}"
        )
    return mvn


# --------------------------------------------------------------------------------------------
# The cached distribution


def cache_root(cache_dir: Path | None = None) -> Path:
    """Root of the project's download cache (outside the repository)."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("IACS_CACHE_DIR")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "iacs"


def ensure_distribution(
    version: str = KEYCLOAK_VERSION, cache_dir: Path | None = None, *, variant: str | None = None
) -> Path:
    """The home of a built Keycloak distribution, fetching and building it the first time.

    Parallel callers are serialized by a file lock; the one that comes second finds the stamp and
    returns at once. ``variant="postgres"`` is the clustered nodes' build
    (``CLUSTER_BUILD_OPTIONS``): a copy of the base distribution, built once beside it.
    """
    if variant is not None:
        return _ensure_variant(version, cache_dir, variant)
    version_dir = cache_root(cache_dir) / "keycloak" / version
    home = version_dir / f"keycloak-{version}"
    if _stamp_matches(home):
        return home
    version_dir.mkdir(parents=True, exist_ok=True)
    with _file_lock(version_dir / ".lock"):
        if _stamp_matches(home):
            return home
        java = find_java()
        started = time.monotonic()
        if not (home / "bin" / "kc.sh").exists():
            _fetch_and_unpack(version, version_dir, home)
        fetched = time.monotonic()
        _build(home, java, version_dir / "build.log")
        built = time.monotonic()
        (home / STAMP_NAME).write_text(
            json.dumps(
                {
                    "version": version,
                    "build_options": list(BUILD_OPTIONS),
                    "java_home": str(java.home),
                    "java_major": java.major,
                    "fetch_seconds": round(fetched - started, 1),
                    "build_seconds": round(built - fetched, 1),
                },
                indent=2,
            )
            + "\n"
        )
    return home


VARIANTS: dict[str, tuple[str, ...]] = {CLUSTER_VARIANT: CLUSTER_BUILD_OPTIONS}


def _ensure_variant(version: str, cache_dir: Path | None, variant: str) -> Path:
    """A copy of the base distribution built with the variant's options (base left untouched)."""
    options = VARIANTS[variant]
    base = ensure_distribution(version, cache_dir)
    version_dir = base.parent
    home = version_dir / f"keycloak-{version}-{variant}"
    if _stamp_matches(home, options):
        return home
    with _file_lock(version_dir / f".lock-{variant}"):
        if _stamp_matches(home, options):
            return home
        java = find_java()
        started = time.monotonic()
        staging = version_dir / f"copying-{variant}"
        shutil.rmtree(staging, ignore_errors=True)
        # data/ holds the base build's H2 files and transaction logs: not part of a copy.
        shutil.copytree(base, staging, ignore=shutil.ignore_patterns("data", STAMP_NAME))
        _build(staging, java, version_dir / f"build-{variant}.log", options)
        shutil.rmtree(home, ignore_errors=True)
        staging.rename(home)
        (home / STAMP_NAME).write_text(
            json.dumps(
                {
                    "version": version,
                    "variant": variant,
                    "build_options": list(options),
                    "java_home": str(java.home),
                    "java_major": java.major,
                    "build_seconds": round(time.monotonic() - started, 1),
                },
                indent=2,
            )
            + "\n"
        )
    return home


def _stamp_matches(home: Path, options: Sequence[str] = BUILD_OPTIONS) -> bool:
    try:
        stamp = json.loads((home / STAMP_NAME).read_text())
    except (FileNotFoundError, ValueError):
        return False
    return stamp.get("build_options") == list(options)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fetch_and_unpack(version: str, version_dir: Path, home: Path) -> None:
    mvn = _find_maven()
    download = version_dir / "download"
    shutil.rmtree(download, ignore_errors=True)
    download.mkdir()
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "dependency:copy",
            f"-Dartifact={MAVEN_ARTIFACT.format(version=version)}",
            f"-DoutputDirectory={download}",
        ],
        capture_output=True,
        text=True,
        cwd=version_dir,  # no pom.xml here: Maven must not pick up a project
        timeout=1800,
        check=False,
    )
    archives = sorted(download.glob("*.zip"))
    if result.returncode != 0 or not archives:
        raise DistributionError(
            f"mvn dependency:copy of Keycloak {version} failed (exit {result.returncode}):\n"
            f"{(result.stdout + result.stderr)[-4000:]}"
        )
    staging = version_dir / "unpacking"
    shutil.rmtree(staging, ignore_errors=True)
    _unzip(archives[0], staging)
    unpacked = staging / home.name
    if not (unpacked / "bin" / "kc.sh").exists():
        raise DistributionError(f"{archives[0]} does not contain {home.name}/bin/kc.sh")
    shutil.rmtree(home, ignore_errors=True)
    unpacked.rename(home)
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(download, ignore_errors=True)  # Maven keeps its own copy in ~/.m2


def _unzip(archive: Path, target: Path) -> None:
    """Unzip keeping the Unix permission bits (``zipfile`` alone drops the execute bits)."""
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            extracted = Path(zipped.extract(info, target))
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                extracted.chmod(mode)


def _build(
    home: Path, java: JavaRuntime, log_path: Path, options: Sequence[str] = BUILD_OPTIONS
) -> None:
    with log_path.open("wb") as log:
        result = subprocess.run(
            [str(home / "bin" / "kc.sh"), "build", *options],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_server_env(java),
            cwd=home,
            timeout=900,
            check=False,
        )
    if result.returncode != 0:
        raise DistributionError(
            f"kc.sh build failed (exit {result.returncode}); last lines of {log_path}:\n"
            f"{tail(log_path)}"
        )


def _server_env(java: JavaRuntime, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of kc.sh: ours only, never a KC_* or JAVA_OPTS inherited by accident."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KC_", "QUARKUS_", "JAVA_OPTS", "KEYCLOAK_"))
        and key not in {"JAVA_HOME", "JAVA", "JAVA_ADD_OPENS", "DEBUG", "DEBUG_PORT"}
    }
    env["JAVA_HOME"] = str(java.home)
    env["JAVA_OPTS_KC_HEAP"] = JAVA_HEAP
    env.update(extra or {})
    return env


# --------------------------------------------------------------------------------------------
# One node of a cluster

CLUSTER_PATH = "/auth"
"""Where the clustered nodes serve (``--http-relative-path``, baked into the variant's build)."""

CLUSTER_PORT_RANGE = (9100, 15400)
"""Where a node's JGroups port is picked: JGroups' failure detection (FD_SOCK2) listens at the
transport port + 50,000, which must stay below 65,536 (Keycloak's default pair is 7800/57800)."""


def free_cluster_port() -> int:
    """A port for a node's JGroups transport whose failure-detection twin (+50,000) is free too."""
    for _ in range(200):
        port = (
            secrets.randbelow(CLUSTER_PORT_RANGE[1] - CLUSTER_PORT_RANGE[0]) + CLUSTER_PORT_RANGE[0]
        )
        if all(_bindable(candidate) for candidate in (port, port + 1, port + 50_000)):
            return port
    raise ServerStartError("no free port pair for the JGroups transport")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class ClusterNode:
    """What makes a Keycloak start one node of a cluster.

    Every node of a cluster shares the database (realms, users, and in Keycloak 26 the user
    sessions, persisted there) and discovers the others through it (``jdbc-ping``); the embedded
    Infinispan caches of all nodes then form one cluster, so a session started on one node is
    known on every node and survives the loss of the one that started it. Every node answers
    with the same public address (``public_url``, the proxy in front), so tokens issued by one
    carry the issuer the others expect.
    """

    db_url: str
    """``jdbc:postgresql://host:port/database`` (``PostgresInstance.jdbc_url``)."""
    db_username: str
    db_password: str = field(repr=False)
    tls: TlsFiles
    """Server certificate and key of the node's https listener (``iacs.stack.tls``)."""
    public_url: str
    """``https://<proxy>/auth``: the ``--hostname`` of every node."""
    cluster_port: int = field(default_factory=free_cluster_port)
    """This node's JGroups transport port on 127.0.0.1 (a free one by default)."""
    trusted_proxies: str = "127.0.0.1/32"
    """Addresses whose ``X-Forwarded-*`` headers the node believes (the proxy's)."""

    def arguments(self, https_port: int) -> list[str]:
        """The listener, database and cluster options of ``kc.sh start``."""
        return [
            "--http-enabled=false",
            "--http-host=127.0.0.1",  # the address of the https listener too
            f"--https-port={https_port}",
            f"--https-certificate-file={self.tls.cert_file}",
            f"--https-certificate-key-file={self.tls.key_file}",
            # Every URL from the one public address, the back-channel ones too: with
            # --hostname-backchannel-dynamic a client's Host header would choose token_endpoint
            # and jwks_uri of the discovery document (test_sec_forged_host_headers_...).
            f"--hostname={self.public_url}",
            "--proxy-headers=xforwarded",
            f"--proxy-trusted-addresses={self.trusted_proxies}",
            f"--db-url={self.db_url}",
            f"--db-username={self.db_username}",
            "--cache=ispn",
            "--cache-stack=jdbc-ping",
            "--cache-embedded-network-bind-address=127.0.0.1",
            f"--cache-embedded-network-bind-port={self.cluster_port}",
        ]


# --------------------------------------------------------------------------------------------
# A running server


@dataclass
class KeycloakInstance:
    """A running Keycloak; stop it with ``stop()`` or by leaving its ``with`` block."""

    url: str
    """Base URL, e.g. ``http://127.0.0.1:41234`` (no trailing slash, no ``/auth``)."""
    management_url: str
    """Base URL of the management interface (``/health/ready``, ``/metrics``)."""
    admin_username: str
    """Bootstrap administrator of the master realm."""
    admin_password: str
    run_dir: Path
    log_path: Path
    process: ManagedProcess = field(repr=False)
    ca_file: Path | None = None
    """The CA of a clustered node's https listener (None: a plain-http local server)."""

    @property
    def pid(self) -> int | None:
        """Process id of the launcher (the leader of the server's process group)."""
        return self.process.process.pid if self.process.process else None

    @property
    def running(self) -> bool:
        return self.process.running

    def admin(self, realm_name: str = "master") -> KeycloakAdmin:
        """A python-keycloak admin client working on ``realm_name`` as the master admin."""
        from keycloak import KeycloakAdmin

        return KeycloakAdmin(
            server_url=self.url + "/",
            username=self.admin_username,
            password=self.admin_password,
            realm_name=realm_name,
            user_realm_name="master",
            verify=str(self.ca_file) if self.ca_file else True,
        )

    def stop(self) -> None:
        """Stop the server and everything it started."""
        self.process.stop()

    def __enter__(self) -> KeycloakInstance:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_keycloak(
    run_dir: Path,
    *,
    admin_username: str,
    admin_password: str,
    port: int | None = None,
    timeout: float = 240.0,
    extra_args: Sequence[str] = (),
    version: str = KEYCLOAK_VERSION,
    cache_dir: Path | None = None,
    heap: str = JAVA_HEAP,
    quick_start: bool = False,
    truststore_paths: Sequence[Path] = (),
    node: ClusterNode | None = None,
) -> KeycloakInstance:
    """Start Keycloak on 127.0.0.1 with all its state in ``run_dir`` and wait until it is ready.

    ``extra_args`` are appended to ``kc.sh start`` (runtime options only: the distribution is
    built once with ``BUILD_OPTIONS``); ``heap`` is the JVM heap option (``JAVA_OPTS_KC_HEAP``,
    e.g. ``"-Xms256m -Xmx2g"`` for a benchmark). ``quick_start`` compiles with C1 only
    (``-XX:TieredStopAtLevel=1``): about half the CPU to become ready (18 s instead of 34 s
    measured here), slower steady state; right for test sessions, wrong for benchmarks.
    ``truststore_paths`` (PEM files) are the CAs Keycloak trusts for outgoing TLS
    (``--truststore-paths``), e.g. the directory's CA for LDAP federation over ldaps.

    ``node`` makes this start one node of a cluster (``ClusterNode``): the ``postgres`` build
    variant, https only on ``port``, the shared database, embedded Infinispan; ``url`` is then
    this node's own ``https://127.0.0.1:<port>/auth``.

    Raises ``ServerStartError`` with the tail of the log if the server exits or is not ready
    within ``timeout`` seconds; no process is left then.
    """
    home = ensure_distribution(version, cache_dir, variant=CLUSTER_VARIANT if node else None)
    java = find_java()
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    http_port = port or free_port()
    management_port = free_port()
    while management_port == http_port:
        management_port = free_port()
    if node is None:
        listener = [
            "--http-enabled=true",
            "--hostname-strict=false",
            "--http-host=127.0.0.1",
            f"--http-port={http_port}",
            # A single node: no JGroups cluster (it would listen on 7800 and join other servers).
            "--cache=local",
            f"--db-url-path={run_dir / 'db'}",
        ]
    else:
        listener = node.arguments(http_port)
    argv = [
        str(home / "bin" / "kc.sh"),
        "start",
        "--optimized",
        *listener,
        f"--http-management-port={management_port}",
        f"--cache-embedded-realms-max-count={REALM_CACHE_ENTRIES}",
        f"--spi-password-policy--password-blacklist--blacklists-path={PASSWORD_BLOCKLISTS_DIR}",
        # Narayana's object store defaults to <home>/data, shared by every run: keep it here.
        f"-Dquarkus.transaction-manager.object-store.directory={run_dir / 'transaction-logs'}",
        *extra_args,
    ]
    if truststore_paths:
        trusted = ",".join(str(Path(path).resolve()) for path in truststore_paths)
        argv.append(f"--truststore-paths={trusted}")
    env = _server_env(
        java,
        {
            "KC_BOOTSTRAP_ADMIN_USERNAME": admin_username,
            "KC_BOOTSTRAP_ADMIN_PASSWORD": admin_password,
            "JAVA_OPTS_KC_HEAP": heap + (" -XX:TieredStopAtLevel=1" if quick_start else ""),
            # The database password stays out of the command line (ps shows that to everyone).
            **({"KC_DB_PASSWORD": node.db_password} if node else {}),
        },
    )
    log_path = run_dir / "keycloak.log"
    process = ManagedProcess("keycloak", argv, log_path, env=env, cwd=run_dir)
    if node is None:
        url = f"http://127.0.0.1:{http_port}"
        management_url = f"http://127.0.0.1:{management_port}"
        verify: bool | str = True
    else:  # the management interface inherits the TLS and the /auth path of the main one
        url = f"https://127.0.0.1:{http_port}{CLUSTER_PATH}"
        management_url = f"https://127.0.0.1:{management_port}{CLUSTER_PATH}"
        verify = str(node.tls.ca_file)

    def ready() -> bool:
        response = requests.get(f"{management_url}/health/ready", timeout=2, verify=verify)
        return response.status_code == 200 and response.json().get("status") == "UP"

    process.start()
    try:
        process.wait_ready(ready, timeout=timeout, interval=0.25)
    except BaseException:
        process.stop()  # also on KeyboardInterrupt: never leave a server behind
        raise
    return KeycloakInstance(
        url=url,
        management_url=management_url,
        admin_username=admin_username,
        admin_password=admin_password,
        run_dir=run_dir,
        log_path=log_path,
        process=process,
        ca_file=node.tls.ca_file if node else None,
    )


def distribution_info(version: str = KEYCLOAK_VERSION, cache_dir: Path | None = None) -> dict:
    """What the stamp of a built distribution records (timings, Java), or {} if not built."""
    home = cache_root(cache_dir) / "keycloak" / version / f"keycloak-{version}"
    try:
        return json.loads((home / STAMP_NAME).read_text())
    except (FileNotFoundError, ValueError):
        return {}


__all__ = [
    "BUILD_OPTIONS",
    "CLUSTER_BUILD_OPTIONS",
    "KEYCLOAK_VERSION",
    "ClusterNode",
    "DistributionError",
    "JavaRuntime",
    "KeycloakInstance",
    "MissingPrerequisite",
    "ServerStartError",
    "distribution_info",
    "ensure_distribution",
    "find_java",
    "start_keycloak",
]
